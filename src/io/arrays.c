/* HDF5 array files: dataset files (train/valid/test graphs), sample files,
 * and reading float arrays from any HDF5 file (see io.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/h5util.h"

static int write_arrays(fxp_ctx *ctx, const char *path, int n, const char *const *names,
                        const fxp_tensor *const *arrays, int n_attrs, const fxp_attr *attrs)
{
    char tmp[4096];
    hid_t fid = fxp__h5_create_tmp(ctx, path, tmp, sizeof tmp);
    if (fid < 0) return fxp_ctx_status(ctx) < 0 ? fxp_ctx_status(ctx) : FXP_EIO;
    int rc = FXP_OK;
    for (int k = 0; k < n && rc >= 0; k++)
        rc = fxp__h5_write_floats(ctx, fid, names[k], arrays[k]->ndim, arrays[k]->shape,
                                  arrays[k]->data, path);
    for (int k = 0; k < n_attrs && rc >= 0; k++) rc = fxp__h5_attr_write(ctx, fid, &attrs[k], path);
    int fin = fxp__h5_finish(ctx, fid, tmp, path, rc >= 0);
    return rc < 0 ? rc : fin;
}

int fxp_h5_write_arrays(fxp_ctx *ctx, const char *path, int n, const char *const *names,
                        const fxp_tensor *const *arrays, int n_attrs, const fxp_attr *attrs)
{
    if (!path || n < 0 || (n && (!names || !arrays)) || n_attrs < 0 || (n_attrs && !attrs))
        return FXP_ERR(ctx, FXP_EINVAL, "bad arguments");
    for (int k = 0; k < n; k++)
        if (!names[k] || !*names[k] || !arrays[k] || !arrays[k]->data)
            return FXP_ERR(ctx, FXP_EINVAL, "array %d has no name or no data", k);
    int rc;
    H5E_BEGIN_TRY { rc = write_arrays(ctx, path, n, names, arrays, n_attrs, attrs); } H5E_END_TRY;
    return rc;
}

/* Names of the objects at the root, comma separated, for error messages. */
static herr_t collect_name(hid_t g, const char *name, const H5L_info_t *info, void *op)
{
    (void)g;
    (void)info;
    char *buf = op;
    size_t len = strlen(buf);
    if (len < 200) snprintf(buf + len, 256 - len, "%s%s", len ? ", " : "", name);
    return 0;
}

static int read_array(fxp_ctx *ctx, const char *path, const char *name, fxp_tensor *out)
{
    hid_t fid, dset = -1, type = -1;
    int rc = fxp__h5_open(ctx, path, &fid);
    if (rc < 0) return rc;
    if (!fxp__h5_exists(fid, name)) {
        char have[256] = "";
        H5Literate(fid, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, collect_name, have);
        rc = FXP_ERR(ctx, FXP_ENOTFOUND, "%s has no dataset \"%s\" (it has: %s)", path, name,
                     have[0] ? have : "nothing");
        goto out;
    }
    H5O_info_t oi;
    if (H5Oget_info_by_name(fid, name, &oi, H5P_DEFAULT) < 0 || oi.type != H5O_TYPE_DATASET ||
        (dset = H5Dopen2(fid, name, H5P_DEFAULT)) < 0) {
        rc = FXP_ERR(ctx, FXP_EFORMAT, "%s: \"%s\" is not a readable dataset", path, name);
        goto out;
    }
    type = H5Dget_type(dset);
    H5T_class_t cls = type >= 0 ? H5Tget_class(type) : H5T_NO_CLASS;
    if (cls != H5T_FLOAT && cls != H5T_INTEGER) {
        rc = FXP_ERR(ctx, FXP_EFORMAT, "%s: dataset \"%s\" holds %s, not numbers", path, name,
                     cls == H5T_STRING ? "strings" : "a non-numeric type");
        goto out;
    }
    int dims[FXP_MAX_DIMS];
    int nd = fxp__h5_shape(dset, dims);
    if (nd < 1) {
        rc = FXP_ERR(ctx, FXP_EFORMAT, "%s: dataset \"%s\" has rank %d (1..%d supported)", path,
                     name, nd, FXP_MAX_DIMS);
        goto out;
    }
    for (int i = 0; i < nd; i++)
        if (dims[i] < 1) {
            rc = FXP_ERR(ctx, FXP_EFORMAT, "%s: dataset \"%s\" is empty", path, name);
            goto out;
        }
    if ((rc = fxp_tensor_alloc(ctx, out, nd, dims)) < 0) goto out;
    if (H5Dread(dset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out->data) < 0) {
        fxp_tensor_release(out);
        rc = FXP_ERR(ctx, FXP_EFORMAT, "%s: cannot read dataset \"%s\" (damaged or truncated file?)",
                     path, name);
        goto out;
    }
    const int64_t n = fxp_tensor_numel(out);
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(out->data[i])) {
            fxp_tensor_release(out);
            rc = FXP_ERR(ctx, FXP_ENUMERIC, "%s: dataset \"%s\" holds a non-finite value (or one "
                         "too large for float32) at flat index %lld", path, name, (long long)i);
            goto out;
        }
out:
    if (type >= 0) H5Tclose(type);
    if (dset >= 0) H5Dclose(dset);
    H5Fclose(fid);
    return rc;
}

int fxp_h5_read_array(fxp_ctx *ctx, const char *path, const char *name, fxp_tensor *out)
{
    if (!path || !name || !*name || !out) return FXP_ERR(ctx, FXP_EINVAL, "bad arguments");
    memset(out, 0, sizeof *out);
    int rc;
    H5E_BEGIN_TRY { rc = read_array(ctx, path, name, out); } H5E_END_TRY;
    return rc;
}

int fxp_dataset_read(fxp_ctx *ctx, const char *path, const char *split, fxp_tensor *out)
{
    int rc = fxp_h5_read_array(ctx, path, split, out);
    if (rc < 0) return rc;
    if (out->ndim != 3) {
        char s[64];
        fxp_tensor_shape_str(out, s, sizeof s);
        fxp_tensor_release(out);
        return FXP_ERR(ctx, FXP_EFORMAT, "%s: \"%s\" has shape %s; graphs must be [n, nodes, features]",
                       path, split, s);
    }
    return FXP_OK;
}

static int read_attr(fxp_ctx *ctx, const char *path, const char *key, char *buf, size_t size)
{
    hid_t fid;
    int rc = fxp__h5_open(ctx, path, &fid);
    if (rc < 0) return rc;
    rc = fxp__h5_attr_text(ctx, fid, key, buf, size, path);
    H5Fclose(fid);
    return rc;
}

int fxp_h5_read_attr(fxp_ctx *ctx, const char *path, const char *key, char *buf, size_t size)
{
    if (!path || !key || !buf || !size) return FXP_ERR(ctx, FXP_EINVAL, "bad arguments");
    int rc;
    H5E_BEGIN_TRY { rc = read_attr(ctx, path, key, buf, size); } H5E_END_TRY;
    return rc;
}
