/* Writing one large float32 array to an HDF5 file in pieces (io.h,
 * fxp_h5_array_writer_*), for outputs too big to hold in memory.
 *
 * Layout: a contiguous dataset whose storage HDF5 allocates when the dataset
 * is created (H5D_ALLOC_TIME_EARLY, no fill).  HDF5 writes only the small
 * metadata (superblock, object header, attributes) and closes the file at
 * once; the rows are then written with pwrite() at the dataset's byte offset
 * (H5Dget_offset).  The file's datatype is H5T_NATIVE_FLOAT, so the bytes in
 * memory are the bytes in the file.  Before the first row, the space of the
 * whole array is reserved with posix_fallocate(), so a file system that
 * cannot hold the output fails up front (FXP_EIO, "no space") and never
 * half-way; the bulk data never passes through HDF5, whose close cannot
 * then fail on a full disk.  The temporary "<path>.tmp.<pid>" is renamed
 * over path by fxp_h5_array_writer_commit, as for every writer of io.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "io/h5util.h"

struct fxp_h5_array_writer {
    fxp_ctx *ctx;
    char *path, *tmp;
    int fd;
    int ndim;
    int shape[FXP_MAX_DIMS];
    size_t row_floats;      /* floats per row (product of shape[1..]) */
    int64_t rows_written;
    off_t offset;           /* byte offset of the dataset in the file */
    int committed;
};

/* Free bytes for an unprivileged writer in the directory of path, or -1 if
 * unknown. */
static double free_bytes(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else if (snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path) >= (int)sizeof dir) return -1;
    struct statvfs s;
    if (statvfs(dir, &s) < 0) return -1;
    return (double)s.f_bavail * (double)s.f_frsize;
}

/* Create the temporary file holding the metadata; sets w->offset. */
static int create_skeleton(fxp_h5_array_writer *w, const char *name, int n_attrs,
                           const fxp_attr *attrs)
{
    static const char fn[] = "fxp_h5_array_writer_new";
    hsize_t dims[FXP_MAX_DIMS];
    for (int i = 0; i < w->ndim; i++) dims[i] = (hsize_t)w->shape[i];
    int rc = FXP_OK;
    errno = 0;
    hid_t fid = H5Fcreate(w->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (fid < 0) {
        const int err = errno;
        return fxp__err(w->ctx, FXP_EIO, fn, "cannot create %s (does the directory exist and is "
                        "it writable?%s%s)", w->tmp, err ? " " : "", err ? strerror(err) : "");
    }
    hid_t space = H5Screate_simple(w->ndim, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE),
          lcpl = fxp__h5_lcpl(), dset = -1;
    if (space < 0 || dcpl < 0 || lcpl < 0 || H5Pset_layout(dcpl, H5D_CONTIGUOUS) < 0 ||
        H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY) < 0 ||
        H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER) < 0 ||
        (dset = H5Dcreate2(fid, name, H5T_NATIVE_FLOAT, space, lcpl, dcpl, H5P_DEFAULT)) < 0)
        rc = fxp__err(w->ctx, FXP_EIO, fn, "%s: cannot create dataset \"%s\"", w->path, name);
    if (rc == FXP_OK) {
        const haddr_t off = H5Dget_offset(dset);
        if (off == HADDR_UNDEF || off > (haddr_t)INT64_MAX / 2)
            rc = fxp__err(w->ctx, FXP_EINTERNAL, fn, "%s: no storage address for \"%s\"", w->path,
                          name);
        else
            w->offset = (off_t)off;
    }
    for (int k = 0; k < n_attrs && rc == FXP_OK; k++)
        if (fxp__h5_attr_write(w->ctx, fid, &attrs[k], w->path) < 0)
            rc = fxp__err(w->ctx, FXP_EIO, fn, "%s: cannot write attribute %s", w->path,
                          attrs[k].key);
    if (dset >= 0) H5Dclose(dset);
    if (lcpl >= 0) H5Pclose(lcpl);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (space >= 0) H5Sclose(space);
    if (H5Fclose(fid) < 0 && rc == FXP_OK)
        rc = fxp__err(w->ctx, FXP_EIO, fn, "cannot finish the header of %s", w->tmp);
    return rc;
}

