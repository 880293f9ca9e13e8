/* Image data: the CIFAR10 and IDX readers on files written here in the exact
 * official formats (plain and gzip; every byte, the split boundaries and the
 * file order checked) and on truncated, corrupt, missing and malformed
 * variants; HDF5 image dataset files (round trip, atomicity, foreign files,
 * every reader error); the training augmentation against a naive reference
 * of the torchvision pipeline, its determinism and its frequencies; and, if
 * Debian's dataset-fashion-mnist is installed, the real Fashion-MNIST. */
#include "h5test.h"

#include <hdf5.h>
#include <zlib.h>

/* ---- writing files in the official formats ------------------------------------------ */

/* The pixel and label of record r of CIFAR file f (an arbitrary pattern that
 * differs between files, records and bytes). */
static uint8_t cifar_pixel(int f, int r, int b) { return (uint8_t)(f * 53 + r * 29 + b * 7 + (b >> 8)); }
static uint8_t cifar_label(int f, int r) { return (uint8_t)((f * 3 + r * 7) % 10); }

/* Write n CIFAR10 records of file index f to path; extra bytes are appended. */
static void write_cifar(const char *path, int f, int n, int extra)
{
    FILE *out = fopen(path, "wb");
    ck_assert_ptr_nonnull(out);
    for (int r = 0; r < n; r++) {
        fputc(cifar_label(f, r), out);
        for (int b = 0; b < 3072; b++) fputc(cifar_pixel(f, r, b), out);
    }
    for (int e = 0; e < extra; e++) fputc(e & 0xff, out);
    ck_assert_int_eq(fclose(out), 0);
}

static const char *const cifar_names[6] = { "data_batch_1.bin", "data_batch_2.bin",
                                            "data_batch_3.bin", "data_batch_4.bin",
                                            "data_batch_5.bin", "test_batch.bin" };

/* A CIFAR10 directory with counts[k] records in file k (test last). */
static void write_cifar_dir(const int counts[6])
{
    for (int k = 0; k < 6; k++) write_cifar(in_dir(cifar_names[k]), k, counts[k], 0);
}

/* Check images first..first+count-1 of im against records r0.. of file f. */
static void check_cifar(const fxp_images *im, int first, int f, int r0, int count)
{
    for (int i = 0; i < count; i++) {
        ck_assert_int_eq(im->labels[first + i], cifar_label(f, r0 + i));
        const uint8_t *p = im->pixels + (size_t)(first + i) * 3072;
        for (int b = 0; b < 3072; b++)
            ck_assert_msg(p[b] == cifar_pixel(f, r0 + i, b), "image %d byte %d: %d != %d (file %d record %d)",
                          first + i, b, p[b], cifar_pixel(f, r0 + i, b), f, r0 + i);
    }
}

/* Write bytes to path, gzip-compressed if gz. */
static void write_bytes(const char *path, const uint8_t *data, size_t n, int gz)
{
    if (gz) {
        gzFile g = gzopen(path, "wb");
        ck_assert_ptr_nonnull(g);
        ck_assert_int_eq(gzwrite(g, data, (unsigned)n), (int)n);
        ck_assert_int_eq(gzclose(g), Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(data, 1, n, f), n);
        ck_assert_int_eq(fclose(f), 0);
    }
}

/* An IDX file: magic, dims (rank = magic & 0xff of them, at most 3), then
 * n_body bytes of payload produced by value(i). */
static void write_idx(const char *path, uint32_t magic, const uint32_t *dims, size_t n_body,
                      uint8_t (*value)(size_t), int gz)
{
    const int rank = (int)(magic & 0xff);
    ck_assert_int_le(rank, 3);
    const size_t n = 4 + 4 * (size_t)rank + n_body;
    uint8_t *buf = malloc(n);
    ck_assert_ptr_nonnull(buf);
    for (int k = 0; k <= rank; k++) {
        const uint32_t v = k ? dims[k - 1] : magic;
        buf[4 * k] = (uint8_t)(v >> 24);
        buf[4 * k + 1] = (uint8_t)(v >> 16);
        buf[4 * k + 2] = (uint8_t)(v >> 8);
        buf[4 * k + 3] = (uint8_t)v;
    }
    for (size_t i = 0; i < n_body; i++) buf[4 + 4 * rank + i] = value(i);
    write_bytes(path, buf, n, gz);
    free(buf);
}

static uint8_t idx_pixel(size_t i) { return (uint8_t)(i * 13 + (i >> 7) + 5); }
static uint8_t idx_label(size_t i) { return (uint8_t)((i * 3 + 1) % 10); }
static uint8_t idx_bad_label(size_t i) { return i == 4 ? 10 : idx_label(i); }

#define MAGIC_IMAGES 0x00000803u
#define MAGIC_LABELS 0x00000801u

/* n images of rows x cols and n labels in the official format. */
static void write_idx_pair(const char *images, const char *labels, uint32_t n, uint32_t rows,
                           uint32_t cols, int gz)
{
    const uint32_t di[3] = { n, rows, cols }, dl[1] = { n };
    write_idx(images, MAGIC_IMAGES, di, (size_t)n * rows * cols, idx_pixel, gz);
    write_idx(labels, MAGIC_LABELS, dl, n, idx_label, gz);
}

/* call fails with code and a message naming `what`. */
#define ck_assert_fails_naming(expr, code, ctx, what)                                         \
    do {                                                                                       \
        ck_assert_fails(expr, code, ctx);                                                      \
        ck_assert_msg(strstr(fxp_ctx_error(ctx), (what)) != NULL, "\"%s\" not in: %s", (what),  \
                      fxp_ctx_error(ctx));                                                     \
    } while (0)

static void ck_assert_empty(const fxp_images *im)
{
    ck_assert_ptr_null(im->pixels);
    ck_assert_ptr_null(im->labels);
    ck_assert_int_eq(im->n, 0);
    ck_assert_int_eq(im->channels + im->height + im->width, 0);
}

/* ---- image sets ----------------------------------------------------------------------- */

START_TEST(test_images_alloc_free)
{
    fxp_ctx *ctx = test_ctx(1);
    fxp_images im;
    ck_assert_ok(fxp_images_alloc(ctx, &im, 3, 2, 4, 5, 1));
    ck_assert_int_eq(im.n, 3);
    ck_assert_int_eq(im.channels * im.height * im.width, 40);
    for (int i = 0; i < 120; i++) ck_assert_int_eq(im.pixels[i], 0);
    for (int i = 0; i < 3; i++) ck_assert_int_eq(im.labels[i], 0);
    fxp_images_free(&im);
    ck_assert_empty(&im);
    fxp_images_free(&im); /* empty: no-op */
    fxp_images_free(NULL);
    ck_assert_ok(fxp_images_alloc(ctx, &im, 1, 1, 1, 1, 0));
    ck_assert_ptr_null(im.labels);
    fxp_images_free(&im);
    ck_assert_fails(fxp_images_alloc(ctx, &im, 0, 1, 1, 1, 0), FXP_EINVAL, ctx);
    ck_assert_empty(&im);
    ck_assert_fails(fxp_images_alloc(ctx, &im, 2, 1, -1, 1, 0), FXP_EINVAL, ctx);
    ck_assert_fails(fxp_images_alloc(ctx, &im, 2147483647, 2147483647, 2147483647, 4, 0), FXP_EINVAL, ctx);
    ck_assert_empty(&im);
    ck_assert_fails(fxp_images_alloc(ctx, NULL, 1, 1, 1, 1, 0), FXP_EINVAL, ctx);
    fxp_ctx_free(ctx);
}
END_TEST

