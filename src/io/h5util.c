/* Internal HDF5 helpers (see h5util.h): atomic creation, opening with
 * classified errors, attributes, and the validating float reader.  Callers
 * wrap calls in H5E_BEGIN_TRY / H5E_END_TRY so HDF5 never prints. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/h5util.h"

int fxp__h5_create_tmp(fxp_ctx *ctx, const char *path, char *tmp, size_t size, hid_t *fid)
{
    *fid = -1;
    if (!path || !*path) return FXP_ERR(ctx, FXP_EINVAL, "empty output path");
    if (snprintf(tmp, size, "%s.tmp.%ld", path, (long)getpid()) >= (int)size)
        return FXP_ERR(ctx, FXP_EINVAL, "path too long (%zu bytes): %s", strlen(path), path);
    errno = 0;
    *fid = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (*fid < 0) {
        const int err = errno;
        unlink(tmp);
        return FXP_ERR(ctx, FXP_EIO, "cannot create %s (does the directory exist and is it "
                       "writable?%s%s)", tmp, err ? " " : "", err ? strerror(err) : "");
    }
    return FXP_OK;
}

/* fsync the directory holding path, so that a completed rename survives a crash. */
static int sync_dir(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else if (snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path) >= (int)sizeof dir) return -1;
    int fd = open(dir, O_RDONLY);
    if (fd < 0) return -1;
    int r = fsync(fd);
    close(fd);
    return r;
}

