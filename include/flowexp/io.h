/* libflowexp: HDF5 array files (generic float arrays with root attributes,
 * e.g. sample files).  Graph dataset files are in data.h, checkpoints in
 * checkpoint.h; all three share these rules.
 *
 * Every writer is atomic: it writes "<path>.tmp.<pid>" in the same
 * directory, syncs it to disk, renames it over <path> and syncs the
 * directory, so a crash or an error never leaves a truncated file (and an
 * existing file at <path> stays intact until the new one is complete); on
 * failure the temporary is removed.  Readers validate everything and report
 * missing or unreadable files (FXP_EIO), files that are not HDF5 or are
 * damaged or truncated (FXP_EFORMAT), missing entries (FXP_ENOTFOUND), and
 * entries of the wrong type, rank or shape (FXP_EFORMAT / FXP_EMISMATCH),
 * naming the path and the entry.  The HDF5 library's own error printing is
 * suppressed (every call runs inside H5E_BEGIN_TRY), so nothing is printed.
 *
 * HDF5 (Debian's serial build) is not thread-safe: call these functions from
 * one thread at a time.
 */
#ifndef FLOWEXP_IO_H
#define FLOWEXP_IO_H

#include "flowexp/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

struct fxp_ctx;

/* ---- attributes (on the root group of a file) ---------------------------------- */
typedef enum fxp_attr_type { FXP_ATTR_STRING = 0, FXP_ATTR_DOUBLE = 1, FXP_ATTR_INT = 2 } fxp_attr_type;

typedef struct fxp_attr {
    const char *key;
    fxp_attr_type type;
    const char *s;  /* FXP_ATTR_STRING */
    double d;       /* FXP_ATTR_DOUBLE */
    int64_t i;      /* FXP_ATTR_INT */
} fxp_attr;

/* ---- arrays -------------------------------------------------------------------------- */

/* Write n float32 datasets (names[k] <- arrays[k], any shape; a '/' in a
 * name creates groups) and n_attrs root attributes (strings as UTF-8
 * variable-length strings, doubles as float64, ints as int64) to path,
 * atomically.  FXP_EINVAL for missing names or data, FXP_EIO if the file
 * cannot be written (e.g. the directory does not exist). */
FXP_API int fxp_h5_write_arrays(struct fxp_ctx *ctx, const char *path, int n,
                                const char *const *names, const fxp_tensor *const *arrays,
                                int n_attrs, const fxp_attr *attrs);

/* Read the dataset `name` of any HDF5 file as float32 into an owning tensor
 * (release it with fxp_tensor_release).  Integer or floating-point data of
 * rank 1..5 is converted; strings and compound types are FXP_EFORMAT; NaN or
 * Inf values FXP_ENUMERIC; an empty dataset FXP_EFORMAT.  A missing name is
 * FXP_ENOTFOUND and the message lists the datasets at the root. */
FXP_API int fxp_h5_read_array(struct fxp_ctx *ctx, const char *path, const char *name,
                              fxp_tensor *out);

/* A root attribute as a string (strings verbatim, numbers printed with %.17g).
 * FXP_ENOTFOUND if absent. */
FXP_API int fxp_h5_read_attr(struct fxp_ctx *ctx, const char *path, const char *key, char *buf,
                             size_t size);

/* ---- one large array, written in pieces ------------------------------------------ */

/* For outputs too large to hold in memory (e.g. millions of sampled graphs):
 * declare the array's full shape, append its rows in any number of pieces,
 * then commit.
 *
 *   fxp_h5_array_writer *w;
 *   fxp_h5_array_writer_new(ctx, "s.h5", "samples", 3, (int[]){ n, N, F }, 0, NULL, &w);
 *   for (...) fxp_h5_array_writer_append(w, &batch);     // batch [b, N, F]
 *   rc = fxp_h5_array_writer_commit(w);
 *   fxp_h5_array_writer_free(w);                       // after commit or to abandon
 *
 * The file is like one written by fxp_h5_write_arrays with a single array
 * (float32 dataset `name`, a '/' creating groups, plus root attributes),
 * except that the dataset is stored contiguously (no chunks or filters).
 * Memory use does not depend on the array's size.  new() creates
 * "<path>.tmp.<pid>" and reserves disk space for the whole array: if the
 * file system cannot hold it, new() fails with FXP_EIO ("no space") before
 * any row is written.  commit() fails with FXP_ESTATE unless exactly
 * shape[0] rows were appended; it syncs the file, renames it over path and
 * syncs the directory.  free() of an uncommitted writer removes the
 * temporary, so an abandoned or failed output leaves nothing behind (and a
 * file already at path is untouched); free(NULL) is a no-op.
 *
 * new: FXP_EINVAL for a rank outside 1..FXP_MAX_DIMS, a dimension < 1, a
 * missing name or attribute key; FXP_EIO if the file cannot be created.
 * append: rows [k, shape[1..]] with k >= 0; FXP_ESHAPE for other trailing
 * dimensions or more rows than declared, FXP_EIO for a failed write.
 * fxp_h5_array_writer_rows: rows appended so far.  One writer must not be
 * used by two threads at once; HDF5 is called in new() only. */
typedef struct fxp_h5_array_writer fxp_h5_array_writer;
FXP_API int fxp_h5_array_writer_new(struct fxp_ctx *ctx, const char *path, const char *name,
                                    int ndim, const int *shape, int n_attrs, const fxp_attr *attrs,
                                    fxp_h5_array_writer **out);
FXP_API int fxp_h5_array_writer_append(fxp_h5_array_writer *w, const fxp_tensor *rows);
FXP_API int64_t fxp_h5_array_writer_rows(const fxp_h5_array_writer *w);
FXP_API int fxp_h5_array_writer_commit(fxp_h5_array_writer *w);
FXP_API void fxp_h5_array_writer_free(fxp_h5_array_writer *w);

#ifdef __cplusplus
}
#endif
#endif
