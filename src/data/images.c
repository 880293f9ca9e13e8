/* Image sets and the readers of the official CIFAR10 (binary version) and
 * IDX (MNIST, Fashion-MNIST) files, with their train/valid/test splits
 * (imagedata.h).  Every reader validates its input completely and names the
 * file in each error; on failure its outputs are left empty. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "core/internal.h"

/* ---- image sets ----------------------------------------------------------------------- */

int fxp_images_alloc(fxp_ctx *ctx, fxp_images *im, int n, int channels, int height, int width,
                     int with_labels)
{
    if (!im) return FXP_ERR(ctx, FXP_EINVAL, "im is NULL");
    memset(im, 0, sizeof *im);
    if (n < 1 || channels < 1 || height < 1 || width < 1)
        return FXP_ERR(ctx, FXP_EINVAL, "sizes must be >= 1 (got n %d, [%d,%d,%d])", n, channels,
                       height, width);
    const size_t per = (size_t)channels * (size_t)height * (size_t)width;
    if ((size_t)height > SIZE_MAX / (size_t)width / (size_t)channels || per > SIZE_MAX / (size_t)n)
        return FXP_ERR(ctx, FXP_EINVAL, "%d images of [%d,%d,%d] overflow the address space", n,
                       channels, height, width);
    im->pixels = calloc((size_t)n * per, 1);
    im->labels = with_labels ? calloc((size_t)n, 1) : NULL;
    if (!im->pixels || (with_labels && !im->labels)) {
        fxp_images_free(im);
        return FXP_ERR(ctx, FXP_ENOMEM, "cannot allocate %d images of [%d,%d,%d] (%zu bytes)", n,
                       channels, height, width, (size_t)n * per);
    }
    im->n = n;
    im->channels = channels;
    im->height = height;
    im->width = width;
    return FXP_OK;
}

void fxp_images_free(fxp_images *im)
{
    if (!im) return;
    free(im->pixels);
    free(im->labels);
    memset(im, 0, sizeof *im);
}

/* Bytes of one image. */
static size_t image_bytes(const fxp_images *im)
{
    return (size_t)im->channels * (size_t)im->height * (size_t)im->width;
}

/* Move `all` into train = its first n - n_valid images and valid = a copy of
 * its last n_valid (train keeps the buffers, shrunk; `all` is left empty).
 * `what` names the source in the error message; on failure `all` is kept. */
static int split_tail(fxp_ctx *ctx, fxp_images *all, int n_valid, const char *what,
                      fxp_images *train, fxp_images *valid)
{
    if (n_valid < 1 || n_valid >= all->n)
        return FXP_ERR(ctx, FXP_EINVAL, "n_valid %d must be in [1, %d): %s holds %d training "
                       "images", n_valid, all->n, what, all->n);
    const int n_train = all->n - n_valid;
    const size_t per = image_bytes(all);
    int rc = fxp_images_alloc(ctx, valid, n_valid, all->channels, all->height, all->width,
                              all->labels != NULL);
    if (rc < 0) return rc;
    memcpy(valid->pixels, all->pixels + (size_t)n_train * per, (size_t)n_valid * per);
    if (all->labels) memcpy(valid->labels, all->labels + n_train, (size_t)n_valid);
    *train = *all;
    memset(all, 0, sizeof *all);
    train->n = n_train;
    /* shrinking never fails in practice; if it does, the larger block is kept */
    uint8_t *p = realloc(train->pixels, (size_t)n_train * per);
    if (p) train->pixels = p;
    return FXP_OK;
}

/* FXP_EIO unless path is a readable regular file; *size receives its size. */
static int check_file(fxp_ctx *ctx, const char *path, long long *size)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return FXP_ERR(ctx, FXP_EIO, "cannot read %s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return FXP_ERR(ctx, FXP_EIO, "%s is not a regular file", path);
    if (size) *size = (long long)st.st_size;
    return FXP_OK;
}

/* "<dir>/<name>" into buf. */
static int join(fxp_ctx *ctx, char *buf, size_t size, const char *dir, const char *name)
{
    if (snprintf(buf, size, "%s/%s", dir, name) >= (int)size)
        return FXP_ERR(ctx, FXP_EINVAL, "path too long: %s/%s", dir, name);
    return FXP_OK;
}

/* ---- CIFAR10 -------------------------------------------------------------------------- */

