/* HDF5 image dataset files: writing the three uint8 splits with their labels
 * and a description as root attributes, and reading one split of uint8
 * images from any HDF5 file (imagedata.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/h5util.h"

static const char *const split_names[3] = { "train", "valid", "test" };

/* Write a uint8 dataset of the given shape at `name`. */
static int write_u8(fxp_ctx *ctx, hid_t loc, const char *name, int ndim, const hsize_t *dims,
                    const uint8_t *data, const char *path)
{
    int rc = FXP_OK;
    /* chunked with a Fletcher32 checksum, as every dataset the library writes */
    hid_t lcpl = fxp__h5_lcpl(), dcpl = fxp__h5_dcpl(ndim, dims, 1);
    hid_t space = H5Screate_simple(ndim, dims, NULL);
    hid_t dset = space >= 0 && lcpl >= 0 && dcpl >= 0
                     ? H5Dcreate2(loc, name, H5T_STD_U8LE, space, lcpl, dcpl, H5P_DEFAULT)
                     : -1;
    if (dset < 0 || H5Dwrite(dset, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
        rc = FXP_ERR(ctx, FXP_EIO, "%s: cannot write dataset %s", path, name);
    if (dset >= 0) H5Dclose(dset);
    if (space >= 0) H5Sclose(space);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (lcpl >= 0) H5Pclose(lcpl);
    return rc;
}

static int write_file(fxp_ctx *ctx, const char *path, const fxp_images *const *splits,
                      const fxp_attr *attrs, int n_attrs)
{
    fxp__h5_writer w;
    int rc = fxp__h5_create_tmp(ctx, path, &w);
    if (rc < 0) return rc;
    const hid_t fid = w.fid;
    for (int k = 0; k < 3 && rc >= 0; k++) {
        const fxp_images *s = splits[k];
        const hsize_t dims[4] = { (hsize_t)s->n, (hsize_t)s->channels, (hsize_t)s->height,
                                  (hsize_t)s->width };
        char name[32];
        rc = write_u8(ctx, fid, split_names[k], 4, dims, s->pixels, path);
        snprintf(name, sizeof name, "%s_labels", split_names[k]);
        if (rc >= 0 && s->labels) rc = write_u8(ctx, fid, name, 1, dims, s->labels, path);
    }
    for (int k = 0; k < n_attrs && rc >= 0; k++) rc = fxp__h5_attr_write(ctx, fid, &attrs[k], path);
    const int fin = fxp__h5_finish(ctx, &w, rc >= 0);
    return rc < 0 ? rc : fin;
}

int fxp_image_dataset_write(fxp_ctx *ctx, const char *path, const char *dataset,
                            const char *source, const fxp_images *train, const fxp_images *valid,
                            const fxp_images *test)
{
    FXP_API_SCOPE();
    const fxp_images *splits[3] = { train, valid, test };
    if (!path || !*path || !dataset || !*dataset || !source || !*source)
        return FXP_ERR(ctx, FXP_EINVAL, "path, dataset name and source are required");
    for (int k = 0; k < 3; k++) {
        const fxp_images *s = splits[k];
        if (!s || !s->pixels || s->n < 1 || s->channels < 1 || s->height < 1 || s->width < 1)
            return FXP_ERR(ctx, FXP_EINVAL, "the %s split is %s", split_names[k],
                           !s ? "NULL" : !s->pixels ? "empty (no pixels)" : "of a size < 1");
        if (s->channels != train->channels || s->height != train->height || s->width != train->width)
            return FXP_ERR(ctx, FXP_EINVAL, "the %s images are [%d,%d,%d] but the train images "
                           "[%d,%d,%d]", split_names[k], s->channels, s->height, s->width,
                           train->channels, train->height, train->width);
    }
    const fxp_attr attrs[] = {
        { "format", FXP_ATTR_STRING, FXP_IMAGE_DATASET_FORMAT, 0, 0 },
        { "dataset", FXP_ATTR_STRING, dataset, 0, 0 },
        { "channels", FXP_ATTR_INT, NULL, 0, train->channels },
        { "height", FXP_ATTR_INT, NULL, 0, train->height },
        { "width", FXP_ATTR_INT, NULL, 0, train->width },
        { "n_train", FXP_ATTR_INT, NULL, 0, train->n },
        { "n_valid", FXP_ATTR_INT, NULL, 0, valid->n },
        { "n_test", FXP_ATTR_INT, NULL, 0, test->n },
        { "source", FXP_ATTR_STRING, source, 0, 0 },
        { "library_version", FXP_ATTR_STRING, fxp_version(), 0, 0 },
    };
    int rc;
    H5E_BEGIN_TRY {
        rc = write_file(ctx, path, splits, attrs, (int)(sizeof attrs / sizeof attrs[0]));
    } H5E_END_TRY;
    return rc;
}

/* Open dataset `name` of fid (the caller checked that it exists) and check
 * that it holds unsigned bytes of the given rank with no zero dimension;
 * dims receive its shape, *dset_out the open dataset. */
static int open_u8(fxp_ctx *ctx, hid_t fid, const char *name, int rank, int *dims,
                   const char *path, hid_t *dset_out)
{
    hid_t dset = -1, type = -1;
    int rc = FXP_OK;
    *dset_out = -1;
    FXP_TRY(fxp__h5_open_dataset(ctx, fid, name, path, &dset, &type));
    const H5T_class_t cls = H5Tget_class(type);
    if (cls != H5T_INTEGER || H5Tget_size(type) != 1 || H5Tget_sign(type) != H5T_SGN_NONE) {
        char what[64];
        if (cls == H5T_INTEGER)
            snprintf(what, sizeof what, "%s %zu-byte integers",
                     H5Tget_sign(type) == H5T_SGN_NONE ? "unsigned" : "signed", H5Tget_size(type));
        else
            snprintf(what, sizeof what, "%s", fxp__h5_class_name(cls));
        rc = FXP_ERR(ctx, FXP_EFORMAT, "%s: dataset \"%s\" holds %s; images and labels must be "
                     "uint8", path, name, what);
        goto out;
    }
    const int nd = fxp__h5_shape(dset, dims);
    if (nd != rank) {
        char got[32];
        snprintf(got, sizeof got, nd < 0 ? "above %d" : "%d", nd < 0 ? FXP_MAX_DIMS : nd);
        rc = FXP_ERR(ctx, FXP_EFORMAT, "%s: dataset \"%s\" has rank %s; expected %d (%s)", path,
                     name, got, rank, rank == 4 ? "[n, channels, height, width]" : "[n]");
        goto out;
    }
    FXP_TRY(fxp__h5_check_nonempty(ctx, dims, nd, name, path));
    *dset_out = dset;
    dset = -1;
out:
    if (type >= 0) H5Tclose(type);
    if (dset >= 0) H5Dclose(dset);
    return rc;
}

static int read_split(fxp_ctx *ctx, const char *path, const char *split, fxp_images *out)
{
    hid_t fid = -1, dset = -1, ldset = -1;
    int rc = fxp__h5_open(ctx, path, &fid), dims[FXP_MAX_DIMS], ldims[FXP_MAX_DIMS];
    char lname[1024];
    if (rc < 0) return rc;
    if (!fxp__h5_exists(fid, split)) {
        char have[256];
        fxp__h5_root_names(fid, have, sizeof have);
        rc = FXP_ERR(ctx, FXP_ENOTFOUND, "%s has no split \"%s\" (its root holds: %s)", path,
                     split, have);
        goto out;
    }
    FXP_TRY(open_u8(ctx, fid, split, 4, dims, path, &dset));
    if (snprintf(lname, sizeof lname, "%s_labels", split) >= (int)sizeof lname) {
        rc = FXP_ERR(ctx, FXP_EINVAL, "split name too long: %s", split);
        goto out;
    }
    const int has_labels = fxp__h5_exists(fid, lname);
    if (has_labels) {
        FXP_TRY(open_u8(ctx, fid, lname, 1, ldims, path, &ldset));
        if (ldims[0] != dims[0]) {
            rc = FXP_ERR(ctx, FXP_EFORMAT, "%s: \"%s\" holds %d labels for the %d images of \"%s\"",
                         path, lname, ldims[0], dims[0], split);
            goto out;
        }
    }
    FXP_TRY(fxp_images_alloc(ctx, out, dims[0], dims[1], dims[2], dims[3], has_labels));
    if (fxp__h5_read_all(dset, H5T_NATIVE_UINT8, out->pixels) < 0 ||
        (has_labels && fxp__h5_read_all(ldset, H5T_NATIVE_UINT8, out->labels) < 0)) {
        fxp_images_free(out);
        rc = FXP_ERR(ctx, FXP_EFORMAT, "%s: cannot read split \"%s\" (damaged or truncated file?)",
                     path, split);
        goto out;
    }
out:
    if (ldset >= 0) H5Dclose(ldset);
    if (dset >= 0) H5Dclose(dset);
    H5Fclose(fid);
    return rc;
}

int fxp_image_dataset_read(fxp_ctx *ctx, const char *path, const char *split, fxp_images *out)
{
    FXP_API_SCOPE();
    if (out) memset(out, 0, sizeof *out);
    if (!path || !*path || !split || !*split || !out)
        return FXP_ERR(ctx, FXP_EINVAL, "path, split name and output are required");
    int rc;
    H5E_BEGIN_TRY { rc = read_split(ctx, path, split, out); } H5E_END_TRY;
    return rc;
}