/* ---- CIFAR10 -------------------------------------------------------------------------- */

START_TEST(test_cifar_batch)
{
    fxp_ctx *ctx = test_ctx(1);
    write_cifar(in_dir("b.bin"), 4, 3, 0);
    fxp_images im;
    ck_assert_ok(fxp_cifar10_read_batch(ctx, in_dir("b.bin"), &im));
    ck_assert_int_eq(im.n, 3);
    ck_assert_int_eq(im.channels, 3);
    ck_assert_int_eq(im.height, 32);
    ck_assert_int_eq(im.width, 32);
    check_cifar(&im, 0, 4, 0, 3);
    /* the record layout is NCHW as is: red plane first, row-major */
    ck_assert_int_eq(im.pixels[3072 + 1024 + 32 * 2 + 5], cifar_pixel(4, 1, 1024 + 69));
    fxp_images_free(&im);
    fxp_ctx_free(ctx);
}
END_TEST

START_TEST(test_cifar_load_splits)
{
    fxp_ctx *ctx = test_ctx(1);
    const int counts[6] = { 2, 3, 1, 2, 4, 3 }; /* 12 training records, 3 test */
    write_cifar_dir(counts);
    fxp_images tr, va, te;
    ck_assert_ok(fxp_cifar10_load(ctx, test_dir, 5, &tr, &va, &te));
    ck_assert_int_eq(tr.n, 7);
    ck_assert_int_eq(va.n, 5);
    ck_assert_int_eq(te.n, 3);
    ck_assert_int_eq(va.channels * va.height * va.width, 3072);
    /* train: files 1, 2, 3 whole and the first record of file 4, in order */
    check_cifar(&tr, 0, 0, 0, 2);
    check_cifar(&tr, 2, 1, 0, 3);
    check_cifar(&tr, 5, 2, 0, 1);
    check_cifar(&tr, 6, 3, 0, 1);
    /* valid: the last record of file 4 and all of file 5 */
    check_cifar(&va, 0, 3, 1, 1);
    check_cifar(&va, 1, 4, 0, 4);
    check_cifar(&te, 0, 5, 0, 3);
    fxp_images_free(&tr);
    fxp_images_free(&va);
    fxp_images_free(&te);
    /* the smallest and largest valid n_valid */
    ck_assert_ok(fxp_cifar10_load(ctx, test_dir, 11, &tr, &va, &te));
    ck_assert_int_eq(tr.n, 1);
    check_cifar(&tr, 0, 0, 0, 1);
    check_cifar(&va, 10, 4, 3, 1);
    fxp_images_free(&tr);
    fxp_images_free(&va);
    fxp_images_free(&te);
    ck_assert_ok(fxp_cifar10_load(ctx, test_dir, 1, &tr, &va, &te));
    ck_assert_int_eq(tr.n, 11);
    check_cifar(&va, 0, 4, 3, 1);
    fxp_images_free(&tr);
    fxp_images_free(&va);
    fxp_images_free(&te);
    ck_assert_fails_naming(fxp_cifar10_load(ctx, test_dir, 12, &tr, &va, &te), FXP_EINVAL, ctx, "12");
    ck_assert_empty(&tr);
    ck_assert_empty(&va);
    ck_assert_empty(&te);
    ck_assert_fails(fxp_cifar10_load(ctx, test_dir, 0, &tr, &va, &te), FXP_EINVAL, ctx);
    ck_assert_fails(fxp_cifar10_load(ctx, NULL, 1, &tr, &va, &te), FXP_EINVAL, ctx);
    fxp_ctx_free(ctx);
}
END_TEST

/* fxp_cifar10_load on the test directory fails with code naming `what`,
 * and leaves the outputs empty. */
static void expect_cifar_error(fxp_ctx *ctx, int code, const char *what)
{
    fxp_images tr, va, te;
    ck_assert_fails_naming(fxp_cifar10_load(ctx, test_dir, 1, &tr, &va, &te), code, ctx, what);
    ck_assert_empty(&tr);
    ck_assert_empty(&va);
    ck_assert_empty(&te);
}

START_TEST(test_cifar_errors)
{
    fxp_ctx *ctx = test_ctx(1);
    const int counts[6] = { 2, 2, 2, 2, 2, 2 };
    write_cifar_dir(counts);
    /* a missing file */
    ck_assert_int_eq(unlink(in_dir("data_batch_3.bin")), 0);
    expect_cifar_error(ctx, FXP_EIO, "data_batch_3.bin");
    ck_assert_int_eq(mkdir(in_dir("data_batch_3.bin"), 0700), 0);
    expect_cifar_error(ctx, FXP_EIO, "not a regular file");
    ck_assert_int_eq(rmdir(in_dir("data_batch_3.bin")), 0);
    write_cifar(in_dir("data_batch_3.bin"), 2, 2, 0);
    ck_assert_int_eq(unlink(in_dir("test_batch.bin")), 0);
    expect_cifar_error(ctx, FXP_EIO, "test_batch.bin");
    write_cifar(in_dir("test_batch.bin"), 5, 2, 0);
    /* truncated: a partial record at the end, or a cut inside the first */
    write_cifar(in_dir("data_batch_4.bin"), 3, 2, 100);
    expect_cifar_error(ctx, FXP_EFORMAT, "data_batch_4.bin is truncated");
    truncated_copy(in_dir("data_batch_1.bin"), in_dir("data_batch_4.bin"), 3000);
    expect_cifar_error(ctx, FXP_EFORMAT, "data_batch_4.bin");
    write_cifar(in_dir("data_batch_4.bin"), 3, 2, 0);
    /* an empty file */
    write_text(in_dir("data_batch_2.bin"), "");
    expect_cifar_error(ctx, FXP_EFORMAT, "data_batch_2.bin is empty");
    write_cifar(in_dir("data_batch_2.bin"), 1, 2, 0);
    /* a label > 9 in record 1 of the test file */
    FILE *f = fopen(in_dir("test_batch.bin"), "r+b");
    ck_assert_ptr_nonnull(f);
    fseek(f, FXP_CIFAR10_RECORD, SEEK_SET);
    fputc(10, f);
    fclose(f);
    expect_cifar_error(ctx, FXP_EFORMAT, "test_batch.bin: record 1 has label 10");
    fxp_images im;
    ck_assert_fails_naming(fxp_cifar10_read_batch(ctx, in_dir("test_batch.bin"), &im), FXP_EFORMAT, ctx, "record 1");
    ck_assert_empty(&im);
    ck_assert_fails_naming(fxp_cifar10_read_batch(ctx, in_dir("nope.bin"), &im), FXP_EIO, ctx, "nope.bin");
    ck_assert_fails(fxp_cifar10_read_batch(ctx, NULL, &im), FXP_EINVAL, ctx);
    /* a directory that does not exist */
    fxp_images tr, va, te;
    ck_assert_fails_naming(fxp_cifar10_load(ctx, in_dir("absent"), 1, &tr, &va, &te), FXP_EIO, ctx,
                           "absent/data_batch_1.bin");
    fxp_ctx_free(ctx);
}
END_TEST