int fxp__h5_finish(fxp_ctx *ctx, hid_t fid, const char *tmp, const char *path, int ok)
{
    int rc = ok ? FXP_OK : FXP_EIO;
    if (fid >= 0 && H5Fclose(fid) < 0 && rc == FXP_OK)
        rc = FXP_ERR(ctx, FXP_EIO, "cannot finish writing %s", tmp);
    if (rc == FXP_OK) { /* make the data durable before it replaces the old file */
        int fd = open(tmp, O_RDONLY);
        if (fd < 0 || fsync(fd) < 0) rc = FXP_ERR(ctx, FXP_EIO, "cannot sync %s: %s", tmp, strerror(errno));
        if (fd >= 0) close(fd);
    }
    if (rc == FXP_OK && rename(tmp, path) < 0)
        rc = FXP_ERR(ctx, FXP_EIO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    if (rc != FXP_OK) {
        unlink(tmp);
        return rc;
    }
    /* the file is complete under its name; a failed directory sync only
     * weakens durability against power loss, so it is not an error */
    (void)sync_dir(path);
    return FXP_OK;
}

int fxp__h5_open(fxp_ctx *ctx, const char *path, hid_t *fid)
{
    struct stat st;
    if (!path || stat(path, &st) < 0)
        return FXP_ERR(ctx, FXP_EIO, "cannot read %s: %s", path ? path : "(null)",
                       path ? strerror(errno) : "no path");
    if (!S_ISREG(st.st_mode)) return FXP_ERR(ctx, FXP_EIO, "%s is not a regular file", path);
    htri_t is = H5Fis_hdf5(path);
    if (is <= 0) return FXP_ERR(ctx, FXP_EFORMAT, "%s is not an HDF5 file", path);
    *fid = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (*fid < 0)
        return FXP_ERR(ctx, FXP_EFORMAT, "cannot open %s: the file is damaged or truncated", path);
    return FXP_OK;
}

hid_t fxp__h5_lcpl(void)
{
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    if (lcpl >= 0 && H5Pset_create_intermediate_group(lcpl, 1) < 0) {
        H5Pclose(lcpl);
        return -1;
    }
    return lcpl;
}

int fxp__h5_write_floats(fxp_ctx *ctx, hid_t loc, const char *name, int ndim, const int *shape,
                         const float *data, const char *path)
{
    hsize_t dims[FXP_MAX_DIMS];
    for (int i = 0; i < ndim; i++) dims[i] = (hsize_t)shape[i];
    int rc = FXP_OK;
    hid_t lcpl = fxp__h5_lcpl();
    hid_t space = ndim ? H5Screate_simple(ndim, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t dset = lcpl >= 0 && space >= 0
                     ? H5Dcreate2(loc, name, H5T_IEEE_F32LE, space, lcpl, H5P_DEFAULT, H5P_DEFAULT)
                     : -1;
    if (dset < 0 || H5Dwrite(dset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
        rc = FXP_ERR(ctx, FXP_EIO, "%s: cannot write dataset %s", path, name);
    if (dset >= 0) H5Dclose(dset);
    if (space >= 0) H5Sclose(space);
    if (lcpl >= 0) H5Pclose(lcpl);
    return rc;
}

int fxp__h5_attr_write(fxp_ctx *ctx, hid_t obj, const fxp_attr *a, const char *path)
{
    hid_t type = -1, space = H5Screate(H5S_SCALAR), attr = -1;
    herr_t w = -1;
    if (a->type == FXP_ATTR_STRING) {
        type = H5Tcopy(H5T_C_S1);
        if (type >= 0 && H5Tset_size(type, H5T_VARIABLE) >= 0 && H5Tset_cset(type, H5T_CSET_UTF8) >= 0 &&
            (attr = H5Acreate2(obj, a->key, type, space, H5P_DEFAULT, H5P_DEFAULT)) >= 0) {
            const char *s = a->s ? a->s : "";
            w = H5Awrite(attr, type, &s);
        }
    } else if (a->type == FXP_ATTR_DOUBLE) {
        if ((attr = H5Acreate2(obj, a->key, H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT)) >= 0)
            w = H5Awrite(attr, H5T_NATIVE_DOUBLE, &a->d);
    } else {
        if ((attr = H5Acreate2(obj, a->key, H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT)) >= 0)
            w = H5Awrite(attr, H5T_NATIVE_INT64, &a->i);
    }
    if (attr >= 0) H5Aclose(attr);
    if (type >= 0) H5Tclose(type);
    if (space >= 0) H5Sclose(space);
    return w < 0 ? FXP_ERR(ctx, FXP_EIO, "%s: cannot write attribute %s", path, a->key) : FXP_OK;
}

int fxp__h5_attr_text(fxp_ctx *ctx, hid_t obj, const char *key, char *buf, size_t size,
                      const char *path)
{
    if (H5Aexists(obj, key) <= 0)
        return FXP_ERR(ctx, FXP_ENOTFOUND, "%s: no attribute \"%s\"", path, key);
    int rc = FXP_OK;
    hid_t attr = H5Aopen(obj, key, H5P_DEFAULT), type = attr >= 0 ? H5Aget_type(attr) : -1;
    H5T_class_t cls = type >= 0 ? H5Tget_class(type) : H5T_NO_CLASS;
    if (cls == H5T_STRING) {
        if (H5Tis_variable_str(type) > 0) {
            char *s = NULL;
            hid_t mem = H5Tcopy(type); /* same character set: no conversion */
            if (H5Aread(attr, mem, &s) < 0 || !s)
                rc = FXP_ERR(ctx, FXP_EFORMAT, "%s: cannot read attribute %s", path, key);
            else if (snprintf(buf, size, "%s", s) >= (int)size)
                rc = FXP_ERR(ctx, FXP_EINVAL, "%s: attribute %s is longer than %zu", path, key, size - 1);
            if (s) H5free_memory(s);
            H5Tclose(mem);
        } else {
            size_t n = H5Tget_size(type);
            char *s = calloc(n + 1, 1);
            hid_t mem = H5Tcopy(type);
            H5Tset_size(mem, n + 1);
            H5Tset_strpad(mem, H5T_STR_NULLTERM);
            if (!s || H5Aread(attr, mem, s) < 0)
                rc = FXP_ERR(ctx, FXP_EFORMAT, "%s: cannot read attribute %s", path, key);
            else if (snprintf(buf, size, "%s", s) >= (int)size)
                rc = FXP_ERR(ctx, FXP_EINVAL, "%s: attribute %s is longer than %zu", path, key, size - 1);
            free(s);
            H5Tclose(mem);
        }
    } else if (cls == H5T_FLOAT || cls == H5T_INTEGER) {
        double d;
        if (H5Aread(attr, H5T_NATIVE_DOUBLE, &d) < 0)
            rc = FXP_ERR(ctx, FXP_EFORMAT, "%s: cannot read attribute %s", path, key);
        else
            snprintf(buf, size, "%.17g", d);
    } else {
        rc = FXP_ERR(ctx, FXP_EFORMAT, "%s: attribute %s is neither text nor a number", path, key);
    }
    if (type >= 0) H5Tclose(type);
    if (attr >= 0) H5Aclose(attr);
    return rc;
}

int fxp__h5_exists(hid_t loc, const char *name)
{
    char buf[1024];
    if (snprintf(buf, sizeof buf, "%s", name) >= (int)sizeof buf) return 0;
    for (char *p = buf; (p = strchr(p + 1, '/'));) { /* each parent must exist */
        *p = '\0';
        if (H5Lexists(loc, buf, H5P_DEFAULT) <= 0) return 0;
        *p = '/';
    }
    return H5Lexists(loc, buf, H5P_DEFAULT) > 0;
}

int fxp__h5_shape(hid_t dset, int *dims)
{
    hid_t space = H5Dget_space(dset);
    if (space < 0) return -1;
    int nd = H5Sget_simple_extent_ndims(space);
    hsize_t d[32];
    if (nd < 0 || nd > FXP_MAX_DIMS || H5Sget_simple_extent_dims(space, d, NULL) < 0) nd = -1;
    for (int i = 0; i >= 0 && i < nd; i++) dims[i] = d[i] > 0x7fffffff ? -1 : (int)d[i];
    H5Sclose(space);
    return nd;
}

/* Names of the objects at the root, comma separated, for error messages. */
typedef struct name_list {
    char buf[256];
    int more;
} name_list;

static herr_t collect_name(hid_t g, const char *name, const H5L_info_t *info, void *op)
{
    (void)g;
    (void)info;
    name_list *l = op;
    size_t len = strlen(l->buf);
    if (len + strlen(name) + 8 >= sizeof l->buf) {
        l->more = 1;
        return 1; /* stop: the message says "..." */
    }
    snprintf(l->buf + len, sizeof l->buf - len, "%s%s", len ? ", " : "", name);
    return 0;
}

void fxp__h5_root_names(hid_t fid, char *buf, size_t size)
{
    name_list have = { "", 0 };
    H5Literate(fid, H5_INDEX_NAME, H5_ITER_INC, NULL, collect_name, &have);
    snprintf(buf, size, "%s%s", have.buf[0] ? have.buf : "nothing", have.more ? ", ..." : "");
}

const char *fxp__h5_class_name(H5T_class_t cls)
{
    switch (cls) {
    case H5T_INTEGER: return "integers";
    case H5T_FLOAT: return "floating-point numbers";
    case H5T_STRING: return "strings";
    case H5T_COMPOUND: return "a compound type";
    case H5T_ENUM: return "an enum type";
    case H5T_ARRAY: return "an array type";
    case H5T_VLEN: return "variable-length sequences";
    case H5T_OPAQUE: return "opaque data";
    case H5T_BITFIELD: return "bit fields";
    case H5T_REFERENCE: return "references";
    default: return "an unknown type";
    }
}

int fxp__h5_read_tensor(fxp_ctx *ctx, hid_t fid, const char *name, int allow_int,
                        fxp_tensor *out, const char *path)
{
    hid_t dset = -1, type = -1;
    int rc = FXP_OK;
    memset(out, 0, sizeof *out);
    if (!fxp__h5_exists(fid, name)) {
        char have[256];
        fxp__h5_root_names(fid, have, sizeof have);
        rc = FXP_ERR(ctx, FXP_ENOTFOUND, "%s has no dataset \"%s\" (its root holds: %s)", path,
                     name, have);
        goto out;
    }
    H5O_info_t oi;
    if (H5Oget_info_by_name(fid, name, &oi, H5P_DEFAULT) < 0) {
        rc = FXP_ERR(ctx, FXP_EFORMAT, "%s: cannot read the header of \"%s\" (damaged file?)", path, name);
        goto out;
    }
    if (oi.type != H5O_TYPE_DATASET) {
        rc = FXP_ERR(ctx, FXP_EFORMAT, "%s: \"%s\" is a %s, not a dataset", path, name,
                     oi.type == H5O_TYPE_GROUP ? "group" : "named type");
        goto out;
    }
    if ((dset = H5Dopen2(fid, name, H5P_DEFAULT)) < 0 || (type = H5Dget_type(dset)) < 0) {
        rc = FXP_ERR(ctx, FXP_EFORMAT, "%s: cannot open dataset \"%s\" (damaged file?)", path, name);
        goto out;
    }
    const H5T_class_t cls = H5Tget_class(type);
    if (cls != H5T_FLOAT && !(allow_int && cls == H5T_INTEGER)) {
        rc = FXP_ERR(ctx, FXP_EFORMAT, "%s: dataset \"%s\" holds %s; expected %s", path, name,
                     fxp__h5_class_name(cls), allow_int ? "numbers" : "floating-point numbers (float32 or float64)");
        goto out;
    }
    int dims[FXP_MAX_DIMS];
    const int nd = fxp__h5_shape(dset, dims);
    if (nd < 1) {
        rc = FXP_ERR(ctx, FXP_EFORMAT, "%s: dataset \"%s\" has rank %s (1..%d supported)", path, name,
                     nd == 0 ? "0 (a scalar)" : "too large or unreadable", FXP_MAX_DIMS);
        goto out;
    }
    for (int i = 0; i < nd; i++)
        if (dims[i] < 1) {
            rc = FXP_ERR(ctx, FXP_EFORMAT, "%s: dataset \"%s\" is empty (dimension %d is %d)", path,
                         name, i, dims[i]);
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
            const double v = out->data[i];
            fxp_tensor_release(out);
            rc = FXP_ERR(ctx, FXP_ENUMERIC, "%s: dataset \"%s\" holds %s at flat index %lld%s", path,
                         name, isnan(v) ? "NaN" : "Inf", (long long)i,
                         isnan(v) ? "" : " (or a value too large for float32)");
            goto out;
        }
out:
    if (type >= 0) H5Tclose(type);
    if (dset >= 0) H5Dclose(dset);
    return rc;
}
