/* libflowexp: first-order optimizers over a parameter set.
 *
 * Adam (Kingma & Ba 2015) and Adamax (its infinity-norm variant), both
 * bias-corrected, acting on the flat trainable block of an fxp_params
 * (params.h): values, gradients and the moments m, v share one layout, so a
 * step is one loop.  Per step t = 1, 2, ... with gradient g (after optional
 * clipping and weight decay g += wd * theta):
 *   Adam:   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
 *           theta -= lr_t * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
 *   Adamax: m = b1 m + (1-b1) g;  v = max(b2 v, |g| + eps);
 *           theta -= lr_t / (1-b1^t) * m / v
 * (Adamax follows PyTorch: eps is added inside the max.)
 *
 * Learning-rate schedule: with u = floor(t0 / unit), t0 = t - 1 the number of
 * steps already taken,
 *   lr_t = lr * warm(u) * decay^u,   warm(u) = 1 (none),
 *          min(1, (u+1)/warmup) (linear) or min(1, (u+1)/warmup)^2 (quadratic).
 * The paper's Table-1 runs: Adamax, lr 1e-3, linear warm-up of 10 epochs,
 * decay 0.995 per epoch (unit = steps per epoch); its Sylvester runs: Adam
 * (0.9, 0.99), quadratic warm-up, clipping at 1.0.
 *
 * Gradient clipping (clip_norm > 0; 0 disables), as
 * torch.nn.utils.clip_grad_norm_: with ||g|| the L2 norm of the whole raw
 * gradient block, if ||g|| > clip_norm every gradient is scaled by
 * clip_norm / (||g|| + 1e-6), leaving a norm just below clip_norm.  Weight
 * decay is added after clipping and is not clipped.  ||g|| is summed in double
 * in a fixed order, and the update is elementwise, so the results are
 * bitwise identical for any thread count.  A non-finite gradient norm makes
 * fxp_optim_step fail with FXP_ENUMERIC and leaves parameters and state
 * (m, v, step count) untouched.
 *
 * The optimizer state (step count, m, v) is exposed for checkpoints. An
 * optimizer is bound to its parameter set: register every parameter before
 * creating it.  Not thread-safe; uses the context's threads.
 */
#ifndef FLOWEXP_OPTIM_H
#define FLOWEXP_OPTIM_H

#include "flowexp/params.h"

#ifdef __cplusplus
extern "C" {
#endif

struct fxp_ctx;

typedef enum fxp_optim_kind { FXP_OPTIM_ADAM = 0, FXP_OPTIM_ADAMAX = 1 } fxp_optim_kind;
typedef enum fxp_warmup {
    FXP_WARMUP_NONE = 0,
    FXP_WARMUP_LINEAR = 1,
    FXP_WARMUP_QUADRATIC = 2
} fxp_warmup;

typedef struct fxp_optim_config {
    fxp_optim_kind kind;
    double lr;            /* base learning rate (> 0) */
    double beta1, beta2;  /* in [0, 1) */
    double eps;           /* > 0 */
    double weight_decay;  /* >= 0, L2 added to the gradient */
    double clip_norm;     /* >= 0; 0 = no clipping */
    fxp_warmup warmup;
    int warmup_units;     /* >= 1 when warmup != NONE */
    double decay;         /* per unit, in (0, 1]; 1 = constant */
    int64_t unit;         /* steps per schedule unit (>= 1), e.g. steps per epoch */
} fxp_optim_config;

/* Defaults: Adam: lr 1e-3, betas (0.9, 0.999), eps 1e-8; Adamax: lr 2e-3,
 * betas (0.9, 0.999), eps 1e-7; no decay, clipping, warm-up or weight decay;
 * unit 1. */
FXP_API void fxp_optim_config_default(fxp_optim_config *cfg, fxp_optim_kind kind);

/* The schedule's learning rate for step t (1-based) under cfg. */
FXP_API double fxp_optim_schedule(const fxp_optim_config *cfg, int64_t t);

typedef struct fxp_optim fxp_optim;

/* Validate cfg (FXP_EINVAL naming the bad field) and create an optimizer with
 * zero moments over the trainable block of ps (which must outlive it, as
 * must ctx).  Registering further trainable parameters in ps afterwards
 * makes every later fxp_optim_step fail with FXP_ESTATE. */
FXP_API int fxp_optim_new(struct fxp_ctx *ctx, fxp_params *ps, const fxp_optim_config *cfg,
                          fxp_optim **out);
/* fxp_optim_free(NULL) is a no-op. */
FXP_API void fxp_optim_free(fxp_optim *opt);

/* One update from the gradients now in ps, with the learning rate
 * fxp_optim_schedule(cfg, t) for t = fxp_optim_steps(opt) + 1, which becomes
 * the new step count.  Writes the gradient's L2 norm before clipping (and
 * without weight decay) to *grad_norm if non-NULL, also when it fails with
 * FXP_ENUMERIC.  Does not zero the gradients. */
FXP_API int fxp_optim_step(fxp_optim *opt, double *grad_norm);

FXP_API const fxp_optim_config *fxp_optim_get_config(const fxp_optim *opt);
/* Steps taken so far, and the learning rate the next step will use. */
FXP_API int64_t fxp_optim_steps(const fxp_optim *opt);
FXP_API double fxp_optim_lr(const fxp_optim *opt);

/* State for checkpoints: moments m and v (fxp_optim_state_size floats each,
 * laid out as the trainable block) and the step count. set_steps restores a
 * saved count (>= 0). */
FXP_API size_t fxp_optim_state_size(const fxp_optim *opt);
FXP_API float *fxp_optim_m(fxp_optim *opt);
FXP_API float *fxp_optim_v(fxp_optim *opt);
FXP_API int fxp_optim_set_steps(fxp_optim *opt, int64_t steps);

#ifdef __cplusplus
}
#endif
#endif