static const char *const cifar_train_files[5] = { "data_batch_1.bin", "data_batch_2.bin",
                                                  "data_batch_3.bin", "data_batch_4.bin",
                                                  "data_batch_5.bin" };

/* Check a batch file's size and return its record count. */
static int cifar_records(fxp_ctx *ctx, const char *path, int *n)
{
    long long size;
    int rc = check_file(ctx, path, &size);
    if (rc < 0) return rc;
    if (size == 0) return FXP_ERR(ctx, FXP_EFORMAT, "%s is empty (no CIFAR10 records)", path);
    if (size % FXP_CIFAR10_RECORD != 0)
        return FXP_ERR(ctx, FXP_EFORMAT, "%s is truncated or not a CIFAR10 binary batch: %lld bytes "
                       "are %lld whole records of %d bytes and %lld bytes more", path, size,
                       size / FXP_CIFAR10_RECORD, FXP_CIFAR10_RECORD, size % FXP_CIFAR10_RECORD);
    if (size / FXP_CIFAR10_RECORD > INT_MAX)
        return FXP_ERR(ctx, FXP_EFORMAT, "%s holds too many records (%lld)", path,
                       size / FXP_CIFAR10_RECORD);
    *n = (int)(size / FXP_CIFAR10_RECORD);
    return FXP_OK;
}

/* Read the n records of path into images first .. first + n - 1 of im. */
static int cifar_read_into(fxp_ctx *ctx, const char *path, int n, fxp_images *im, int first)
{
    enum { PIXELS = FXP_CIFAR10_RECORD - 1 };
    FILE *f = fopen(path, "rb");
    if (!f) return FXP_ERR(ctx, FXP_EIO, "cannot open %s: %s", path, strerror(errno));
    int rc = FXP_OK;
    uint8_t rec[FXP_CIFAR10_RECORD];
    for (int r = 0; r < n; r++) {
        if (fread(rec, 1, sizeof rec, f) != sizeof rec) {
            rc = ferror(f) ? FXP_ERR(ctx, FXP_EIO, "cannot read %s: %s", path, strerror(errno))
                           : FXP_ERR(ctx, FXP_EFORMAT, "%s ended at record %d of %d (the file "
                                     "shrank while it was read)", path, r, n);
            break;
        }
        if (rec[0] >= FXP_IMAGE_CLASSES) {
            rc = FXP_ERR(ctx, FXP_EFORMAT, "%s: record %d has label %d (CIFAR10 labels are 0..9); "
                         "not a CIFAR10 binary batch?", path, r, rec[0]);
            break;
        }
        im->labels[first + r] = rec[0];
        memcpy(im->pixels + (size_t)(first + r) * PIXELS, rec + 1, PIXELS);
    }
    fclose(f);
    return rc;
}

int fxp_cifar10_read_batch(fxp_ctx *ctx, const char *path, fxp_images *out)
{
    FXP_API_SCOPE();
    if (out) memset(out, 0, sizeof *out);
    if (!path || !*path || !out) return FXP_ERR(ctx, FXP_EINVAL, "path and out are required");
    int n = 0, rc = cifar_records(ctx, path, &n);
    if (rc >= 0) rc = fxp_images_alloc(ctx, out, n, 3, FXP_CIFAR10_SIDE, FXP_CIFAR10_SIDE, 1);
    if (rc >= 0) rc = cifar_read_into(ctx, path, n, out, 0);
    if (rc < 0) fxp_images_free(out);
    return rc;
}

