/* Fuzz target: the image readers on arbitrary bytes — the CIFAR10 batch
 * reader (fxp_cifar10_read_batch), the IDX reader (fxp_idx_read, plain or
 * gzip, images alone or with a labels file) and the HDF5 image-dataset
 * reader (fxp_image_dataset_read).  The input's last byte picks the reader
 * (modulo 4) and the bytes before it are the file; for images with labels
 * they are cut in two where the labels magic 00 00 08 01 first appears after
 * the images' magic (no cut: an empty labels file).  Either a call fails
 * with a message and leaves the set empty, or it returns a consistent set:
 * every size >= 1, the pixels, labels exactly when asked for and below 10
 * (CIFAR10 and IDX); no HDF5 handle stays open. */
#include <hdf5.h>

#include "fuzz_common.h"

static char labels_path[80];
static volatile unsigned pixel_sum; /* the pixels are read, not optimised away */

static void labels_remove(void) { unlink(labels_path); }

/* bytes as a second file next to fuzz_file's */
static const char *labels_file(const uint8_t *data, size_t size)
{
    if (!labels_path[0]) {
        snprintf(labels_path, sizeof labels_path, "%s.labels", fuzz_file(NULL, 0));
        atexit(labels_remove);
    }
    FILE *f = fopen(labels_path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) abort();
    return labels_path;
}

static void check_images(fxp_ctx *ctx, int rc, fxp_images *im, int channels, int side,
                         int want_labels, int check_classes)
{
    fuzz_check_status(ctx, rc);
    if (rc < 0) {
        if (im->pixels || im->labels || im->n) abort(); /* left empty */
        return;
    }
    if (im->n < 1 || im->channels < 1 || im->height < 1 || im->width < 1 || !im->pixels) abort();
    if (channels && im->channels != channels) abort();
    if (side && (im->height != side || im->width != side)) abort();
    if (want_labels >= 0 && !im->labels != !want_labels) abort();
    if (check_classes && im->labels)
        for (int i = 0; i < im->n; i++)
            if (im->labels[i] >= FXP_IMAGE_CLASSES) abort();
    /* every pixel readable (ASan sees an over-read of a short buffer) */
    const size_t bytes = (size_t)im->n * im->channels * im->height * im->width;
    unsigned sum = 0;
    for (size_t i = 0; i < bytes; i++) sum += im->pixels[i];
    pixel_sum = sum;
    fxp_images_free(im);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    fxp_ctx *ctx = fuzz_ctx();
    const int which = data[size - 1] % 4;
    size--;
    fxp_images im = { 0 };
    switch (which) {
    case 0: {
        const char *p = fuzz_file(data, size);
        check_images(ctx, fxp_cifar10_read_batch(ctx, p, &im), &im, 3, FXP_CIFAR10_SIDE, 1, 1);
        break;
    }
    case 1: {
        const char *p = fuzz_file(data, size);
        check_images(ctx, fxp_idx_read(ctx, p, NULL, &im), &im, 1, 0, 0, 1);
        break;
    }
    case 2: {
        size_t cut = size;
        for (size_t i = 4; i + 4 <= size; i++)
            if (data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 8 && data[i + 3] == 1) {
                cut = i;
                break;
            }
        const char *lp = labels_file(data + cut, size - cut);
        const char *p = fuzz_file(data, cut);
        check_images(ctx, fxp_idx_read(ctx, p, lp, &im), &im, 1, 0, 1, 1);
        break;
    }
    default: {
        const char *p = fuzz_file(data, size);
        check_images(ctx, fxp_image_dataset_read(ctx, p, "train", &im), &im, 0, 0, -1, 0);
        if (H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) != 0) abort(); /* every handle closed */
        break;
    }
    }
    return 0;
}
