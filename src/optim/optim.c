/* Adam and Adamax over the flat trainable block, with schedule, clipping and
 * weight decay (see optim.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

struct fxp_optim {
    fxp_ctx *ctx;
    fxp_params *ps;
    fxp_optim_config cfg;
    size_t size;   /* trainable floats when created */
    float *m, *v;
    int64_t steps;
};

void fxp_optim_config_default(fxp_optim_config *cfg, fxp_optim_kind kind)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->kind = kind;
    cfg->lr = kind == FXP_OPTIM_ADAMAX ? 2e-3 : 1e-3;
    cfg->beta1 = 0.9;
    cfg->beta2 = 0.999;
    cfg->eps = kind == FXP_OPTIM_ADAMAX ? 1e-7 : 1e-8;
    cfg->warmup = FXP_WARMUP_NONE;
    cfg->warmup_units = 1;
    cfg->decay = 1.0;
    cfg->unit = 1;
}

double fxp_optim_schedule(const fxp_optim_config *cfg, int64_t t)
{
    const int64_t unit = cfg->unit >= 1 ? cfg->unit : 1;
    const int64_t u = (t >= 1 ? t - 1 : 0) / unit;
    double warm = 1.0;
    if (cfg->warmup != FXP_WARMUP_NONE && cfg->warmup_units >= 1) {
        warm = fmin(1.0, (double)(u + 1) / cfg->warmup_units);
        if (cfg->warmup == FXP_WARMUP_QUADRATIC) warm *= warm;
    }
    return cfg->lr * warm * pow(cfg->decay, (double)u);
}

static int check_config(fxp_ctx *ctx, const fxp_optim_config *c)
{
#define BAD(...) return FXP_ERR(ctx, FXP_EINVAL, __VA_ARGS__)
    if (c->kind != FXP_OPTIM_ADAM && c->kind != FXP_OPTIM_ADAMAX) BAD("kind %d unknown", (int)c->kind);
    if (!(c->lr > 0) || !isfinite(c->lr)) BAD("lr = %g must be finite and > 0", c->lr);
    if (!(c->beta1 >= 0 && c->beta1 < 1)) BAD("beta1 = %g outside [0, 1)", c->beta1);
    if (!(c->beta2 >= 0 && c->beta2 < 1)) BAD("beta2 = %g outside [0, 1)", c->beta2);
    if (!(c->eps > 0) || !isfinite(c->eps)) BAD("eps = %g must be finite and > 0", c->eps);
    if (!(c->weight_decay >= 0) || !isfinite(c->weight_decay))
        BAD("weight_decay = %g must be finite and >= 0", c->weight_decay);
    if (!(c->clip_norm >= 0) || !isfinite(c->clip_norm))
        BAD("clip_norm = %g must be finite and >= 0", c->clip_norm);
    if (c->warmup != FXP_WARMUP_NONE && c->warmup != FXP_WARMUP_LINEAR &&
        c->warmup != FXP_WARMUP_QUADRATIC)
        BAD("warmup %d unknown", (int)c->warmup);
    if (c->warmup != FXP_WARMUP_NONE && c->warmup_units < 1)
        BAD("warmup_units = %d must be >= 1 with a warm-up", c->warmup_units);
    if (!(c->decay > 0 && c->decay <= 1)) BAD("decay = %g outside (0, 1]", c->decay);
    if (c->unit < 1) BAD("unit = %lld must be >= 1", (long long)c->unit);
#undef BAD
    return FXP_OK;
}

int fxp_optim_new(fxp_ctx *ctx, fxp_params *ps, const fxp_optim_config *cfg, fxp_optim **out)
{
    FXP_API_SCOPE();
    if (!ctx || !ps || !cfg || !out) return FXP_ERR(ctx, FXP_EINVAL, "ctx, ps, cfg or out is NULL");
    int rc = check_config(ctx, cfg);
    if (rc < 0) return rc;
    fxp_optim *o = calloc(1, sizeof *o);
    size_t n = fxp_params_size(ps, FXP_PARAM_TRAINABLE);
    if (o) {
        o->m = calloc(n ? n : 1, sizeof(float));
        o->v = calloc(n ? n : 1, sizeof(float));
    }
    if (!o || !o->m || !o->v) {
        fxp_optim_free(o);
        return FXP_ERR(ctx, FXP_ENOMEM, "cannot allocate optimizer state for %zu parameters", n);
    }
    o->ctx = ctx;
    o->ps = ps;
    o->cfg = *cfg;
    o->size = n;
    *out = o;
    return FXP_OK;
}

