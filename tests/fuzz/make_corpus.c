/* Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/):
 * small valid files of every kind the readers meet, written by the library
 * itself, plus a foreign file (float64, deflate-compressed, in a group, and
 * an integer dataset) written through HDF5 directly as h5py would.
 * Usage: make_corpus CORPUS_DIR (the directories must exist). */
#include <hdf5.h>
#include <zlib.h>

#include "fuzz_common.h"

int fxp_fuzz_checkpoint_model(fxp_ctx *ctx, fxp_params **ps, fxp_optim **opt);

static void die(const char *what)
{
    fprintf(stderr, "make_corpus: %s: %s\n", what, fxp_last_error());
    exit(1);
}

/* The targets pick their call by the input size modulo 4: copy src to dst
 * with zero bytes appended until size % 4 == want (HDF5 ignores bytes past
 * the end of its address space). */
static void padded_copy(const char *src, const char *dst, int want)
{
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    if (!in || !out) die(dst);
    long n = 0;
    int c;
    while ((c = fgetc(in)) != EOF) {
        fputc(c, out);
        n++;
    }
    for (; n % 4 != want; n++) fputc(0, out);
    fclose(in);
    if (fclose(out) != 0) die(dst);
}

static void foreign(const char *path)
{
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hsize_t dims[3] = { 3, 4, 2 }, chunk[3] = { 1, 4, 2 };
    H5Pset_chunk(dcpl, 3, chunk);
    H5Pset_deflate(dcpl, 4);
    double v[24];
    for (int i = 0; i < 24; i++) v[i] = i / 4.0;
    hid_t sp = H5Screate_simple(3, dims, NULL);
    hid_t d = H5Dcreate2(f, "graphs/test", H5T_IEEE_F64LE, sp, lcpl, dcpl, H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    H5Dclose(d);
    int64_t iv[24] = { 0 };
    d = H5Dcreate2(f, "train", H5T_STD_I64LE, sp, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, iv);
    H5Dclose(d);
    H5Sclose(sp);
    H5Pclose(dcpl);
    H5Pclose(lcpl);
    if (H5Fclose(f) < 0) die(path);
}

/* The image target picks its reader by the input's last byte: write the
 * n bytes of buf and then that byte. */
static void with_selector(const char *path, const unsigned char *buf, size_t n, int which)
{
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(buf, 1, n, f) != n) || fputc(which, f) == EOF || fclose(f) != 0) die(path);
}

/* An IDX header (type 0x08, the given rank and dims) and then body bytes. */
static size_t idx_bytes(unsigned char *out, int rank, const unsigned *dims, size_t body)
{
    size_t k = 0;
    out[k++] = 0;
    out[k++] = 0;
    out[k++] = 8;
    out[k++] = (unsigned char)rank;
    for (int i = 0; i < rank; i++)
        for (int s = 24; s >= 0; s -= 8) out[k++] = (unsigned char)(dims[i] >> s);
    for (size_t i = 0; i < body; i++) out[k + i] = (unsigned char)((i * 37 + 11) % (rank == 1 ? 10 : 256));
    return k + body;
}