/* ---- IDX ------------------------------------------------------------------------------ */

START_TEST(test_idx_plain_and_gzip)
{
    fxp_ctx *ctx = test_ctx(1);
    for (int gz = 0; gz < 2; gz++) {
        /* 6 images of 4 rows x 5 columns: rows and columns cannot be confused */
        write_idx_pair(in_dir("im"), in_dir("lb"), 6, 4, 5, gz);
        fxp_images im;
        ck_assert_ok(fxp_idx_read(ctx, in_dir("im"), in_dir("lb"), &im));
        ck_assert_int_eq(im.n, 6);
        ck_assert_int_eq(im.channels, 1);
        ck_assert_int_eq(im.height, 4);
        ck_assert_int_eq(im.width, 5);
        for (size_t i = 0; i < 120; i++) ck_assert_int_eq(im.pixels[i], idx_pixel(i));
        for (size_t i = 0; i < 6; i++) ck_assert_int_eq(im.labels[i], idx_label(i));
        fxp_images_free(&im);
        ck_assert_ok(fxp_idx_read(ctx, in_dir("im"), NULL, &im));
        ck_assert_ptr_null(im.labels);
        ck_assert_int_eq(im.pixels[119], idx_pixel(119));
        fxp_images_free(&im);
    }
    /* larger than the reader's first buffer (4 MiB), gzip: the buffer grows */
    write_idx_pair(in_dir("big"), in_dir("bigl"), 7000, 28, 28, 1);
    fxp_images im;
    ck_assert_ok(fxp_idx_read(ctx, in_dir("big"), in_dir("bigl"), &im));
    ck_assert_int_eq(im.n, 7000);
    for (size_t i = 0; i < (size_t)7000 * 784; i += 997) ck_assert_int_eq(im.pixels[i], idx_pixel(i));
    ck_assert_int_eq(im.pixels[7000 * 784 - 1], idx_pixel(7000 * 784 - 1));
    fxp_images_free(&im);
    fxp_ctx_free(ctx);
}
END_TEST

/* fxp_idx_read(images, labels) fails with code naming `what`; out empty. */
static void expect_idx_error(fxp_ctx *ctx, const char *images, const char *labels, int code,
                             const char *what)
{
    fxp_images im;
    memset(&im, 0x5a, sizeof im);
    ck_assert_fails_naming(fxp_idx_read(ctx, images, labels, &im), code, ctx, what);
    ck_assert_empty(&im);
}

/* Copy of src with the byte at offset replaced by its complement. */
static void corrupt_copy(const char *src, const char *dst, long offset)
{
    truncated_copy(src, dst, 1L << 30);
    FILE *f = fopen(dst, "r+b");
    ck_assert_ptr_nonnull(f);
    fseek(f, offset, SEEK_SET);
    int c = fgetc(f);
    fseek(f, offset, SEEK_SET);
    fputc(~c & 0xff, f);
    fclose(f);
}

START_TEST(test_idx_errors)
{
    fxp_ctx *ctx = test_ctx(1);
    const uint32_t d3[3] = { 6, 4, 5 }, d1[1] = { 6 }, d2[2] = { 6, 20 };
    write_idx_pair(in_dir("im"), in_dir("lb"), 6, 4, 5, 0);
    for (int gz = 0; gz < 2; gz++) {
        const char *bad = in_dir(gz ? "bad.gz" : "bad");
        /* bad magic, a labels file as images, rank 2, signed bytes */
        write_idx(bad, 0x12340003u, d3, 120, idx_pixel, gz);
        expect_idx_error(ctx, bad, NULL, FXP_EFORMAT, "not an IDX file");
        write_idx(bad, MAGIC_LABELS, d1, 6, idx_label, gz);
        expect_idx_error(ctx, bad, NULL, FXP_EFORMAT, "labels file");
        fxp_images ok;
        ck_assert_ok(fxp_idx_read(ctx, in_dir("im"), bad, &ok)); /* a good labels file */
        fxp_images_free(&ok);
        write_idx(bad, 0x00000802u, d2, 120, idx_pixel, gz);
        expect_idx_error(ctx, bad, NULL, FXP_EFORMAT, "rank 2");
        write_idx(bad, 0x00000903u, d3, 120, idx_pixel, gz);
        expect_idx_error(ctx, bad, NULL, FXP_EFORMAT, "element type 0x09");
        /* an images file as labels */
        expect_idx_error(ctx, in_dir("im"), in_dir("im"), FXP_EFORMAT, "images file");
        /* zero and oversized dimensions */
        const uint32_t zero[3] = { 0, 4, 5 }, huge[3] = { 0x7fffffffu, 0x7fffffffu, 0x7fffffffu },
                       over[3] = { 6, 0x80000000u, 5 };
        write_idx(bad, MAGIC_IMAGES, zero, 0, idx_pixel, gz);
        expect_idx_error(ctx, bad, NULL, FXP_EFORMAT, "dimension 0");
        write_idx(bad, MAGIC_IMAGES, over, 0, idx_pixel, gz);
        expect_idx_error(ctx, bad, NULL, FXP_EFORMAT, "dimension 1");
        write_idx(bad, MAGIC_IMAGES, huge, 10, idx_pixel, gz);
        expect_idx_error(ctx, bad, NULL, FXP_EFORMAT, "too large");
        /* a header promising far more than the file holds: an error, not a
         * 50 GB allocation */
        const uint32_t many[3] = { 60000000u, 28, 28 };
        write_idx(bad, MAGIC_IMAGES, many, 1000, idx_pixel, gz);
        expect_idx_error(ctx, bad, NULL, FXP_EFORMAT, "truncated");
        /* truncated data, trailing data */
        write_idx(bad, MAGIC_IMAGES, d3, 119, idx_pixel, gz);
        expect_idx_error(ctx, bad, NULL, FXP_EFORMAT, "declares 120 bytes of pixels but only 119");
        write_idx(bad, MAGIC_IMAGES, d3, 121, idx_pixel, gz);
        expect_idx_error(ctx, bad, NULL, FXP_EFORMAT, "trailing bytes");
        write_idx(bad, MAGIC_LABELS, d1, 7, idx_label, gz);
        expect_idx_error(ctx, in_dir("im"), bad, FXP_EFORMAT, "trailing bytes");
        /* truncated headers, an empty file */
        write_bytes(bad, (const uint8_t *)"\0\0\10", 3, gz);
        expect_idx_error(ctx, bad, NULL, FXP_EFORMAT, "shorter than an IDX header");
        write_idx(bad, MAGIC_IMAGES, d3, 0, idx_pixel, gz);
        expect_idx_error(ctx, bad, NULL, FXP_EFORMAT, "truncated");
        write_bytes(bad, (const uint8_t *)"\0\0\10\3\0\0\0\6\0\0", 10, gz);
        expect_idx_error(ctx, bad, NULL, FXP_EFORMAT, "header ends");
        write_bytes(bad, (const uint8_t *)"", 0, gz);
        expect_idx_error(ctx, bad, NULL, FXP_EFORMAT, "empty");
        /* count mismatch (naming both files), a label > 9 (with its index) */
        const uint32_t d5[1] = { 5 };
        write_idx(bad, MAGIC_LABELS, d5, 5, idx_label, gz);
        expect_idx_error(ctx, in_dir("im"), bad, FXP_EFORMAT, "holds 6 images but");
        ck_assert_ptr_nonnull(strstr(fxp_ctx_error(ctx), "5 labels"));
        write_idx(bad, MAGIC_LABELS, d1, 6, idx_bad_label, gz);
        expect_idx_error(ctx, in_dir("im"), bad, FXP_EFORMAT, "label 4 is 10");
    }
    /* damaged gzip files: a flipped byte inside the compressed data, or the
     * CRC, and a file cut short */
    write_idx_pair(in_dir("g.gz"), in_dir("gl.gz"), 6, 4, 5, 1);
    const long size = file_size(in_dir("g.gz"));
    corrupt_copy(in_dir("g.gz"), in_dir("c.gz"), size - 6);
    expect_idx_error(ctx, in_dir("c.gz"), NULL, FXP_EFORMAT, "c.gz");
    ck_assert_ptr_nonnull(strstr(fxp_ctx_error(ctx), "gzip"));
    corrupt_copy(in_dir("g.gz"), in_dir("c.gz"), 20);
    expect_idx_error(ctx, in_dir("c.gz"), NULL, FXP_EFORMAT, "c.gz");
    truncated_copy(in_dir("g.gz"), in_dir("t.gz"), size - 12);
    expect_idx_error(ctx, in_dir("t.gz"), NULL, FXP_EFORMAT, "t.gz is truncated");
    truncated_copy(in_dir("g.gz"), in_dir("t.gz"), size - 3);
    expect_idx_error(ctx, in_dir("t.gz"), NULL, FXP_EFORMAT, "t.gz is truncated");
    /* missing files, directories */
    expect_idx_error(ctx, in_dir("absent"), NULL, FXP_EIO, "absent");
    expect_idx_error(ctx, in_dir("im"), in_dir("absent-labels"), FXP_EIO, "absent-labels");
    expect_idx_error(ctx, test_dir, NULL, FXP_EIO, "not a regular file");
    fxp_images im;
    ck_assert_fails(fxp_idx_read(ctx, NULL, NULL, &im), FXP_EINVAL, ctx);
    ck_assert_fails(fxp_idx_read(ctx, in_dir("im"), "", &im), FXP_EINVAL, ctx);
    fxp_ctx_free(ctx);
}
END_TEST

