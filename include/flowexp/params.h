/* libflowexp: named parameters and layer state in flat blocks.
 *
 * A model registers every parameter by name ("flow/3/gce/theta0") with a
 * shape.  Trainable parameters live back to back in one flat value block with
 * a gradient block of the same layout, so an optimizer is one loop over
 * fxp_params_size(ps, FXP_PARAM_TRAINABLE) floats, and its moment buffers
 * share the layout.  Layer state that is saved in checkpoints but not trained
 * (spectral-norm vectors, actnorm initialisation flags) lives in a second flat
 * block (FXP_PARAM_STATE) without gradient.
 *
 * Registration may move the blocks: pointers obtained from fxp_param_value,
 * fxp_param_grad or fxp_params_data stay valid only until the next
 * fxp_params_add.  fxp_param handles themselves are stable.  New entries are
 * zero-filled. Not thread-safe.
 */
#ifndef FLOWEXP_PARAMS_H
#define FLOWEXP_PARAMS_H

#include "flowexp/common.h"
#include "flowexp/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

struct fxp_ctx;
typedef struct fxp_params fxp_params;
typedef struct fxp_param fxp_param;

enum { FXP_PARAM_TRAINABLE = 0, FXP_PARAM_STATE = 1 };

#define FXP_PARAM_NAME_MAX 128

FXP_API int fxp_params_new(struct fxp_ctx *ctx, fxp_params **out);
/* fxp_params_free(NULL) is a no-op. */
FXP_API void fxp_params_free(fxp_params *ps);

/* Register a zero-filled entry. `name` (1..FXP_PARAM_NAME_MAX-1 chars of
 * [A-Za-z0-9_./-], no leading, trailing or doubled '/') must be unique:
 * FXP_EINVAL otherwise. kind is FXP_PARAM_TRAINABLE or FXP_PARAM_STATE. */
FXP_API int fxp_params_add(fxp_params *ps, const char *name, int kind, int ndim,
                           const int *shape, fxp_param **out);

/* Number of registered entries, the i-th in registration order, lookup by
 * exact name (NULL if absent). */
FXP_API int fxp_params_count(const fxp_params *ps);
FXP_API fxp_param *fxp_params_at(const fxp_params *ps, int i);
FXP_API fxp_param *fxp_params_find(const fxp_params *ps, const char *name);

/* Total floats of one kind, and the flat blocks (gradients: trainable only). */
FXP_API size_t fxp_params_size(const fxp_params *ps, int kind);
FXP_API float *fxp_params_data(const fxp_params *ps, int kind);
FXP_API float *fxp_params_grad_data(const fxp_params *ps);

/* Zero the whole gradient block. */
FXP_API void fxp_params_zero_grad(fxp_params *ps);

/* Per entry: name, kind, a view of its values, its gradient (NULL for state),
 * its offset (in floats) inside its block. */
FXP_API const char *fxp_param_name(const fxp_param *p);
FXP_API int fxp_param_kind(const fxp_param *p);
FXP_API fxp_tensor fxp_param_value(const fxp_param *p);
FXP_API float *fxp_param_grad(const fxp_param *p);
FXP_API size_t fxp_param_offset(const fxp_param *p);

#ifdef __cplusplus
}
#endif
#endif
