/* libflowexp: image data — the CIFAR10 and Fashion-MNIST readers, HDF5
 * image dataset files, and the training augmentation of the paper's image
 * experiments.  docs/datasets.md ("Image datasets") has the same material
 * with the file layouts as tables.
 *
 * Images are uint8 in NCHW order: pixel (k, c, i, j) of an image set with C
 * channels of H x W is pixels[((k C + c) H + i) W + j]; row i = 0 is the top
 * row of the image, column j = 0 its left column.  Labels are class indices
 * 0..9, one byte per image.
 *
 * Readers validate everything and report, naming the file: a missing or
 * unreadable file (FXP_EIO), a malformed one — wrong magic or dimensions,
 * fewer bytes than the header promises, trailing bytes, corrupt gzip data,
 * labels out of range, images and labels of different counts (FXP_EFORMAT).
 * On failure every output is left empty (all fields zero).
 *
 * The readers, the augmentation and fxp_images_free are thread-safe for
 * distinct outputs (the HDF5 functions are not: HDF5 is not thread-safe).
 */
#ifndef FLOWEXP_IMAGEDATA_H
#define FLOWEXP_IMAGEDATA_H

#include "flowexp/common.h"
#include "flowexp/rng.h"

#ifdef __cplusplus
extern "C" {
#endif

struct fxp_ctx;

/* An owning set of n uint8 images [n, channels, height, width] (NCHW,
 * row-major) with optional labels [n].  Both buffers are malloc'd by the
 * library and released by fxp_images_free. */
typedef struct fxp_images {
    uint8_t *pixels;  /* [n, channels, height, width] */
    uint8_t *labels;  /* [n] class indices, or NULL when there are none */
    int n, channels, height, width;
} fxp_images;

/* Classes of CIFAR10 and Fashion-MNIST; their readers reject labels >= this. */
#define FXP_IMAGE_CLASSES 10

/* Allocate a zero-filled set of n images of channels x height x width (and
 * n zero labels if with_labels).  Every size >= 1; FXP_EINVAL otherwise or
 * if the byte count overflows, FXP_ENOMEM if the memory cannot be had.  On
 * failure *im is left empty. */
FXP_API int fxp_images_alloc(struct fxp_ctx *ctx, fxp_images *im, int n, int channels,
                             int height, int width, int with_labels);

/* Free both buffers and zero *im.  No-op for NULL and for an empty set. */
FXP_API void fxp_images_free(fxp_images *im);

/* ---- CIFAR10, binary version ------------------------------------------------------
 * The official "CIFAR-10 binary version": data_batch_1.bin .. data_batch_5.bin
 * and test_batch.bin, each a sequence of records of FXP_CIFAR10_RECORD bytes:
 * one label byte (0..9), then the 1024 red, the 1024 green and the 1024 blue
 * values of a 32 x 32 image, each plane row-major — which is already NCHW.
 * The official files hold 10000 records each; any whole positive number of
 * records is accepted. */
#define FXP_CIFAR10_SIDE 32
#define FXP_CIFAR10_RECORD (1 + 3 * 32 * 32)

/* Read one batch file into out [n, 3, 32, 32] with labels.  Errors naming
 * the file: FXP_EIO (missing, unreadable, not a regular file), FXP_EFORMAT
 * (empty; a size that is not a whole number of records, i.e. truncated; a
 * label > 9, naming the record index). */
FXP_API int fxp_cifar10_read_batch(struct fxp_ctx *ctx, const char *path, fxp_images *out);

/* Read the whole dataset from the directory dir and split it:
 *   train  the first T - n_valid records of data_batch_1 .. data_batch_5
 *          concatenated in that order (T records in all; official: 40000),
 *   valid  the last n_valid of them (official choice n_valid = 10000: the
 *          authors' split, their validation set being records 40000..49999),
 *   test   test_batch.bin (official: 10000).
 * 1 <= n_valid < T, else FXP_EINVAL.  Errors of the files as for
 * fxp_cifar10_read_batch.  Memory: the images once, plus the valid copy. */
FXP_API int fxp_cifar10_load(struct fxp_ctx *ctx, const char *dir, int n_valid,
                             fxp_images *train, fxp_images *valid, fxp_images *test);

/* ---- IDX files (MNIST, Fashion-MNIST) ---------------------------------------------
 * An IDX file is a big-endian header — the magic 0x00 0x00 <type> <rank>
 * then <rank> uint32 dimensions — followed by the elements, row-major.  Here
 * type 0x08 (unsigned byte) only: images are magic 0x00000803 with dimensions
 * [n, rows, cols], labels magic 0x00000801 with [n].  Files may be gzip
 * compressed or plain (zlib reads both; the name does not matter). */

/* Read images (and, if labels_path is non-NULL, their labels) into out
 * [n, 1, rows, cols].  Errors, each naming the file: FXP_EIO (missing,
 * unreadable, not a regular file); FXP_EFORMAT for a header shorter than its
 * 4 + 4 rank bytes (an empty file included), a wrong magic (other element
 * type, other rank, e.g. a labels file given as images), a zero dimension or
 * one too large (n, rows, cols and rows*cols must fit an int, the data a
 * size_t), fewer data bytes than the header declares (truncated), bytes after
 * the declared data (trailing garbage), corrupt gzip data, an image count
 * that differs from the label count (naming both files), or a label > 9
 * (with its index).  Memory grows with the bytes actually read, so a header
 * that declares more data than the file holds is an error, not a huge
 * allocation. */
FXP_API int fxp_idx_read(struct fxp_ctx *ctx, const char *images_path, const char *labels_path,
                         fxp_images *out);

/* Where Debian's dataset-fashion-mnist package installs the files. */
#define FXP_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

/* Read Fashion-MNIST (or MNIST: the layout is the same) from the directory
 * dir holding train-images-idx3-ubyte, train-labels-idx1-ubyte,
 * t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, each with or without a
 * ".gz" suffix (the plain name is tried first), and split it:
 *   train  the first N - n_valid images of the training file (N = 60000
 *          officially: 50000 with n_valid = 10000),
 *   valid  its last n_valid,
 *   test   the t10k file (10000),
 * each [n, 1, 28, 28] with labels (rows x cols as the files say; training
 * and test files must agree).  1 <= n_valid < N, else FXP_EINVAL; a missing
 * file is FXP_EIO naming both names tried; other errors as fxp_idx_read. */
FXP_API int fxp_fashion_mnist_load(struct fxp_ctx *ctx, const char *dir, int n_valid,
                                   fxp_images *train, fxp_images *valid, fxp_images *test);

/* ---- HDF5 image dataset files -----------------------------------------------------
 * Layout (readable with h5py as f["train"][()], f.attrs["dataset"]):
 *   /train, /valid, /test                  uint8 [n_split, C, H, W]
 *   /train_labels, /valid_labels, /test_labels   uint8 [n_split] (each
 *                                          written when that split has labels)
 *   root attributes  format = "libflowexp-image-dataset", dataset (e.g.
 *                    "cifar10", "fashion-mnist"), channels, height, width,
 *                    n_train, n_valid, n_test (int64), source (the input
 *                    directory), library_version. */
#define FXP_IMAGE_DATASET_FORMAT "libflowexp-image-dataset"

/* Write the three splits to path atomically (as "<path>.tmp.<pid>" in the
 * same directory, synced and renamed over path; on failure the temporary is
 * removed and an existing file at path is left as it was).  Each split needs
 * n >= 1 and pixels, and all three the same channels, height and width;
 * dataset and source are non-empty strings.  FXP_EINVAL for bad arguments,
 * FXP_EIO if the file cannot be written.  Not thread-safe (HDF5). */
FXP_API int fxp_image_dataset_write(struct fxp_ctx *ctx, const char *path, const char *dataset,
                                    const char *source, const fxp_images *train,
                                    const fxp_images *valid, const fxp_images *test);

/* Read one split of any HDF5 file into out: the dataset named `split` must
 * hold unsigned 8-bit integers of rank 4 [n, C, H, W], every dimension >= 1;
 * if "<split>_labels" exists it must be unsigned 8-bit of rank 1 [n] and
 * becomes out->labels (values are not range-checked), else out->labels is
 * NULL.  Errors, each naming the path and the split:
 *   FXP_EIO       missing or unreadable file (or not a regular file)
 *   FXP_EFORMAT   not HDF5, damaged or truncated; not a dataset; not uint8;
 *                 wrong rank; a zero dimension; labels of the wrong type,
 *                 rank or count
 *   FXP_ENOTFOUND no such split (the message lists what the root holds)
 * Nothing is printed.  Not thread-safe (HDF5). */
FXP_API int fxp_image_dataset_read(struct fxp_ctx *ctx, const char *path, const char *split,
                                   fxp_images *out);

/* ---- training augmentation --------------------------------------------------------
 * The authors' CIFAR10 training transform (torchvision)
 *     RandomHorizontalFlip(0.5), Pad(2, edge), RandomAffine(degrees 0,
 *     translate (0.04, 0.04)), CenterCrop(S), RandomHorizontalFlip(0.5)
 * on each image of in [n, c, h, w] into out.  Per image k, four uniforms
 * u0..u3 in (0, 1) are drawn — the one Philox block at rng->counter + k, as
 * fxp_rng_uniform(rng, u, 4) would return them, so a call is the same as n
 * such draws in image order and consumes exactly n blocks — and used as
 *   f1 = u0 < 1/2                       first flip (of columns, j -> w-1-j)
 *   tx = rint(mx (2 u1 - 1)), mx = 0.04 (w + 4)   horizontal shift
 *   ty = rint(my (2 u2 - 1)), my = 0.04 (h + 4)   vertical shift
 *   f2 = u3 < 1/2                       second flip
 * (rint rounds half to even, as Python's round; tx, ty are torchvision's
 * translations, drawn from the padded size h+4, w+4).  Then, with
 * x1 = in flipped if f1, and P the image x1 padded by 2 on every side by
 * replicating its edge pixels (P(a, b) = x1(clamp(a-2, 0, h-1),
 * clamp(b-2, 0, w-1))), the shift moves the content by (ty, tx) pixels
 * (down, right) with zero fill where it leaves P, and the centre crop keeps
 * rows and columns 2 .. size+1:
 *   y(i, j) = P(i + 2 - ty, j + 2 - tx)  if that lies inside P, else 0,
 *   out     = y flipped if f2.
 * For h = w = 32 (CIFAR10) and 28 (Fashion-MNIST) the shift is at most 1
 * pixel (mx = 1.44 and 1.28), never reaches the fill region, and the whole
 * transform is an edge-replicating shift by (ty, tx) in {-1, 0, 1}^2
 * between two optional flips:
 *   y(i, j) = x1(clamp(i - ty, 0, h-1), clamp(j - tx, 0, w-1)).
 * P(tx = 0) = 1 / (2 mx), P(tx = 1) = P(tx = -1) = (1 - 1/(2 mx)) / 2 for
 * mx < 1.5: 0.347 / 0.326 / 0.326 at side 32, 0.391 / 0.305 / 0.305 at 28.
 * All channels of an image move together.  in and out must not overlap.
 * Runs on ctx's threads (one image per iteration; ctx may be NULL: one
 * thread); the result depends only on the rng state, never on the thread
 * count.  FXP_EINVAL for NULL pointers, overlapping buffers or sizes < 1. */
FXP_API int fxp_images_augment(struct fxp_ctx *ctx, const uint8_t *in, uint8_t *out, int n, int c,
                               int h, int w, fxp_rng *rng);

#ifdef __cplusplus
}
#endif
#endif