/* ---- Fashion-MNIST directories ------------------------------------------------------ */

START_TEST(test_fashion_dir)
{
    fxp_ctx *ctx = test_ctx(1);
    /* either suffix: gzip training images, plain training labels, plain test
     * images, gzip test labels; 9 training images of 3 rows x 2 columns */
    write_idx_pair(in_dir("train-images-idx3-ubyte.gz"), in_dir("train-labels-idx1-ubyte"), 9, 3, 2, 1);
    const uint32_t d3[3] = { 4, 3, 2 }, d1[1] = { 4 }, d9[1] = { 9 };
    write_idx(in_dir("t10k-images-idx3-ubyte"), MAGIC_IMAGES, d3, 24, idx_pixel, 0);
    write_idx(in_dir("t10k-labels-idx1-ubyte.gz"), MAGIC_LABELS, d1, 4, idx_label, 1);
    /* when both names exist the plain one is read (this .gz is broken) */
    write_idx(in_dir("train-labels-idx1-ubyte.gz"), MAGIC_LABELS, d9, 9, idx_bad_label, 1);
    fxp_images tr, va, te;
    ck_assert_ok(fxp_fashion_mnist_load(ctx, test_dir, 3, &tr, &va, &te));
    ck_assert_int_eq(tr.n, 6);
    ck_assert_int_eq(va.n, 3);
    ck_assert_int_eq(te.n, 4);
    ck_assert_int_eq(tr.channels, 1);
    ck_assert_int_eq(va.height, 3);
    ck_assert_int_eq(te.width, 2);
    for (size_t i = 0; i < 36; i++) ck_assert_int_eq(tr.pixels[i], idx_pixel(i));
    for (size_t i = 0; i < 18; i++) ck_assert_int_eq(va.pixels[i], idx_pixel(36 + i));
    for (size_t i = 0; i < 24; i++) ck_assert_int_eq(te.pixels[i], idx_pixel(i));
    for (size_t i = 0; i < 6; i++) ck_assert_int_eq(tr.labels[i], idx_label(i));
    for (size_t i = 0; i < 3; i++) ck_assert_int_eq(va.labels[i], idx_label(6 + i));
    for (size_t i = 0; i < 4; i++) ck_assert_int_eq(te.labels[i], idx_label(i));
    fxp_images_free(&tr);
    fxp_images_free(&va);
    fxp_images_free(&te);
    ck_assert_fails_naming(fxp_fashion_mnist_load(ctx, test_dir, 9, &tr, &va, &te), FXP_EINVAL, ctx,
                           "train-images-idx3-ubyte.gz holds 9");
    ck_assert_empty(&tr);
    ck_assert_empty(&va);
    ck_assert_empty(&te);
    ck_assert_fails(fxp_fashion_mnist_load(ctx, test_dir, 0, &tr, &va, &te), FXP_EINVAL, ctx);
    /* test images of another size */
    const uint32_t d33[3] = { 4, 3, 3 };
    write_idx(in_dir("t10k-images-idx3-ubyte"), MAGIC_IMAGES, d33, 36, idx_pixel, 0);
    ck_assert_fails_naming(fxp_fashion_mnist_load(ctx, test_dir, 3, &tr, &va, &te), FXP_EFORMAT, ctx,
                           "3x2");
    ck_assert_empty(&te);
    /* a missing file names both names tried */
    ck_assert_int_eq(unlink(in_dir("t10k-labels-idx1-ubyte.gz")), 0);
    ck_assert_fails_naming(fxp_fashion_mnist_load(ctx, test_dir, 3, &tr, &va, &te), FXP_EIO, ctx,
                           "t10k-labels-idx1-ubyte or");
    ck_assert_ptr_nonnull(strstr(fxp_ctx_error(ctx), "t10k-labels-idx1-ubyte.gz"));
    ck_assert_empty(&tr);
    fxp_ctx_free(ctx);
}
END_TEST

/* ---- HDF5 image dataset files ------------------------------------------------------- */

/* Images with pixel (k, c, i, j) = seed + k*7 + c*5 + i*3 + j, labels k % 10. */
static void make_images(fxp_images *im, int n, int c, int h, int w, int labels, int seed)
{
    ck_assert_ok(fxp_images_alloc(NULL, im, n, c, h, w, labels));
    for (int k = 0, p = 0; k < n; k++)
        for (int ch = 0; ch < c; ch++)
            for (int i = 0; i < h; i++)
                for (int j = 0; j < w; j++) im->pixels[p++] = (uint8_t)(seed + k * 7 + ch * 5 + i * 3 + j);
    for (int k = 0; labels && k < n; k++) im->labels[k] = (uint8_t)(k % 10);
}

