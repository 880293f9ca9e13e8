/* libflowexp: checkpoints — parameters, layer state, optimizer state, RNG
 * streams and the run configuration in one HDF5 file.
 *
 * Layout (plain names, readable from h5py: f["params/flow/3/gce/theta0"]):
 *   /params/<name>        trainable parameters, float32 with the entry's
 *                         shape, one dataset per fxp_params entry; the '/' in
 *                         names become groups
 *   /state/<name>         layer state (FXP_PARAM_STATE), likewise
 *   /optimizer            group (only if an optimizer was saved); attributes
 *                         kind ("adam" | "adamax"), steps, lr, beta1, beta2,
 *                         eps, weight_decay, clip_norm, warmup, warmup_units,
 *                         decay, unit, size
 *   /optimizer/m/<name>, /optimizer/v/<name>
 *                         Adam moments of each trainable parameter, float32,
 *                         named and shaped as under /params
 *   /rng/<name>           uint64 [2] = (seed, counter) of each saved stream,
 *                         with the same two values as uint64 attributes
 *                         "seed" and "counter"
 *   /config               group whose attributes are the configuration's
 *                         key/value pairs (UTF-8 strings, insertion order kept)
 *   root attributes       format = "libflowexp-checkpoint",
 *                         format_version = 2, library_version = fxp_version()
 *
 * Checksums (format version 2): every dataset is stored chunked with HDF5's
 * Fletcher32 filter (a scalar in its object header), and the file uses the
 * HDF5 1.10 format, whose metadata blocks all carry checksums, so a flipped
 * bit anywhere is detected on load: FXP_EFORMAT naming the dataset ("... :
 * dataset params/flow/3/w fails its checksum (the file is damaged)") or the
 * damaged structure.  A version 2 dataset without a checksum is FXP_EFORMAT.
 * Version 1 files (no checksums) still load.  h5py and any HDF5 >= 1.10 read
 * both versions.
 *
 * Writing is atomic ("<path>.tmp.<pid>", sync, rename, sync of the
 * directory; the temporary is removed on failure), so a crash never leaves a
 * corrupt checkpoint and an older checkpoint at path survives a failed save.
 * The file is built in memory and written with plain write(2) calls, so a
 * full disk (ENOSPC), a file size limit (EFBIG) or an I/O error is an
 * FXP_EIO naming the temporary and the cause, with every HDF5 handle closed
 * and the temporary removed.
 * Loading is all or nothing.  Nothing is printed (HDF5's error stack is
 * silenced).  HDF5 is not thread-safe: one call at a time per process.
 */
#ifndef FLOWEXP_CHECKPOINT_H
#define FLOWEXP_CHECKPOINT_H

#include "flowexp/optim.h"
#include "flowexp/params.h"
#include "flowexp/rng.h"

#ifdef __cplusplus
extern "C" {
#endif

struct fxp_ctx;

#define FXP_CHECKPOINT_FORMAT_VERSION 2

/* What to save or restore.  The arrays are borrowed for the call only. */
typedef struct fxp_checkpoint {
    fxp_params *params;                 /* required */
    fxp_optim *optim;                   /* optional (NULL): optimizer of params */
    int n_rngs;                         /* RNG streams, by name (names as for params) */
    const char *const *rng_names;
    fxp_rng *const *rngs;
    int n_config;                       /* save only: /config key/value strings */
    const char *const *config_keys;
    const char *const *config_values;
} fxp_checkpoint;

/* Write c to path atomically (layout above).  FXP_EINVAL for bad arguments
 * (an optimizer that does not belong to c->params, NULL names, an RNG or
 * config name that is empty, contains "//" or starts or ends with '/', or
 * duplicate keys); FXP_EIO if the file cannot be written. */
FXP_API int fxp_checkpoint_save(struct fxp_ctx *ctx, const char *path, const fxp_checkpoint *c);

/* Restore a checkpoint into c->params (values of both kinds), c->optim (m, v,
 * step count; when non-NULL) and *c->rngs[k] (when n_rngs > 0).  Checks
 * before changing anything:
 *   - the file is a libflowexp checkpoint of a format version this library
 *     reads (FXP_EFORMAT otherwise);
 *   - every entry of c->params is in the file under its section (/params or
 *     /state) with the same shape, and the file holds no entry the model
 *     lacks (FXP_EMISMATCH naming the entry and, for shapes, both shapes:
 *     "... flow/1/w has shape [3,4] in the file but [4,4] in the model");
 *   - with an optimizer: the file has one of the same kind, with a moment
 *     pair per trainable entry and none other (FXP_EMISMATCH);
 *   - every requested RNG stream is in the file (FXP_EMISMATCH).
 *   - every dataset's checksum holds (FXP_EFORMAT naming the dataset).
 * Everything is read into temporaries first: on any error nothing in c is
 * modified.  Missing/unreadable files are FXP_EIO; non-HDF5, damaged or
 * truncated files FXP_EFORMAT.  c->n_config and config_* are ignored (see
 * fxp_checkpoint_config). */
FXP_API int fxp_checkpoint_load(struct fxp_ctx *ctx, const char *path, const fxp_checkpoint *c);

/* One /config value into buf (NUL-terminated): FXP_ENOTFOUND if the key is
 * absent; FXP_EINVAL if the value does not fit in size bytes. */
FXP_API int fxp_checkpoint_config(struct fxp_ctx *ctx, const char *path, const char *key,
                                  char *buf, size_t size);

/* Visit all /config entries in the order they were saved: fn(user, key,
 * value) for each (the strings are valid during the call only); a non-zero
 * return from fn stops the iteration (the call still returns FXP_OK).
 * Values longer than 4095 bytes are FXP_EFORMAT. */
typedef int (*fxp_config_visit_fn)(void *user, const char *key, const char *value);
FXP_API int fxp_checkpoint_config_each(struct fxp_ctx *ctx, const char *path,
                                       fxp_config_visit_fn fn, void *user);

#ifdef __cplusplus
}
#endif
#endif