int fxp_h5_array_writer_new(fxp_ctx *ctx, const char *path, const char *name, int ndim,
                            const int *shape, int n_attrs, const fxp_attr *attrs,
                            fxp_h5_array_writer **out)
{
    static const char fn[] = "fxp_h5_array_writer_new";
    if (out) *out = NULL;
    if (!path || !*path || !name || !*name || !shape || !out || n_attrs < 0 ||
        (n_attrs && !attrs))
        return fxp__err(ctx, FXP_EINVAL, fn, "bad arguments (path, name, shape, out or attrs "
                        "missing)");
    if (ndim < 1 || ndim > FXP_MAX_DIMS)
        return fxp__err(ctx, FXP_EINVAL, fn, "rank %d outside [1, %d]", ndim, FXP_MAX_DIMS);
    double bytes = sizeof(float);
    size_t row = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 1) return fxp__err(ctx, FXP_EINVAL, fn, "dimension %d is %d", i, shape[i]);
        bytes *= shape[i];
        if (i > 0) row *= (size_t)shape[i];
    }
    if (bytes > (double)INT64_MAX / 4)
        return fxp__err(ctx, FXP_EINVAL, fn, "%s: %.3g bytes is too large", path, bytes);
    for (int k = 0; k < n_attrs; k++)
        if (!attrs[k].key || !*attrs[k].key)
            return fxp__err(ctx, FXP_EINVAL, fn, "attribute %d has no name", k);
    /* HDF5 must never meet a full disk (a failed close leaves its file
     * half-open): refuse up front what cannot fit, with room for metadata */
    const double avail = free_bytes(path);
    if (avail >= 0 && avail < bytes + 65536)
        return fxp__err(ctx, FXP_EIO, fn, "%s: the output needs %.0f bytes but its file system "
                        "has %.0f free", path, bytes + 65536, avail);
    fxp_h5_array_writer *w = calloc(1, sizeof *w);
    const size_t len = strlen(path);
    if (!w || !(w->path = malloc(len + 1)) || !(w->tmp = malloc(len + 32))) {
        if (w) free(w->path);
        free(w);
        return fxp__err(ctx, FXP_ENOMEM, fn, "out of memory");
    }
    memcpy(w->path, path, len + 1);
    snprintf(w->tmp, len + 32, "%s.tmp.%ld", path, (long)getpid());
    w->ctx = ctx;
    w->fd = -1;
    w->ndim = ndim;
    for (int i = 0; i < ndim; i++) w->shape[i] = shape[i];
    w->row_floats = row;
    int rc;
    H5E_BEGIN_TRY { rc = create_skeleton(w, name, n_attrs, attrs); } H5E_END_TRY;
    if (rc == FXP_OK) {
        w->fd = open(w->tmp, O_WRONLY | O_CLOEXEC);
        if (w->fd < 0) rc = fxp__err(ctx, FXP_EIO, fn, "cannot reopen %s: %s", w->tmp, strerror(errno));
    }
    if (rc == FXP_OK) { /* reserve the data's blocks now: a full disk fails here, not later */
        const int e = posix_fallocate(w->fd, w->offset, (off_t)bytes);
        if (e == ENOSPC || e == EFBIG)
            rc = fxp__err(ctx, FXP_EIO, fn, "%s: no space for %.0f bytes of \"%s\" (%s)", path,
                          bytes, name, strerror(e));
        else if (e != 0 && e != EOPNOTSUPP && e != EINVAL)
            rc = fxp__err(ctx, FXP_EIO, fn, "%s: cannot reserve %.0f bytes: %s", path, bytes,
                          strerror(e));
    }
    if (rc < 0) {
        fxp_h5_array_writer_free(w);
        return rc;
    }
    *out = w;
    return FXP_OK;
}

