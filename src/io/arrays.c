/* HDF5 array files: writing float32 arrays with root attributes (sample
 * files), reading float arrays and attributes from any HDF5 file (io.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/h5util.h"

static int write_arrays(fxp_ctx *ctx, const char *path, int n, const char *const *names,
                        const fxp_tensor *const *arrays, int n_attrs, const fxp_attr *attrs)
{
    fxp__h5_writer w;
    int rc = fxp__h5_create_tmp(ctx, path, &w);
    if (rc < 0) return rc;
    const hid_t fid = w.fid;
    for (int k = 0; k < n && rc >= 0; k++)
        rc = fxp__h5_write_floats(ctx, fid, names[k], arrays[k]->ndim, arrays[k]->shape,
                                  arrays[k]->data, path);
    for (int k = 0; k < n_attrs && rc >= 0; k++) rc = fxp__h5_attr_write(ctx, fid, &attrs[k], path);
    int fin = fxp__h5_finish(ctx, &w, rc >= 0);
    return rc < 0 ? rc : fin;
}

int fxp_h5_write_arrays(fxp_ctx *ctx, const char *path, int n, const char *const *names,
                        const fxp_tensor *const *arrays, int n_attrs, const fxp_attr *attrs)
{
    FXP_API_SCOPE();
    if (!path || n < 0 || (n && (!names || !arrays)) || n_attrs < 0 || (n_attrs && !attrs))
        return FXP_ERR(ctx, FXP_EINVAL, "bad arguments");
    for (int k = 0; k < n; k++)
        if (!names[k] || !*names[k] || !arrays[k] || !arrays[k]->data)
            return FXP_ERR(ctx, FXP_EINVAL, "array %d has no name or no data", k);
    int rc;
    H5E_BEGIN_TRY { rc = write_arrays(ctx, path, n, names, arrays, n_attrs, attrs); } H5E_END_TRY;
    return rc;
}

static int read_array(fxp_ctx *ctx, const char *path, const char *name, fxp_tensor *out)
{
    hid_t fid;
    int rc = fxp__h5_open(ctx, path, &fid);
    if (rc < 0) return rc;
    rc = fxp__h5_read_tensor(ctx, fid, name, 1, out, path);
    H5Fclose(fid);
    return rc;
}

int fxp_h5_read_array(fxp_ctx *ctx, const char *path, const char *name, fxp_tensor *out)
{
    FXP_API_SCOPE();
    if (out) memset(out, 0, sizeof *out);
    if (!path || !name || !*name || !out) return FXP_ERR(ctx, FXP_EINVAL, "bad arguments");
    int rc;
    H5E_BEGIN_TRY { rc = read_array(ctx, path, name, out); } H5E_END_TRY;
    return rc;
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
    FXP_API_SCOPE();
    if (!path || !key || !buf || !size) return FXP_ERR(ctx, FXP_EINVAL, "bad arguments");
    int rc;
    H5E_BEGIN_TRY { rc = read_attr(ctx, path, key, buf, size); } H5E_END_TRY;
    return rc;
}