static void ck_assert_same_images(const fxp_images *a, const fxp_images *b)
{
    ck_assert_int_eq(a->n, b->n);
    ck_assert_int_eq(a->channels, b->channels);
    ck_assert_int_eq(a->height, b->height);
    ck_assert_int_eq(a->width, b->width);
    ck_assert_mem_eq(a->pixels, b->pixels, (size_t)a->n * a->channels * a->height * a->width);
    ck_assert_int_eq(a->labels == NULL, b->labels == NULL);
    if (a->labels) ck_assert_mem_eq(a->labels, b->labels, (size_t)a->n);
}

static void check_attr(fxp_ctx *ctx, const char *path, const char *key, const char *want)
{
    char buf[256];
    ck_assert_ok(fxp_h5_read_attr(ctx, path, key, buf, sizeof buf));
    ck_assert_str_eq(buf, want);
}

START_TEST(test_h5_round_trip)
{
    fxp_ctx *ctx = test_ctx(1);
    fxp_images s[3], back;
    make_images(&s[0], 5, 3, 4, 6, 1, 0);
    make_images(&s[1], 2, 3, 4, 6, 1, 100);
    make_images(&s[2], 3, 3, 4, 6, 0, 200); /* no labels */
    const char *f = in_dir("img.h5");
    ck_assert_ok(fxp_image_dataset_write(ctx, f, "cifar10", "/some/dir", &s[0], &s[1], &s[2]));
    ck_assert_int_eq(n_files(), 1);
    const char *splits[3] = { "train", "valid", "test" };
    for (int k = 0; k < 3; k++) {
        ck_assert_ok(fxp_image_dataset_read(ctx, f, splits[k], &back));
        ck_assert_same_images(&back, &s[k]);
        fxp_images_free(&back);
    }
    check_attr(ctx, f, "format", "libflowexp-image-dataset");
    check_attr(ctx, f, "dataset", "cifar10");
    check_attr(ctx, f, "channels", "3");
    check_attr(ctx, f, "height", "4");
    check_attr(ctx, f, "width", "6");
    check_attr(ctx, f, "n_train", "5");
    check_attr(ctx, f, "n_valid", "2");
    check_attr(ctx, f, "n_test", "3");
    check_attr(ctx, f, "source", "/some/dir");
    check_attr(ctx, f, "library_version", fxp_version());
    /* overwriting is allowed and leaves one file */
    ck_assert_ok(fxp_image_dataset_write(ctx, f, "fashion-mnist", "x", &s[0], &s[1], &s[2]));
    check_attr(ctx, f, "dataset", "fashion-mnist");
    ck_assert_int_eq(n_files(), 1);
    /* bad arguments change nothing */
    fxp_images odd;
    make_images(&odd, 2, 3, 4, 5, 1, 0);
    ck_assert_fails_naming(fxp_image_dataset_write(ctx, f, "d", "s", &s[0], &odd, &s[2]), FXP_EINVAL, ctx, "valid");
    ck_assert_fails(fxp_image_dataset_write(ctx, f, "d", "s", &s[0], NULL, &s[2]), FXP_EINVAL, ctx);
    ck_assert_fails(fxp_image_dataset_write(ctx, f, "", "s", &s[0], &s[1], &s[2]), FXP_EINVAL, ctx);
    ck_assert_fails(fxp_image_dataset_write(ctx, f, "d", NULL, &s[0], &s[1], &s[2]), FXP_EINVAL, ctx);
    fxp_images empty = { 0 };
    ck_assert_fails_naming(fxp_image_dataset_write(ctx, f, "d", "s", &s[0], &s[1], &empty), FXP_EINVAL, ctx, "test");
    check_attr(ctx, f, "dataset", "fashion-mnist");
    /* atomic: a missing directory creates nothing; a failed rename leaves no
     * temporary and the target alone */
    ck_assert_fails_naming(fxp_image_dataset_write(ctx, in_dir("missing/x.h5"), "d", "s", &s[0], &s[1], &s[2]),
                           FXP_EIO, ctx, "missing/x.h5");
    ck_assert_int_eq(mkdir(in_dir("busy.h5"), 0700), 0);
    write_text(in_dir("busy.h5/keep"), "x");
    ck_assert_fails_naming(fxp_image_dataset_write(ctx, in_dir("busy.h5"), "d", "s", &s[0], &s[1], &s[2]),
                           FXP_EIO, ctx, "rename");
    ck_assert_int_eq(n_files(), 2);
    fxp_images_free(&odd);
    for (int k = 0; k < 3; k++) fxp_images_free(&s[k]);
    fxp_ctx_free(ctx);
}
END_TEST

static void write_dset(hid_t loc, const char *name, hid_t type, int rank, const hsize_t *dims,
                       const void *data, int chunked)
{
    hid_t sp = rank ? H5Screate_simple(rank, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE), lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    if (chunked) {
        H5Pset_chunk(dcpl, rank, dims);
        if (H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0) H5Pset_deflate(dcpl, 6);
    }
    hid_t d = H5Dcreate2(loc, name, type, sp, lcpl, dcpl, H5P_DEFAULT);
    ck_assert_int_ge(d, 0);
    if (data) ck_assert_int_ge(H5Dwrite(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), 0);
    H5Dclose(d);
    H5Pclose(lcpl);
    H5Pclose(dcpl);
    H5Sclose(sp);
}

/* A file written with the HDF5 C API (as h5py would): good and bad splits. */
static void write_foreign(const char *path)
{
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_int_ge(f, 0);
    uint8_t v[64];
    for (int i = 0; i < 64; i++) v[i] = (uint8_t)(3 * i + 1);
    const hsize_t d4[4] = { 2, 1, 2, 3 }, d3[3] = { 2, 2, 3 }, zero[4] = { 0, 1, 2, 3 }, n2 = 2, n3 = 3;
    write_dset(f, "ok", H5T_STD_U8BE, 4, d4, v, 1); /* chunked, compressed */
    write_dset(f, "ok_labels", H5T_STD_U8LE, 1, &n2, v + 20, 0);
    write_dset(f, "nolabels", H5T_STD_U8LE, 4, d4, v, 0);
    write_dset(f, "floats", H5T_IEEE_F32LE, 4, d4, v, 0);
    write_dset(f, "shorts", H5T_STD_U16LE, 4, d4, v, 0);
    write_dset(f, "signed", H5T_STD_I8LE, 4, d4, v, 0);
    write_dset(f, "rank3", H5T_STD_U8LE, 3, d3, v, 0);
    write_dset(f, "scalar", H5T_STD_U8LE, 0, NULL, v, 0);
    write_dset(f, "empty", H5T_STD_U8LE, 4, zero, NULL, 0);
    write_dset(f, "grp/inner", H5T_STD_U8LE, 4, d4, v, 0);
    write_dset(f, "count", H5T_STD_U8LE, 4, d4, v, 0);
    write_dset(f, "count_labels", H5T_STD_U8LE, 1, &n3, v, 0);
    write_dset(f, "ltype", H5T_STD_U8LE, 4, d4, v, 0);
    write_dset(f, "ltype_labels", H5T_IEEE_F64LE, 1, &n2, v, 0);
    write_dset(f, "lrank", H5T_STD_U8LE, 4, d4, v, 0);
    write_dset(f, "lrank_labels", H5T_STD_U8LE, 4, d4, v, 0);
    H5Fclose(f);
}