int fxp_cifar10_load(fxp_ctx *ctx, const char *dir, int n_valid, fxp_images *train,
                     fxp_images *valid, fxp_images *test)
{
    FXP_API_SCOPE();
    fxp_images *outs[3] = { train, valid, test };
    for (int k = 0; k < 3; k++)
        if (outs[k]) memset(outs[k], 0, sizeof *outs[k]);
    if (!dir || !*dir || !train || !valid || !test)
        return FXP_ERR(ctx, FXP_EINVAL, "dir and the three outputs are required");
    char paths[5][4096], test_path[4096];
    int counts[5], total = 0, rc = FXP_OK;
    fxp_images all = { 0 };
    /* every file is checked before anything is read */
    for (int k = 0; k < 5; k++) {
        FXP_TRY(join(ctx, paths[k], sizeof paths[k], dir, cifar_train_files[k]));
        FXP_TRY(cifar_records(ctx, paths[k], &counts[k]));
        if (counts[k] > INT_MAX - total) {
            rc = FXP_ERR(ctx, FXP_EFORMAT, "%s: the training files hold more than %d records", dir,
                         INT_MAX);
            goto out;
        }
        total += counts[k];
    }
    FXP_TRY(join(ctx, test_path, sizeof test_path, dir, "test_batch.bin"));
    int n_test;
    FXP_TRY(cifar_records(ctx, test_path, &n_test));
    if (n_valid < 1 || n_valid >= total) {
        rc = FXP_ERR(ctx, FXP_EINVAL, "n_valid %d must be in [1, %d): the training files of %s "
                     "hold %d images", n_valid, total, dir, total);
        goto out;
    }
    FXP_TRY(fxp_images_alloc(ctx, &all, total, 3, FXP_CIFAR10_SIDE, FXP_CIFAR10_SIDE, 1));
    for (int k = 0, first = 0; k < 5; first += counts[k], k++)
        FXP_TRY(cifar_read_into(ctx, paths[k], counts[k], &all, first));
    FXP_TRY(fxp_cifar10_read_batch(ctx, test_path, test));
    FXP_TRY(split_tail(ctx, &all, n_valid, "data_batch_1..5.bin together", train, valid));
out:
    fxp_images_free(&all);
    if (rc < 0)
        for (int k = 0; k < 3; k++) fxp_images_free(outs[k]);
    return rc;
}

/* ---- IDX ------------------------------------------------------------------------------ */

#define IDX_UBYTE 0x08

/* An open IDX file (gzip or plain) and its name for messages. */
typedef struct idx_file {
    gzFile gz;
    const char *path;
} idx_file;

static int idx_open(fxp_ctx *ctx, const char *path, idx_file *f)
{
    f->path = path;
    int rc = check_file(ctx, path, NULL);
    if (rc < 0) return rc;
    errno = 0;
    f->gz = gzopen(path, "rb");
    if (!f->gz)
        return FXP_ERR(ctx, errno == ENOMEM ? FXP_ENOMEM : FXP_EIO, "cannot open %s: %s", path,
                       errno ? strerror(errno) : "zlib could not open it");
    gzbuffer(f->gz, 1 << 17);
    return FXP_OK;
}

/* Read up to n bytes; *got receives how many were read.  A zlib error
 * (corrupt or truncated gzip stream, I/O error) is reported, naming what was
 * being read; plain end of file is not an error here. */