static void images_corpus(fxp_ctx *ctx, const char *dir)
{
    char p[4096];
    static unsigned char buf[3 * FXP_CIFAR10_RECORD];
    /* CIFAR10: two records */
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (unsigned char)(i % FXP_CIFAR10_RECORD ? i * 7 : i % 10);
    snprintf(p, sizeof p, "%s/images/cifar10-2.bin", dir);
    with_selector(p, buf, 2 * FXP_CIFAR10_RECORD, 0);
    /* IDX: 3 images of 4 x 5, plain and gzip, then with 3 labels appended */
    const unsigned idims[3] = { 3, 4, 5 }, ldims[1] = { 3 };
    size_t ni = idx_bytes(buf, 3, idims, 3 * 4 * 5);
    snprintf(p, sizeof p, "%s/images/idx-images.bin", dir);
    with_selector(p, buf, ni, 1);
    size_t nl = idx_bytes(buf + ni, 1, ldims, 3);
    snprintf(p, sizeof p, "%s/images/idx-with-labels.bin", dir);
    with_selector(p, buf, ni + nl, 2);
    snprintf(p, sizeof p, "%s/images/idx-images.gz", dir);
    gzFile g = gzopen(p, "wb");
    if (!g || gzwrite(g, buf, (unsigned)ni) != (int)ni || gzclose(g) != Z_OK) die(p);
    FILE *f = fopen(p, "ab");
    if (!f || fputc(1, f) == EOF || fclose(f) != 0) die(p);
    /* HDF5: a dataset file of 1 x 4 x 4 images with labels */
    fxp_images s[3];
    for (int k = 0; k < 3; k++) {
        if (fxp_images_alloc(ctx, &s[k], 2 + k, 1, 4, 4, 1) < 0) die("images");
        for (int i = 0; i < s[k].n * 16; i++) s[k].pixels[i] = (uint8_t)(i * 13);
        for (int i = 0; i < s[k].n; i++) s[k].labels[i] = (uint8_t)i;
    }
    snprintf(p, sizeof p, "%s/images/dataset.h5", dir);
    if (fxp_image_dataset_write(ctx, p, "fashion-mnist", "corpus", &s[0], &s[1], &s[2]) < 0) die(p);
    for (int k = 0; k < 3; k++) fxp_images_free(&s[k]);
    f = fopen(p, "ab");
    if (!f || fputc(3, f) == EOF || fclose(f) != 0) die(p);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_corpus CORPUS_DIR\n");
        return 2;
    }
    char p[4096];
    fxp_ctx *ctx = fuzz_ctx();
    /* checkpoint: the fuzz target's model, optimizer, RNG stream, config */
    fxp_params *ps;
    fxp_optim *opt;
    if (fxp_fuzz_checkpoint_model(ctx, &ps, &opt) < 0) die("model");
    const size_t n = fxp_params_size(ps, FXP_PARAM_TRAINABLE);
    for (size_t i = 0; i < n; i++) fxp_params_data(ps, FXP_PARAM_TRAINABLE)[i] = 0.25f * (float)i;
    fxp_rng r;
    fxp_rng_seed(&r, 7);
    fxp_rng *rngs[1] = { &r };
    const char *names[1] = { "data" };
    const char *keys[3] = { "kind", "hidden", "run.step" }, *vals[3] = { "gnf", "16", "40" };
    const fxp_checkpoint c = { ps, opt, 1, names, rngs, 3, keys, vals };
    char q[4096];
    snprintf(p, sizeof p, "%s/checkpoint/full.h5", argv[1]);
    if (fxp_checkpoint_save(ctx, p, &c) < 0) die(p);
    for (int k = 0; k < 4; k++) { /* one copy per call of the target */
        snprintf(q, sizeof q, "%s/checkpoint/full-%d.h5", argv[1], k);
        padded_copy(p, q, k);
    }
    remove(p);
    const fxp_checkpoint bare = { ps, NULL, 0, NULL, NULL, 0, NULL, NULL };
    snprintf(p, sizeof p, "%s/checkpoint/bare.h5", argv[1]);
    if (fxp_checkpoint_save(ctx, p, &bare) < 0) die(p);
    snprintf(q, sizeof q, "%s/checkpoint/bare-0.h5", argv[1]);
    padded_copy(p, q, 0);
    remove(p);
    /* dataset readers: a MoG dataset, a sample file, a foreign file */
    const fxp_mog_dataset_config dc = { FXP_MOG4, 1, 3, 2, 2, 4 };
    snprintf(p, sizeof p, "%s/dataset/mog4.h5", argv[1]);
    if (fxp_mog_dataset_write(ctx, p, &dc, NULL, NULL) < 0) die(p);
    for (int k = 0; k < 4; k += 3) {
        snprintf(q, sizeof q, "%s/dataset/mog4-%d.h5", argv[1], k);
        padded_copy(p, q, k);
    }
    remove(p);
    float s[12];
    for (int i = 0; i < 12; i++) s[i] = (float)i - 6;
    const int shape[3] = { 3, 2, 2 };
    const fxp_tensor st = fxp_tensor_wrap(s, 3, shape);
    const char *an[1] = { "samples" };
    const fxp_tensor *arr[1] = { &st };
    const fxp_attr attrs[2] = { { "dataset", FXP_ATTR_STRING, "mog4", 0, 0 },
                                { "entropy_per_node", FXP_ATTR_DOUBLE, NULL, 3.6, 0 } };
    snprintf(p, sizeof p, "%s/dataset/samples.h5", argv[1]);
    if (fxp_h5_write_arrays(ctx, p, 1, an, arr, 2, attrs) < 0) die(p);
    snprintf(q, sizeof q, "%s/dataset/samples-2.h5", argv[1]);
    padded_copy(p, q, 2);
    remove(p);
    snprintf(p, sizeof p, "%s/dataset/foreign.h5", argv[1]);
    foreign(p);
    for (int k = 0; k < 2; k++) {
        snprintf(q, sizeof q, "%s/dataset/foreign-%d.h5", argv[1], k);
        padded_copy(p, q, k);
    }
    remove(p);
    images_corpus(ctx, argv[1]);
    fxp_optim_free(opt);
    fxp_params_free(ps);
    return 0;
}