/* fxp_image_dataset_read(path, split) fails with code naming `what`; out empty. */
static void expect_h5_error(fxp_ctx *ctx, const char *path, const char *split, int code, const char *what)
{
    fxp_images im;
    memset(&im, 0x5a, sizeof im);
    ck_assert_fails_naming(fxp_image_dataset_read(ctx, path, split, &im), code, ctx, what);
    ck_assert_empty(&im);
}

START_TEST(test_h5_read_foreign_and_errors)
{
    fxp_ctx *ctx = test_ctx(1);
    const char *f = in_dir("foreign.h5");
    write_foreign(f);
    fxp_images im;
    ck_assert_ok(fxp_image_dataset_read(ctx, f, "ok", &im));
    ck_assert_int_eq(im.n, 2);
    ck_assert_int_eq(im.channels, 1);
    ck_assert_int_eq(im.height, 2);
    ck_assert_int_eq(im.width, 3);
    for (int i = 0; i < 12; i++) ck_assert_int_eq(im.pixels[i], 3 * i + 1);
    ck_assert_int_eq(im.labels[0], 61);
    ck_assert_int_eq(im.labels[1], 64);
    fxp_images_free(&im);
    ck_assert_ok(fxp_image_dataset_read(ctx, f, "nolabels", &im));
    ck_assert_ptr_null(im.labels);
    fxp_images_free(&im);
    stderr_capture_begin();
    expect_h5_error(ctx, f, "floats", FXP_EFORMAT, "floating-point");
    expect_h5_error(ctx, f, "shorts", FXP_EFORMAT, "unsigned 2-byte integers");
    expect_h5_error(ctx, f, "signed", FXP_EFORMAT, "signed 1-byte");
    expect_h5_error(ctx, f, "rank3", FXP_EFORMAT, "rank 3");
    expect_h5_error(ctx, f, "scalar", FXP_EFORMAT, "rank 0");
    expect_h5_error(ctx, f, "empty", FXP_EFORMAT, "empty");
    expect_h5_error(ctx, f, "grp", FXP_EFORMAT, "group");
    expect_h5_error(ctx, f, "count", FXP_EFORMAT, "3 labels for the 2 images");
    expect_h5_error(ctx, f, "ltype", FXP_EFORMAT, "ltype_labels");
    expect_h5_error(ctx, f, "lrank", FXP_EFORMAT, "lrank_labels\" has rank 4");
    expect_h5_error(ctx, f, "train", FXP_ENOTFOUND, "no split \"train\"");
    ck_assert_ptr_nonnull(strstr(fxp_ctx_error(ctx), "count_labels")); /* lists the root */
    expect_h5_error(ctx, in_dir("absent.h5"), "train", FXP_EIO, "absent.h5");
    expect_h5_error(ctx, test_dir, "train", FXP_EIO, "not a regular file");
    write_text(in_dir("text.h5"), "not HDF5\n");
    expect_h5_error(ctx, in_dir("text.h5"), "train", FXP_EFORMAT, "not an HDF5 file");
    /* truncated copies of one of our files */
    fxp_images s[3];
    for (int k = 0; k < 3; k++) make_images(&s[k], 40, 3, 8, 8, 1, k);
    ck_assert_ok(fxp_image_dataset_write(ctx, in_dir("ours.h5"), "cifar10", "d", &s[0], &s[1], &s[2]));
    const long size = file_size(in_dir("ours.h5"));
    const long cuts[4] = { 100, 1500, size / 2, size - 100 };
    for (int k = 0; k < 4; k++) {
        truncated_copy(in_dir("ours.h5"), in_dir("cut.h5"), cuts[k]);
        expect_h5_error(ctx, in_dir("cut.h5"), "test", FXP_EFORMAT, "cut.h5");
    }
    /* a missing split of our file lists what it holds */
    expect_h5_error(ctx, in_dir("ours.h5"), "training", FXP_ENOTFOUND, "test_labels, train");
    ck_assert_fails(fxp_image_dataset_read(ctx, NULL, "train", &im), FXP_EINVAL, ctx);
    ck_assert_fails(fxp_image_dataset_read(ctx, f, "", &im), FXP_EINVAL, ctx);
    ck_assert_int_eq(stderr_capture_end(), 0); /* nothing printed */
    for (int k = 0; k < 3; k++) fxp_images_free(&s[k]);
    fxp_ctx_free(ctx);
}
END_TEST

/* ---- augmentation --------------------------------------------------------------------- */

/* The torchvision pipeline step by step, for one image [c, h, w] with the
 * draws of the documented formulas: flip, edge pad 2, translate (zero fill),
 * centre crop, flip. */
static void ref_augment(const uint8_t *in, uint8_t *out, int c, int h, int w, const float u[4])
{
    const int f1 = u[0] < 0.5f, f2 = u[3] < 0.5f;
    const int tx = (int)rint(0.04 * (w + 4) * (2.0 * u[1] - 1.0));
    const int ty = (int)rint(0.04 * (h + 4) * (2.0 * u[2] - 1.0));
    const int hp = h + 4, wp = w + 4;
    uint8_t *x1 = malloc((size_t)c * h * w), *pad = malloc((size_t)c * hp * wp),
            *moved = malloc((size_t)c * hp * wp), *crop = malloc((size_t)c * h * w);
    for (int ch = 0; ch < c; ch++)
        for (int i = 0; i < h; i++)
            for (int j = 0; j < w; j++)
                x1[(ch * h + i) * w + j] = in[(ch * h + i) * w + (f1 ? w - 1 - j : j)];
    for (int ch = 0; ch < c; ch++)
        for (int a = 0; a < hp; a++)
            for (int b = 0; b < wp; b++) {
                int i = a - 2, j = b - 2;
                i = i < 0 ? 0 : i >= h ? h - 1 : i;
                j = j < 0 ? 0 : j >= w ? w - 1 : j;
                pad[(ch * hp + a) * wp + b] = x1[(ch * h + i) * w + j];
            }
    for (int ch = 0; ch < c; ch++)
        for (int a = 0; a < hp; a++)
            for (int b = 0; b < wp; b++) {
                const int sa = a - ty, sb = b - tx;
                moved[(ch * hp + a) * wp + b] =
                    sa >= 0 && sa < hp && sb >= 0 && sb < wp ? pad[(ch * hp + sa) * wp + sb] : 0;
            }
    for (int ch = 0; ch < c; ch++)
        for (int i = 0; i < h; i++)
            for (int j = 0; j < w; j++) crop[(ch * h + i) * w + j] = moved[(ch * hp + i + 2) * wp + j + 2];
    for (int ch = 0; ch < c; ch++)
        for (int i = 0; i < h; i++)
            for (int j = 0; j < w; j++)
                out[(ch * h + i) * w + j] = crop[(ch * h + i) * w + (f2 ? w - 1 - j : j)];
    free(x1);
    free(pad);
    free(moved);
    free(crop);
}

