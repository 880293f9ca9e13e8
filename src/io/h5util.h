/* Internal HDF5 helpers shared by the array, dataset and checkpoint files.
 * Every public entry point that calls them runs inside H5E_BEGIN_TRY /
 * H5E_END_TRY, so HDF5 never prints; each helper closes what it opens. */
#ifndef FXP_IO_H5UTIL_H
#define FXP_IO_H5UTIL_H

#include <hdf5.h>

#include "core/internal.h"
#include "flowexp/io.h"

/* Atomic writing: create "<path>.tmp.<pid>" (tmp receives its name), and
 * finish by closing, fsync-ing and renaming it over path, then fsync-ing the
 * directory (ok), or by removing it (!ok or any failure on the way). */
int fxp__h5_create_tmp(fxp_ctx *ctx, const char *path, char *tmp, size_t size, hid_t *fid);
int fxp__h5_finish(fxp_ctx *ctx, hid_t fid, const char *tmp, const char *path, int ok);

/* Open an existing file read-only: FXP_EIO if it cannot be read,
 * FXP_EFORMAT if it is not HDF5 or is damaged. */
int fxp__h5_open(fxp_ctx *ctx, const char *path, hid_t *fid);

/* A link-creation property list that creates missing parent groups. */
hid_t fxp__h5_lcpl(void);

/* Write a float32 dataset of the given shape at `name` (parents created). */
int fxp__h5_write_floats(fxp_ctx *ctx, hid_t loc, const char *name, int ndim, const int *shape,
                         const float *data, const char *path);

/* Attribute writers on an object. */
int fxp__h5_attr_write(fxp_ctx *ctx, hid_t obj, const fxp_attr *a, const char *path);
/* Read an attribute as text into buf (numbers with %.17g). */
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

/* Read dataset `name` of an open file into an owning float32 tensor: rank
 * 1..FXP_MAX_DIMS, no zero dimension, every value finite.  Accepted types:
 * IEEE floats, and integers too if allow_int.  Errors (message naming path
 * and name): FXP_ENOTFOUND (listing the root's entries), FXP_EFORMAT (not a
 * dataset, wrong type, rank or empty, unreadable data), FXP_ENUMERIC. */
int fxp__h5_read_tensor(fxp_ctx *ctx, hid_t fid, const char *name, int allow_int,
                        fxp_tensor *out, const char *path);

#endif
