/* libflowexp: HDF5 files — dataset files, sample files and checkpoints.
 *
 * Every writer is atomic: it writes "<path>.tmp.<pid>" in the same
 * directory, flushes it to disk and renames it over <path>, so a crash or an
 * error never leaves a truncated file (and an existing file at <path> stays
 * intact until the new one is complete).  Readers validate everything and
 * report missing files (FXP_EIO), files that are not HDF5 or are damaged
 * (FXP_EFORMAT), missing entries (FXP_ENOTFOUND), and entries of the wrong
 * type, rank or shape (FXP_EFORMAT / FXP_EMISMATCH), naming the path and the
 * entry.  The HDF5 library's own error printing is suppressed.
 *
 * HDF5 (Debian's serial build) is not thread-safe: call these functions from
 * one thread at a time.
 */
#ifndef FLOWEXP_IO_H
#define FLOWEXP_IO_H

#include "flowexp/optim.h"
#include "flowexp/params.h"
#include "flowexp/rng.h"
#include "flowexp/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

struct fxp_ctx;

/* ---- attributes (on the root group of a file) ---------------------------------- */
typedef enum fxp_attr_type { FXP_ATTR_STRING = 0, FXP_ATTR_DOUBLE = 1, FXP_ATTR_INT = 2 } fxp_attr_type;

typedef struct fxp_attr {
    const char *key;
    fxp_attr_type type;
    const char *s;  /* FXP_ATTR_STRING */
    double d;       /* FXP_ATTR_DOUBLE */
    int64_t i;      /* FXP_ATTR_INT */
} fxp_attr;

/* ---- arrays: dataset files and sample files -------------------------------------- */

/* Write n float32 datasets (names[k] <- arrays[k], any shape) and n_attrs
 * root attributes to path, atomically. */
FXP_API int fxp_h5_write_arrays(struct fxp_ctx *ctx, const char *path, int n,
                                const char *const *names, const fxp_tensor *const *arrays,
                                int n_attrs, const fxp_attr *attrs);

/* Read the dataset `name` of any HDF5 file as float32 into an owning tensor
 * (release it with fxp_tensor_release).  Integer or floating-point data of
 * rank 1..5 is converted; strings and compound types are FXP_EFORMAT; NaN or
 * Inf values FXP_ENUMERIC; an empty dataset FXP_EFORMAT.  A missing name is
 * FXP_ENOTFOUND and the message lists the datasets at the root. */
FXP_API int fxp_h5_read_array(struct fxp_ctx *ctx, const char *path, const char *name,
                              fxp_tensor *out);

/* A graph dataset split [n, nodes, F] (rank 3 required, F >= 1). */
FXP_API int fxp_dataset_read(struct fxp_ctx *ctx, const char *path, const char *split,
                             fxp_tensor *out);

/* A root attribute as a string (strings verbatim, numbers printed with %.17g).
 * FXP_ENOTFOUND if absent. */
FXP_API int fxp_h5_read_attr(struct fxp_ctx *ctx, const char *path, const char *key, char *buf,
                             size_t size);

/* ---- checkpoints ------------------------------------------------------------------
 * Layout (readable from h5py with these names):
 *   /params/<name>        trainable parameters, float32, one dataset per
 *                         fxp_params entry; '/' in names become groups
 *   /state/<name>         layer state (FXP_PARAM_STATE)
 *   /optimizer            attributes kind, lr, beta1, beta2, eps, steps, ...
 *   /optimizer/m/<name>, /optimizer/v/<name>   moments, laid out as /params
 *   /rng/<name>           uint64 [2]: seed, counter
 *   /config               string attributes: the model and run configuration
 *   root attributes       format ("libflowexp-checkpoint"), format_version,
 *                         library_version
 */
typedef struct fxp_checkpoint {
    fxp_params *params;          /* required */
    fxp_optim *optim;            /* optional (NULL) */
    int n_rngs;
    const char *const *rng_names;
    fxp_rng *const *rngs;
    int n_config;                /* save: key/value strings for /config */
    const char *const *config_keys;
    const char *const *config_values;
} fxp_checkpoint;

FXP_API int fxp_checkpoint_save(struct fxp_ctx *ctx, const char *path, const fxp_checkpoint *c);

/* Restore a checkpoint into c->params (and c->optim and c->rngs when
 * given).  Every parameter and state entry of c->params must be in the file
 * with the same shape and the file may hold no others (FXP_EMISMATCH naming
 * the entry and both shapes); the optimizer section must match in kind and
 * size.  Nothing is modified unless everything loads. c->config_* are not
 * used (see fxp_checkpoint_config). */
FXP_API int fxp_checkpoint_load(struct fxp_ctx *ctx, const char *path, const fxp_checkpoint *c);

/* One /config value: FXP_ENOTFOUND if the key is absent; FXP_EINVAL if the
 * value does not fit buf. */
FXP_API int fxp_checkpoint_config(struct fxp_ctx *ctx, const char *path, const char *key,
                                  char *buf, size_t size);

/* All /config entries, in storage order, through a callback (return
 * non-zero from it to stop). */
typedef int (*fxp_config_visit_fn)(void *user, const char *key, const char *value);
FXP_API int fxp_checkpoint_config_each(struct fxp_ctx *ctx, const char *path,
                                       fxp_config_visit_fn fn, void *user);

#ifdef __cplusplus
}
#endif
#endif