static int idx_read(fxp_ctx *ctx, idx_file *f, void *buf, size_t n, size_t *got, const char *what)
{
    *got = 0;
    while (*got < n) {
        const size_t chunk = FXP_MIN(n - *got, (size_t)1 << 30);
        const int r = gzread(f->gz, (char *)buf + *got, (unsigned)chunk);
        if (r > 0) {
            *got += (size_t)r;
            continue;
        }
        int err = Z_OK;
        const char *msg = gzerror(f->gz, &err);
        if (r < 0 || (err != Z_OK && err != Z_STREAM_END)) {
            if (err == Z_ERRNO)
                return FXP_ERR(ctx, FXP_EIO, "cannot read %s: %s", f->path, strerror(errno));
            if (err == Z_BUF_ERROR)
                return FXP_ERR(ctx, FXP_EFORMAT, "%s is truncated: its gzip stream ends early "
                               "(in the %s)", f->path, what);
            return FXP_ERR(ctx, FXP_EFORMAT, "%s: corrupt gzip data in the %s (%s)", f->path, what,
                           msg ? msg : "zlib error");
        }
        break; /* end of file */
    }
    return FXP_OK;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Read and validate the header of an IDX file of unsigned bytes with the
 * given rank; dims receive the dimensions (each in [1, INT_MAX]). */
static int idx_header(fxp_ctx *ctx, idx_file *f, int rank, const char *kind, int *dims)
{
    uint8_t h[4 + 4 * 3];
    size_t got;
    int rc = idx_read(ctx, f, h, 4, &got, "header");
    if (rc < 0) return rc;
    if (got < 4)
        return FXP_ERR(ctx, FXP_EFORMAT, "%s is %s: %zu bytes, shorter than an IDX header", f->path,
                       got ? "truncated" : "empty", got);
    const uint32_t magic = be32(h), want = (uint32_t)(IDX_UBYTE << 8 | rank);
    if (magic != want) {
        if (h[0] || h[1])
            return FXP_ERR(ctx, FXP_EFORMAT, "%s is not an IDX file: magic 0x%08x, expected "
                           "0x%08x (%s)", f->path, magic, want, kind);
        if (h[2] != IDX_UBYTE)
            return FXP_ERR(ctx, FXP_EFORMAT, "%s: IDX element type 0x%02x, expected 0x08 "
                           "(unsigned byte) for %s (magic 0x%08x)", f->path, h[2], kind, magic);
        return FXP_ERR(ctx, FXP_EFORMAT, "%s: IDX data of rank %d (magic 0x%08x); %s have rank %d "
                       "(magic 0x%08x)%s", f->path, h[3], magic, kind, rank, want,
                       h[3] == 1 ? ": is this a labels file?" : h[3] == 3 ? ": is this an images "
                       "file?" : "");
    }
    rc = idx_read(ctx, f, h + 4, 4 * (size_t)rank, &got, "header");
    if (rc < 0) return rc;
    if (got < 4 * (size_t)rank)
        return FXP_ERR(ctx, FXP_EFORMAT, "%s is truncated: its header ends after %zu of the %d "
                       "dimension bytes", f->path, got, 4 * rank);
    for (int i = 0; i < rank; i++) {
        const uint32_t d = be32(h + 4 + 4 * i);
        if (d == 0 || d > INT_MAX)
            return FXP_ERR(ctx, FXP_EFORMAT, "%s: dimension %d of the IDX header is %u (must be "
                           "in [1, %d])", f->path, i, d, INT_MAX);
        dims[i] = (int)d;
    }
    return FXP_OK;
}

/* Read exactly `want` data bytes after the header into a new buffer, which
 * grows with the bytes actually read; then require end of file. */
static int idx_body(fxp_ctx *ctx, idx_file *f, size_t want, const char *what, uint8_t **out)
{
    *out = NULL;
    size_t have = 0, cap = FXP_MIN(want, (size_t)1 << 22);
    uint8_t *buf = malloc(cap);
    int rc = FXP_OK;
    if (!buf) return FXP_ERR(ctx, FXP_ENOMEM, "%s: cannot allocate %zu bytes", f->path, cap);
    for (;;) {
        size_t got;
        FXP_TRY(idx_read(ctx, f, buf + have, cap - have, &got, what));
        have += got;
        if (have < cap || have == want) break; /* end of file, or all read */
        const size_t grown = want - cap < cap ? want : 2 * cap;
        uint8_t *p = realloc(buf, grown);
        if (!p) {
            rc = FXP_ERR(ctx, FXP_ENOMEM, "%s: cannot allocate %zu bytes for the %s", f->path,
                         grown, what);
            goto out;
        }
        buf = p;
        cap = grown;
    }
    if (have < want) {
        rc = FXP_ERR(ctx, FXP_EFORMAT, "%s is truncated: its header declares %zu bytes of %s but "
                     "only %zu follow", f->path, want, what, have);
        goto out;
    }
    uint8_t extra[64];
    size_t more;
    FXP_TRY(idx_read(ctx, f, extra, sizeof extra, &more, "end of the file"));
    if (more > 0) {
        rc = FXP_ERR(ctx, FXP_EFORMAT, "%s has trailing bytes after the %zu bytes of %s its header "
                     "declares (wrong dimensions, or two files joined?)", f->path, want, what);
        goto out;
    }
    *out = buf;
    buf = NULL;
out:
    free(buf);
    return rc;
}

/* Images file -> out [n, 1, rows, cols], no labels. */
static int idx_images(fxp_ctx *ctx, const char *path, fxp_images *out)
{
    idx_file f = { NULL, path };
    int dims[3], rc = idx_open(ctx, path, &f);
    if (rc < 0) return rc;
    FXP_TRY(idx_header(ctx, &f, 3, "images", dims));
    if ((size_t)dims[1] * (size_t)dims[2] > INT_MAX ||
        (size_t)dims[1] * (size_t)dims[2] > SIZE_MAX / (size_t)dims[0]) {
        rc = FXP_ERR(ctx, FXP_EFORMAT, "%s: %d images of %d x %d pixels are too large", path,
                     dims[0], dims[1], dims[2]);
        goto out;
    }
    uint8_t *pixels;
    FXP_TRY(idx_body(ctx, &f, (size_t)dims[0] * (size_t)dims[1] * (size_t)dims[2], "pixels", &pixels));
    out->pixels = pixels;
    out->n = dims[0];
    out->channels = 1;
    out->height = dims[1];
    out->width = dims[2];
out:
    gzclose(f.gz);
    return rc;
}

/* Labels file -> labels [n], each checked < FXP_IMAGE_CLASSES. */
static int idx_labels(fxp_ctx *ctx, const char *path, uint8_t **labels, int *n)
{
    idx_file f = { NULL, path };
    int rc = idx_open(ctx, path, &f);
    if (rc < 0) return rc;
    FXP_TRY(idx_header(ctx, &f, 1, "labels", n));
    FXP_TRY(idx_body(ctx, &f, (size_t)*n, "labels", labels));
    for (int i = 0; i < *n; i++)
        if ((*labels)[i] >= FXP_IMAGE_CLASSES) {
            rc = FXP_ERR(ctx, FXP_EFORMAT, "%s: label %d is %d (labels are 0..%d)", path, i,
                         (*labels)[i], FXP_IMAGE_CLASSES - 1);
            free(*labels);
            *labels = NULL;
            goto out;
        }
out:
    gzclose(f.gz);
    return rc;
}

int fxp_idx_read(fxp_ctx *ctx, const char *images_path, const char *labels_path, fxp_images *out)
{
    FXP_API_SCOPE();
    if (out) memset(out, 0, sizeof *out);
    if (!images_path || !*images_path || !out || (labels_path && !*labels_path))
        return FXP_ERR(ctx, FXP_EINVAL, "an images path and out are required");
    int rc = idx_images(ctx, images_path, out);
    if (rc >= 0 && labels_path) {
        int n = 0;
        rc = idx_labels(ctx, labels_path, &out->labels, &n);
        if (rc >= 0 && n != out->n)
            rc = FXP_ERR(ctx, FXP_EFORMAT, "%s holds %d images but %s holds %d labels", images_path,
                         out->n, labels_path, n);
    }
    if (rc < 0) fxp_images_free(out);
    return rc;
}

/* "<dir>/<base>" if it exists, else "<dir>/<base>.gz" if that exists, else
 * FXP_EIO naming both. */
static int find_idx(fxp_ctx *ctx, const char *dir, const char *base, char *path, size_t size)
{
    struct stat st;
    int rc = join(ctx, path, size, dir, base);
    if (rc < 0 || stat(path, &st) == 0) return rc;
    const size_t len = strlen(path);
    if (len + 4 > size) return FXP_ERR(ctx, FXP_EINVAL, "path too long: %s.gz", path);
    memcpy(path + len, ".gz", 4);
    if (stat(path, &st) == 0) return FXP_OK;
    path[len] = '\0';
    return FXP_ERR(ctx, FXP_EIO, "cannot read %s or %s.gz: %s", path, path, strerror(errno));
}

int fxp_fashion_mnist_load(fxp_ctx *ctx, const char *dir, int n_valid, fxp_images *train,
                           fxp_images *valid, fxp_images *test)
{
    FXP_API_SCOPE();
    fxp_images *outs[3] = { train, valid, test };
    for (int k = 0; k < 3; k++)
        if (outs[k]) memset(outs[k], 0, sizeof *outs[k]);
    if (!dir || !*dir || !train || !valid || !test)
        return FXP_ERR(ctx, FXP_EINVAL, "dir and the three outputs are required");
    static const char *const names[4] = { "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                          "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte" };
    if (n_valid < 1)
        return FXP_ERR(ctx, FXP_EINVAL, "n_valid %d must be >= 1", n_valid);
    char paths[4][4096];
    fxp_images all = { 0 };
    int rc = FXP_OK;
    for (int k = 0; k < 4; k++) FXP_TRY(find_idx(ctx, dir, names[k], paths[k], sizeof paths[k]));
    FXP_TRY(fxp_idx_read(ctx, paths[0], paths[1], &all));
    FXP_TRY(fxp_idx_read(ctx, paths[2], paths[3], test));
    if (test->height != all.height || test->width != all.width) {
        rc = FXP_ERR(ctx, FXP_EFORMAT, "%s holds %dx%d images but %s holds %dx%d", paths[0],
                     all.height, all.width, paths[2], test->height, test->width);
        goto out;
    }
    FXP_TRY(split_tail(ctx, &all, n_valid, paths[0], train, valid));
out:
    fxp_images_free(&all);
    if (rc < 0)
        for (int k = 0; k < 3; k++) fxp_images_free(outs[k]);
    return rc;
}