static uint8_t *random_images(size_t bytes, uint64_t seed)
{
    uint8_t *x = malloc(bytes);
    fxp_rng r;
    fxp_rng_seed(&r, seed);
    for (size_t i = 0; i < bytes; i++) x[i] = (uint8_t)(1 + fxp_rng_below(&r, 255)); /* never 0 */
    return x;
}

START_TEST(test_augment_reference)
{
    fxp_ctx *ctx = test_ctx(1);
    /* CIFAR10 and Fashion-MNIST sizes, odd shapes, 1x1, and a width and a
     * height whose shift range (0.04 * 104 = 4.16) reaches past the pad into
     * the fill */
    const int shapes[7][4] = { { 6, 3, 32, 32 }, { 6, 1, 28, 28 }, { 5, 2, 7, 11 }, { 3, 1, 1, 1 },
                               { 4, 3, 5, 1 }, { 24, 1, 9, 100 }, { 24, 2, 100, 9 } };
    int filled = 0;
    for (int s = 0; s < 7; s++) {
        const int n = shapes[s][0], c = shapes[s][1], h = shapes[s][2], w = shapes[s][3];
        const size_t per = (size_t)c * h * w;
        uint8_t *in = random_images(n * per, 10 + s), *out = malloc(n * per), *ref = malloc(per);
        fxp_rng rng, draws;
        fxp_rng_seed(&rng, 77 + s);
        draws = rng;
        ck_assert_ok(fxp_images_augment(ctx, in, out, n, c, h, w, &rng));
        for (int k = 0; k < n; k++) {
            float u[4];
            fxp_rng_uniform(&draws, u, 4);
            ref_augment(in + k * per, ref, c, h, w, u);
            ck_assert_msg(!memcmp(ref, out + k * per, per), "shape %d image %d differs from the reference", s, k);
            for (size_t i = 0; i < per; i++) filled += out[k * per + i] == 0;
        }
        ck_assert(rng.counter == draws.counter); /* one block per image */
        free(in);
        free(out);
        free(ref);
    }
    ck_assert_int_gt(filled, 0); /* the zero fill was exercised */
    uint8_t a[4] = { 1, 2, 3, 4 }, b[4];
    fxp_rng rng;
    fxp_rng_seed(&rng, 1);
    ck_assert_fails(fxp_images_augment(ctx, a, a, 1, 1, 2, 2, &rng), FXP_EINVAL, ctx);
    ck_assert_fails(fxp_images_augment(ctx, a, a + 1, 1, 1, 1, 2, &rng), FXP_EINVAL, ctx);
    ck_assert_fails(fxp_images_augment(ctx, a, b, 0, 1, 2, 2, &rng), FXP_EINVAL, ctx);
    ck_assert_fails(fxp_images_augment(ctx, a, b, 1, 1, 2, 2, NULL), FXP_EINVAL, ctx);
    ck_assert_fails(fxp_images_augment(ctx, NULL, b, 1, 1, 2, 2, &rng), FXP_EINVAL, ctx);
    ck_assert(rng.counter == 0); /* failures draw nothing */
    ck_assert_ok(fxp_images_augment(NULL, a, b, 1, 1, 2, 2, &rng)); /* ctx may be NULL */
    fxp_ctx_free(ctx);
}
END_TEST

START_TEST(test_augment_deterministic)
{
    fxp_ctx *c1 = test_ctx(1), *c2 = test_ctx(2);
    enum { N = 64, C = 3, S = 32, PER = C * S * S };
    uint8_t *in = random_images(N * PER, 3), *a = malloc(N * PER), *b = malloc(N * PER);
    fxp_rng r1, r2;
    fxp_rng_seed(&r1, 9);
    fxp_rng_seed(&r2, 9);
    ck_assert_ok(fxp_images_augment(c1, in, a, N, C, S, S, &r1));
    ck_assert_ok(fxp_images_augment(c2, in, b, N, C, S, S, &r2)); /* two threads */
    ck_assert_mem_eq(a, b, N * PER);
    ck_assert(r1.counter == N && r2.counter == N);
    /* image by image from the same stream: the same result */
    fxp_rng_seed(&r2, 9);
    for (int k = 0; k < N; k++) ck_assert_ok(fxp_images_augment(c1, in + k * PER, b + k * PER, 1, C, S, S, &r2));
    ck_assert_mem_eq(a, b, N * PER);
    /* the next call continues the stream; another seed gives other draws */
    ck_assert_ok(fxp_images_augment(c1, in, b, N, C, S, S, &r1));
    ck_assert_int_ne(memcmp(a, b, N * PER), 0);
    fxp_rng_seed(&r2, 10);
    ck_assert_ok(fxp_images_augment(c1, in, b, N, C, S, S, &r2));
    ck_assert_int_ne(memcmp(a, b, N * PER), 0);
    free(in);
    free(a);
    free(b);
    fxp_ctx_free(c1);
    fxp_ctx_free(c2);
}
END_TEST

/* At sides 32 and 28 the output is an edge-replicating shift by (ty, tx) in
 * {-1,0,1}^2 of the input, mirrored if exactly one flip applies: check the
 * closed form of the header for every image, and that edges repeat. */
START_TEST(test_augment_is_flip_shift)
{
    fxp_ctx *ctx = test_ctx(1);
    const int sides[2] = { 32, 28 };
    for (int s = 0; s < 2; s++) {
        const int S = sides[s], N = 200, C = 2, per = C * S * S;
        uint8_t *in = random_images((size_t)N * per, 5 + s), *out = malloc((size_t)N * per);
        fxp_rng rng, draws;
        fxp_rng_seed(&rng, 123);
        draws = rng;
        ck_assert_ok(fxp_images_augment(ctx, in, out, N, C, S, S, &rng));
        int seen[3][3] = { { 0 } };
        for (int k = 0; k < N; k++) {
            float u[4];
            fxp_rng_uniform(&draws, u, 4);
            const int f1 = u[0] < 0.5f, f2 = u[3] < 0.5f;
            const int tx = (int)rint(0.04 * (S + 4) * (2.0 * u[1] - 1.0));
            const int ty = (int)rint(0.04 * (S + 4) * (2.0 * u[2] - 1.0));
            ck_assert(tx >= -1 && tx <= 1 && ty >= -1 && ty <= 1);
            seen[ty + 1][tx + 1]++;
            const uint8_t *x = in + (size_t)k * per, *y = out + (size_t)k * per;
            for (int c = 0; c < C; c++)
                for (int i = 0; i < S; i++)
                    for (int j = 0; j < S; j++) {
                        const int jj = f2 ? S - 1 - j : j;
                        const int si = i - ty < 0 ? 0 : i - ty >= S ? S - 1 : i - ty;
                        int sj = jj - tx < 0 ? 0 : jj - tx >= S ? S - 1 : jj - tx;
                        if (f1) sj = S - 1 - sj;
                        ck_assert_int_eq(y[(c * S + i) * S + j], x[(c * S + si) * S + sj]);
                    }
            /* a shift down repeats the top row, a shift up the bottom row */
            if (ty == 1) ck_assert_mem_eq(y, y + S, S);
            if (ty == -1) ck_assert_mem_eq(y + (S - 1) * S, y + (S - 2) * S, S);
            if (ty == 0 && tx == 0 && f1 == f2) ck_assert_mem_eq(x, y, per); /* identity */
        }
        for (int a = 0; a < 3; a++)
            for (int b = 0; b < 3; b++) ck_assert_int_gt(seen[a][b], 0); /* all nine shifts occur */
        free(in);
        free(out);
    }
    fxp_ctx_free(ctx);
}
END_TEST

