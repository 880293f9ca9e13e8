/* libflowexp: dense float32 tensors.
 *
 * A tensor is a small value type: a data pointer, up to FXP_MAX_DIMS
 * dimensions, and whether it owns its data.  Data is always contiguous and
 * row-major (the last index varies fastest).  Conventions: images are NCHW,
 * graphs [batch, nodes, features], plain vectors [batch, dim].
 *
 * Ownership: fxp_tensor_alloc() gives an owning tensor that must be released
 * with fxp_tensor_release(); fxp_tensor_wrap() and the view functions give
 * non-owning tensors over someone else's memory (releasing them is a no-op).
 * Tensors created on a tape (fxp_tape_var) live in the tape's arena until
 * fxp_tape_reset().
 */
#ifndef FLOWEXP_TENSOR_H
#define FLOWEXP_TENSOR_H

#include "flowexp/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FXP_MAX_DIMS 5

/* The most elements any tensor or raw buffer may hold: 2^40 (4 TiB of
 * float32).  fxp_tensor_alloc, the tape and the raw-buffer functions check
 * every size product against it, without overflow, before allocating or
 * touching data (FXP_EINVAL otherwise). */
#define FXP_MAX_ELEMENTS ((int64_t)1 << 40)

typedef struct fxp_tensor {
    float *data;
    int ndim;                  /* 0 (scalar) .. FXP_MAX_DIMS */
    int shape[FXP_MAX_DIMS];   /* entries >= ndim are 1 */
    int owns;                  /* nonzero: data was malloc'd by fxp_tensor_alloc */
} fxp_tensor;

struct fxp_ctx;

/* Number of elements (1 for a scalar; 0 if a dimension is 0).  Never
 * wraps: -1 for a shape no tensor can have (ndim outside [0, FXP_MAX_DIMS],
 * a negative dimension, or more than FXP_MAX_ELEMENTS elements), which can
 * only come from a hand-made or fxp_tensor_wrap'ed struct. */
FXP_API int64_t fxp_tensor_numel(const fxp_tensor *t);

/* Allocate an owning, zero-filled tensor.  Dimensions must be >= 1 and
 * ndim in [0, FXP_MAX_DIMS]. Errors (FXP_EINVAL, FXP_ENOMEM) are reported
 * through ctx (may be NULL: then only fxp_last_error()). */
FXP_API int fxp_tensor_alloc(struct fxp_ctx *ctx, fxp_tensor *t, int ndim, const int *shape);

/* Free an owning tensor's data and clear it; no-op for views and NULL. */
FXP_API void fxp_tensor_release(fxp_tensor *t);

/* A non-owning tensor over `data` (caller keeps ownership). No validation
 * beyond what fits the struct: use fxp_tensor_check for that. */
FXP_API fxp_tensor fxp_tensor_wrap(float *data, int ndim, const int *shape);

/* View with another shape and the same number of elements (FXP_ESHAPE
 * otherwise). */
FXP_API int fxp_tensor_reshape(struct fxp_ctx *ctx, const fxp_tensor *t, fxp_tensor *view,
                               int ndim, const int *shape);

/* View of rows [start, start+count) along dimension 0. */
FXP_API int fxp_tensor_slice0(struct fxp_ctx *ctx, const fxp_tensor *t, fxp_tensor *view,
                              int start, int count);

/* Nonzero iff a and b have identical ndim and shape. */
FXP_API int fxp_tensor_same_shape(const fxp_tensor *a, const fxp_tensor *b);

/* Format the shape as "[2,3,5,5]" into buf (always NUL-terminated); returns buf. */
FXP_API char *fxp_tensor_shape_str(const fxp_tensor *t, char *buf, size_t size);

/* FXP_OK if every element is finite; FXP_ENUMERIC naming `what` and the first
 * offending index otherwise. */
FXP_API int fxp_tensor_check_finite(struct fxp_ctx *ctx, const fxp_tensor *t, const char *what);

/* Copy src into dst (same numel, else FXP_ESHAPE). */
FXP_API int fxp_tensor_copy(struct fxp_ctx *ctx, fxp_tensor *dst, const fxp_tensor *src);

/* Set every element to v. */
FXP_API void fxp_tensor_fill(fxp_tensor *t, float v);

#ifdef __cplusplus
}
#endif
#endif