int fxp_h5_array_writer_append(fxp_h5_array_writer *w, const fxp_tensor *rows)
{
    static const char fn[] = "fxp_h5_array_writer_append";
    if (!w || !rows || !rows->data) return fxp__err(w ? w->ctx : NULL, FXP_EINVAL, fn, "bad arguments");
    if (w->committed || w->fd < 0)
        return fxp__err(w->ctx, FXP_ESTATE, fn, "%s: the writer is closed", w->path);
    int ok = rows->ndim == w->ndim;
    for (int i = 1; ok && i < w->ndim; i++) ok = rows->shape[i] == w->shape[i];
    if (!ok || rows->shape[0] < 0) {
        char got[64];
        fxp_tensor_shape_str(rows, got, sizeof got);
        return fxp__err(w->ctx, FXP_ESHAPE, fn, "%s: rows of shape %s do not fit the array's "
                        "rows", w->path, got);
    }
    if (rows->shape[0] > w->shape[0] - w->rows_written)
        return fxp__err(w->ctx, FXP_ESHAPE, fn, "%s: %d more rows exceed the %d declared (%lld "
                        "written)", w->path, rows->shape[0], w->shape[0],
                        (long long)w->rows_written);
    const size_t row_bytes = w->row_floats * sizeof(float);
    const char *p = (const char *)rows->data;
    size_t left = (size_t)rows->shape[0] * row_bytes;
    off_t at = w->offset + (off_t)(w->rows_written * (int64_t)row_bytes);
    while (left > 0) {
        const ssize_t k = pwrite(w->fd, p, left > ((size_t)1 << 30) ? (size_t)1 << 30 : left, at);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0)
            return fxp__err(w->ctx, FXP_EIO, fn, "cannot write %s: %s", w->tmp,
                            k < 0 ? strerror(errno) : "nothing written");
        p += k;
        at += k;
        left -= (size_t)k;
    }
    w->rows_written += rows->shape[0];
    return FXP_OK;
}

int64_t fxp_h5_array_writer_rows(const fxp_h5_array_writer *w) { return w ? w->rows_written : 0; }

/* fsync the directory holding path, so that a completed rename survives a crash. */
static void sync_parent(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else if (snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path) >= (int)sizeof dir) return;
    int fd = open(dir, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    (void)fsync(fd);
    close(fd);
}

int fxp_h5_array_writer_commit(fxp_h5_array_writer *w)
{
    static const char fn[] = "fxp_h5_array_writer_commit";
    if (!w) return fxp__err(NULL, FXP_EINVAL, fn, "writer is NULL");
    if (w->committed || w->fd < 0)
        return fxp__err(w->ctx, FXP_ESTATE, fn, "%s: the writer is closed", w->path);
    if (w->rows_written != w->shape[0])
        return fxp__err(w->ctx, FXP_ESTATE, fn, "%s: %lld of %d rows written", w->path,
                        (long long)w->rows_written, w->shape[0]);
    int rc = FXP_OK;
    if (fsync(w->fd) < 0) rc = fxp__err(w->ctx, FXP_EIO, fn, "cannot sync %s: %s", w->tmp, strerror(errno));
    if (close(w->fd) < 0 && rc == FXP_OK)
        rc = fxp__err(w->ctx, FXP_EIO, fn, "cannot write %s: %s", w->tmp, strerror(errno));
    w->fd = -1;
    if (rc == FXP_OK && rename(w->tmp, w->path) < 0)
        rc = fxp__err(w->ctx, FXP_EIO, fn, "cannot rename %s to %s: %s", w->tmp, w->path,
                      strerror(errno));
    if (rc < 0) {
        unlink(w->tmp);
        return rc;
    }
    w->committed = 1;
    sync_parent(w->path);
    return FXP_OK;
}

void fxp_h5_array_writer_free(fxp_h5_array_writer *w)
{
    if (!w) return;
    if (w->fd >= 0) close(w->fd);
    if (!w->committed && w->tmp) unlink(w->tmp);
    free(w->path);
    free(w->tmp);
    free(w);
}
