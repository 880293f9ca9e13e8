/* Internal HDF5 helpers shared by the array, dataset and checkpoint files.
 * Every public entry point that calls them runs inside H5E_BEGIN_TRY /
 * H5E_END_TRY, so HDF5 never prints; each helper closes what it opens. */
#ifndef FXP_IO_H5UTIL_H
#define FXP_IO_H5UTIL_H

#include <hdf5.h>

#include "core/internal.h"
#include "flowexp/io.h"

/* Atomic writing.  The HDF5 file is built in memory (the core driver
 * without a backing store), so HDF5 itself never writes to disk and never
 * fails half-way through a close (HDF5 1.10 crashes at exit after a failed
 * H5Fclose of a file on a full disk).  fxp__h5_create_tmp creates the
 * temporary "<path>.tmp.<pid>" (so a missing or read-only directory fails
 * early) and the in-memory file; fxp__h5_finish(ok) closes the HDF5 file
 * (the caller must have closed every object in it), writes its image to the
 * temporary, fsyncs it, renames it over path and fsyncs the directory; with
 * !ok, or on any failure on the way (ENOSPC, EFBIG, EIO), it removes the
 * temporary instead.  Either way every handle is closed afterwards.  The
 * file's image is held in memory twice (HDF5's and a copy) while writing. */
typedef struct fxp__h5_writer {
    hid_t fid;      /* the in-memory HDF5 file */
    int fd;         /* the temporary file, open for writing */
    char tmp[4096]; /* its name */
    const char *path;
} fxp__h5_writer;
int fxp__h5_create_tmp(fxp_ctx *ctx, const char *path, fxp__h5_writer *w);
int fxp__h5_finish(fxp_ctx *ctx, fxp__h5_writer *w, int ok);

/* Open an existing file read-only: FXP_EIO if it cannot be read,
 * FXP_EFORMAT if it is not HDF5 or is damaged. */
int fxp__h5_open(fxp_ctx *ctx, const char *path, hid_t *fid);

/* A link-creation property list that creates missing parent groups. */
hid_t fxp__h5_lcpl(void);

/* The dataset creation property list every writer uses: chunked layout with
 * the Fletcher32 checksum filter (chunks of at most 1 MiB), or for a scalar
 * (ndim 0) the compact layout, whose data sits in the object header and is
 * covered by the header's own checksum (files are written in the HDF5 1.10
 * format, whose metadata all carry checksums).  elsize: bytes per element. */
hid_t fxp__h5_dcpl(int ndim, const hsize_t *dims, size_t elsize);

/* H5Dread of the whole dataset, telling a checksum failure apart: 0 on
 * success, FXP__H5_BADSUM if the data fails its Fletcher32 checksum (the
 * read succeeds with checking disabled), -1 on any other failure.  buf's
 * content is unspecified on failure. */
#define FXP__H5_BADSUM (-2)
int fxp__h5_read_all(hid_t dset, hid_t memtype, void *buf);

/* Nonzero if dset's data is covered by a checksum (Fletcher32 filter, or
 * compact layout in an object header with a checksum). */
int fxp__h5_checksummed(hid_t dset);

/* Write a float32 dataset of the given shape at `name` (parents created),
 * with a checksum (fxp__h5_dcpl). */
int fxp__h5_write_floats(fxp_ctx *ctx, hid_t loc, const char *name, int ndim, const int *shape,
                         const float *data, const char *path);

/* Attribute writers on an object. */
int fxp__h5_attr_write(fxp_ctx *ctx, hid_t obj, const fxp_attr *a, const char *path);
/* Nonzero if attribute attr (of type `type`) holds exactly one value of a
 * sane size (a number of 1..16 bytes, a fixed string of at most 1 MiB whose
 * stored size matches): what our readers, which read one value, can take
 * without HDF5 writing past it or trusting a damaged size. */
int fxp__h5_attr_sane(hid_t attr, hid_t type);

/* Read an attribute as text into buf (numbers with %.17g); FXP_EFORMAT
 * unless fxp__h5_attr_sane. */
int fxp__h5_attr_text(fxp_ctx *ctx, hid_t obj, const char *key, char *buf, size_t size,
                      const char *path);

/* Does the link `name` (possibly nested, "a/b/c") exist below loc? */
int fxp__h5_exists(hid_t loc, const char *name);

/* Shape of a dataset: rank (<= FXP_MAX_DIMS, else -1) and dims. */
int fxp__h5_shape(hid_t dset, int *dims);

/* The names at the root of a file, comma separated ("nothing" if empty,
 * ", ..." when they do not fit), for error messages. */
void fxp__h5_root_names(hid_t fid, char *buf, size_t size);

/* "integers", "strings", ...: a type class in words, for error messages. */
const char *fxp__h5_class_name(H5T_class_t cls);

/* Open dataset `name` of fid (the caller checked that the link exists) and
 * its type: FXP_EFORMAT (message naming path and name) if the header is
 * unreadable, the object is a group or named type, or it cannot be opened;
 * on error *dset and *type are -1 and nothing stays open. */
int fxp__h5_open_dataset(fxp_ctx *ctx, hid_t fid, const char *name, const char *path,
                         hid_t *dset, hid_t *type);

/* FXP_EFORMAT naming the first zero dimension of dataset `name`, else FXP_OK. */
int fxp__h5_check_nonempty(fxp_ctx *ctx, const int *dims, int nd, const char *name, const char *path);

/* Read dataset `name` of an open file into an owning float32 tensor: rank
 * 1..FXP_MAX_DIMS, no zero dimension, every value finite.  Accepted types:
 * IEEE floats, and integers too if allow_int.  Errors (message naming path
 * and name): FXP_ENOTFOUND (listing the root's entries), FXP_EFORMAT (not a
 * dataset, wrong type, rank or empty, unreadable data), FXP_ENUMERIC. */
int fxp__h5_read_tensor(fxp_ctx *ctx, hid_t fid, const char *name, int allow_int,
                        fxp_tensor *out, const char *path);

#endif