/* Frequencies over many images, read off the output: channel 0 holds the row
 * index and channel 1 the column index of each pixel, so the centre pixel of
 * the output names its source. */
static void check_frequencies(fxp_ctx *ctx, int S, double p0)
{
    enum { N = 12000 };
    const int per = 2 * S * S, m = S / 2;
    uint8_t *in = malloc((size_t)N * per), *out = malloc((size_t)N * per);
    for (int k = 0; k < N; k++)
        for (int i = 0; i < S; i++)
            for (int j = 0; j < S; j++) {
                in[(size_t)k * per + i * S + j] = (uint8_t)i;
                in[(size_t)k * per + S * S + i * S + j] = (uint8_t)j;
            }
    fxp_rng rng;
    fxp_rng_seed(&rng, 2024);
    ck_assert_ok(fxp_images_augment(ctx, in, out, N, 2, S, S, &rng));
    int dy[3] = { 0 }, dx[3] = { 0 }, mirrored = 0, still = 0;
    for (int k = 0; k < N; k++) {
        const uint8_t *y = out + (size_t)k * per;
        const int step = y[S * S + m * S + m + 1] - y[S * S + m * S + m];
        /* unshifted, the centre column comes from column m, or S-1-m if mirrored */
        const int ty = m - y[m * S + m], sx = y[S * S + m * S + m] - (step == 1 ? m : S - 1 - m);
        ck_assert(ty >= -1 && ty <= 1 && sx >= -1 && sx <= 1 && (step == 1 || step == -1));
        dy[ty + 1]++;
        dx[sx + 1]++;
        mirrored += step == -1;
        still += ty == 0 && sx == 0;
    }
    const double tol = 0.02; /* about 4.5 standard errors at N = 12000 */
    const double p1 = (1 - p0) / 2;
    ck_assert_double_eq_tol(dy[1] / (double)N, p0, tol);
    ck_assert_double_eq_tol(dy[0] / (double)N, p1, tol);
    ck_assert_double_eq_tol(dy[2] / (double)N, p1, tol);
    ck_assert_double_eq_tol(dx[1] / (double)N, p0, tol);
    ck_assert_double_eq_tol(dx[0] / (double)N, p1, tol);
    ck_assert_double_eq_tol(dx[2] / (double)N, p1, tol);
    ck_assert_double_eq_tol(mirrored / (double)N, 0.5, tol); /* exactly one of two fair flips */
    ck_assert_double_eq_tol(still / (double)N, p0 * p0, tol); /* the shifts are independent */
    free(in);
    free(out);
}

START_TEST(test_augment_frequencies)
{
    fxp_ctx *ctx = test_ctx(1);
    check_frequencies(ctx, 32, 1 / 2.88); /* P(t = 0) = 1 / (2 * 0.04 * 36) */
    check_frequencies(ctx, 28, 1 / 2.56);
    fxp_ctx_free(ctx);
}
END_TEST

/* ---- the real Fashion-MNIST (Debian's dataset-fashion-mnist) ------------------------- */

START_TEST(test_real_fashion_mnist)
{
    struct stat st;
    if (stat(FXP_FASHION_MNIST_DIR, &st) != 0) {
        printf("skipped: %s is not installed (Debian package dataset-fashion-mnist)\n",
               FXP_FASHION_MNIST_DIR);
        return;
    }
    fxp_ctx *ctx = test_ctx(1);
    fxp_images tr, va, te;
    ck_assert_ok(fxp_fashion_mnist_load(ctx, FXP_FASHION_MNIST_DIR, 10000, &tr, &va, &te));
    const fxp_images *s[3] = { &tr, &va, &te };
    const int n[3] = { 50000, 10000, 10000 };
    int per_class[2][10] = { { 0 } };
    for (int k = 0; k < 3; k++) {
        ck_assert_int_eq(s[k]->n, n[k]);
        ck_assert_int_eq(s[k]->channels, 1);
        ck_assert_int_eq(s[k]->height, 28);
        ck_assert_int_eq(s[k]->width, 28);
        ck_assert_ptr_nonnull(s[k]->labels);
        for (int i = 0; i < n[k]; i++) per_class[k == 2][s[k]->labels[i]]++;
    }
    /* the published class balance: 6000 training and 1000 test images per class */
    for (int c = 0; c < 10; c++) {
        ck_assert_int_eq(per_class[0][c], 6000);
        ck_assert_int_eq(per_class[1][c], 1000);
    }
    /* the conversion round trip */
    ck_assert_ok(fxp_image_dataset_write(ctx, in_dir("fm.h5"), "fashion-mnist", FXP_FASHION_MNIST_DIR,
                                         &tr, &va, &te));
    fxp_images back;
    ck_assert_ok(fxp_image_dataset_read(ctx, in_dir("fm.h5"), "valid", &back));
    ck_assert_same_images(&back, &va);
    fxp_images_free(&back);
    check_attr(ctx, in_dir("fm.h5"), "n_train", "50000");
    fxp_images_free(&tr);
    fxp_images_free(&va);
    fxp_images_free(&te);
    fxp_ctx_free(ctx);
}
END_TEST

static Suite *imagedata_suite(void)
{
    Suite *s = suite_create("imagedata");
    TCase *files = tcase_create("files");
    tcase_set_timeout(files, 60);
    tcase_add_checked_fixture(files, setup_dir, teardown_dir);
    tcase_add_test(files, test_images_alloc_free);
    tcase_add_test(files, test_cifar_batch);
    tcase_add_test(files, test_cifar_load_splits);
    tcase_add_test(files, test_cifar_errors);
    tcase_add_test(files, test_idx_plain_and_gzip);
    tcase_add_test(files, test_idx_errors);
    tcase_add_test(files, test_fashion_dir);
    tcase_add_test(files, test_h5_round_trip);
    tcase_add_test(files, test_h5_read_foreign_and_errors);
    tcase_add_test(files, test_real_fashion_mnist);
    suite_add_tcase(s, files);
    TCase *aug = tcase_create("augment");
    tcase_set_timeout(aug, 60);
    tcase_add_test(aug, test_augment_reference);
    tcase_add_test(aug, test_augment_deterministic);
    tcase_add_test(aug, test_augment_is_flip_shift);
    tcase_add_test(aug, test_augment_frequencies);
    suite_add_tcase(s, aug);
    return s;
}

FXP_TEST_MAIN(imagedata_suite)