void fxp_optim_free(fxp_optim *o)
{
    if (!o) return;
    free(o->m);
    free(o->v);
    free(o);
}

int fxp_optim_step(fxp_optim *o, double *grad_norm)
{
    FXP_API_SCOPE();
    if (!o) return FXP_ERR(NULL, FXP_EINVAL, "optimizer is NULL");
    fxp_ctx *ctx = o->ctx;
    if (fxp_params_size(o->ps, FXP_PARAM_TRAINABLE) != o->size)
        return FXP_ERR(ctx, FXP_ESTATE,
                       "the parameter set grew from %zu to %zu floats after the optimizer "
                       "was created",
                       o->size, fxp_params_size(o->ps, FXP_PARAM_TRAINABLE));
    float *w = fxp_params_data(o->ps, FXP_PARAM_TRAINABLE), *g = fxp_params_grad_data(o->ps);
    const size_t n = o->size;
    const double norm = sqrt(fxp__sumsq(ctx, g, (int64_t)n));
    if (grad_norm) *grad_norm = norm;
    if (!isfinite(norm))
        return FXP_ERR(ctx, FXP_ENUMERIC,
                       "gradient norm is %g at step %lld; parameters left unchanged", norm,
                       (long long)o->steps + 1);
    const fxp_optim_config *c = &o->cfg;
    /* clip_grad_norm_ semantics: scale by clip / (norm + 1e-6) when norm > clip */
    const float gscale = c->clip_norm > 0 && norm > c->clip_norm
                             ? (float)(c->clip_norm / (norm + 1e-6)) : 1.0f;
    const int64_t t = o->steps + 1;
    const double lr = fxp_optim_schedule(c, t);
    const float b1 = (float)c->beta1, b2 = (float)c->beta2, eps = (float)c->eps,
                wd = (float)c->weight_decay;
    const double bc1 = 1.0 - pow(c->beta1, (double)t), bc2 = 1.0 - pow(c->beta2, (double)t);
    float *m = o->m, *v = o->v;
    const int64_t nn = (int64_t)n;
    /* w, g, m, v: the n floats of the trainable block, one layout.  Each
     * element is updated on its own, so the split over threads cannot change
     * a result; blocks under 64k floats stay on one thread (the fork would
     * cost more than the loop). */
    if (c->kind == FXP_OPTIM_ADAM) {
        /* theta -= lr * (m / bc1) / (sqrt(v / bc2) + eps) */
        const float step = (float)(lr / bc1), inv_sqrt_bc2 = (float)(1.0 / sqrt(bc2));
        FXP_PARALLEL_FOR(ctx->n_threads, nn > 65536,
            for (int64_t i = 0; i < nn; i++) {
                float gi = g[i] * gscale + wd * w[i];
                m[i] = b1 * m[i] + (1 - b1) * gi;
                v[i] = b2 * v[i] + (1 - b2) * gi * gi;
                w[i] -= step * m[i] / (sqrtf(v[i]) * inv_sqrt_bc2 + eps);
            });
    } else {
        /* Adamax: u = max(b2 u, |g| + eps); theta -= lr / bc1 * m / u */
        const float step = (float)(lr / bc1);
        FXP_PARALLEL_FOR(ctx->n_threads, nn > 65536,
            for (int64_t i = 0; i < nn; i++) {
                float gi = g[i] * gscale + wd * w[i];
                m[i] = b1 * m[i] + (1 - b1) * gi;
                v[i] = fmaxf(b2 * v[i], fabsf(gi) + eps);
                w[i] -= step * m[i] / v[i];
            });
    }
    o->steps = t;
    return FXP_OK;
}

const fxp_optim_config *fxp_optim_get_config(const fxp_optim *o) { return o ? &o->cfg : NULL; }
int64_t fxp_optim_steps(const fxp_optim *o) { return o ? o->steps : 0; }
double fxp_optim_lr(const fxp_optim *o) { return o ? fxp_optim_schedule(&o->cfg, o->steps + 1) : 0; }
size_t fxp_optim_state_size(const fxp_optim *o) { return o ? o->size : 0; }
float *fxp_optim_m(fxp_optim *o) { return o ? o->m : NULL; }
float *fxp_optim_v(fxp_optim *o) { return o ? o->v : NULL; }

int fxp_optim_set_steps(fxp_optim *o, int64_t steps)
{
    if (!o) return FXP_ERR(NULL, FXP_EINVAL, "optimizer is NULL");
    if (steps < 0) return FXP_ERR(o->ctx, FXP_EINVAL, "steps = %lld must be >= 0", (long long)steps);
    o->steps = steps;
    return FXP_OK;
}
