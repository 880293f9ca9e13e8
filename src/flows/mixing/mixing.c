/* Choosing a mixing layer by name (see mixing.h). */
#include <math.h>
#include <string.h>

#include "flows/mixing/mixing_internal.h"

static const char *const kind_names[FXP_MIXING_KINDS] = {
    "1x1", "lu", "householder", "emerging", "woodbury", "convexp", "convexp-circular"
};

const char *fxp_mixing_kind_name(fxp_mixing_kind kind)
{
    return (int)kind >= 0 && (int)kind < FXP_MIXING_KINDS ? kind_names[kind] : "";
}

int fxp_mixing_kind_parse(const char *name, fxp_mixing_kind *kind)
{
    for (int i = 0; name && kind && i < FXP_MIXING_KINDS; i++)
        if (!strcmp(name, kind_names[i])) {
            *kind = (fxp_mixing_kind)i;
            return FXP_OK;
        }
    return FXP_ERR(NULL, FXP_EINVAL,
                   "unknown mixing layer \"%s\" (1x1, lu, householder, emerging, woodbury, "
                   "convexp, convexp-circular)",
                   name ? name : "(null)");
}

void fxp_mixing_opts_default(fxp_mixing_opts *o, int channels, int height, int width)
{
    fxp_convexp_opts ce;
    fxp_convexp_opts_default(&ce, channels, height, width);
    *o = (fxp_mixing_opts){ .channels = channels,
                            .height = height,
                            .width = width,
                            .reflections = channels,
                            .woodbury_rank = 24,
                            .convexp_kernel = ce.kernel,
                            .convexp_coeff = ce.coeff,
                            .convexp_sn_eps = ce.sn_eps,
                            .convexp_power_steps = ce.power_steps,
                            .convexp_terms_train = ce.terms_train,
                            .convexp_terms_eval = ce.terms_eval };
}

/* The convexp options, each checked with a message naming it. */
static int convexp_opts(fxp_ctx *ctx, const char *name, const fxp_mixing_opts *o, int circular,
                        fxp_convexp_opts *ce)
{
    const char *kn = circular ? "convexp-circular" : "convexp";
    if (o->convexp_kernel < 1 || o->convexp_kernel % 2 == 0 || o->convexp_kernel > 63)
        return FXP_ERR(ctx, FXP_EINVAL, "%s (%s): convexp_kernel = %d must be odd, 1..63", name,
                       kn, o->convexp_kernel);
    if (circular && (o->convexp_kernel > o->height || o->convexp_kernel > o->width))
        return FXP_ERR(ctx, FXP_EINVAL,
                       "%s (%s): convexp_kernel = %d must fit the %dx%d image with circular "
                       "padding",
                       name, kn, o->convexp_kernel, o->height, o->width);
    if (!(o->convexp_coeff > 0) || !isfinite(o->convexp_coeff))
        return FXP_ERR(ctx, FXP_EINVAL, "%s (%s): convexp_coeff = %g must be finite and > 0",
                       name, kn, (double)o->convexp_coeff);
    if (!(o->convexp_sn_eps >= 0) || !isfinite(o->convexp_sn_eps))
        return FXP_ERR(ctx, FXP_EINVAL, "%s (%s): convexp_sn_eps = %g must be finite and >= 0",
                       name, kn, (double)o->convexp_sn_eps);
    if (o->convexp_power_steps < 0 || o->convexp_power_steps > 1000)
        return FXP_ERR(ctx, FXP_EINVAL, "%s (%s): convexp_power_steps = %d must be in 0..1000",
                       name, kn, o->convexp_power_steps);
    if (o->convexp_terms_train < 1 || o->convexp_terms_train > 1000)
        return FXP_ERR(ctx, FXP_EINVAL, "%s (%s): convexp_terms_train = %d must be in 1..1000",
                       name, kn, o->convexp_terms_train);
    if (o->convexp_terms_eval < 1 || o->convexp_terms_eval > 1000)
        return FXP_ERR(ctx, FXP_EINVAL, "%s (%s): convexp_terms_eval = %d must be in 1..1000",
                       name, kn, o->convexp_terms_eval);
    fxp_convexp_opts_default(ce, o->channels, o->height, o->width);
    ce->kernel = o->convexp_kernel;
    ce->padding = circular ? FXP_PAD_CIRCULAR : FXP_PAD_ZERO;
    ce->coeff = o->convexp_coeff;
    ce->sn_eps = o->convexp_sn_eps;
    ce->power_steps = o->convexp_power_steps;
    ce->terms_train = o->convexp_terms_train;
    ce->terms_eval = o->convexp_terms_eval;
    return FXP_OK;
}

int fxp_mixing_new(fxp_ctx *ctx, fxp_params *ps, const char *name, fxp_mixing_kind kind,
                   const fxp_mixing_opts *opts, fxp_rng *rng, fxp_flow **out)
{
    if (!ps || !opts || !rng || !out || !name)
        return FXP_ERR(ctx, FXP_EINVAL, "NULL argument");
    const fxp_mixing_opts *o = opts;
    const int C = o->channels, H = o->height, W = o->width;
    fxp_convexp_opts ce;
    int rc;
    switch (kind) {
    case FXP_MIXING_1X1: return fxp_conv1x1_new(ctx, ps, name, C, H, W, rng, out);
    case FXP_MIXING_LU: return fxp_conv1x1_lu_new(ctx, ps, name, C, H, W, rng, out);
    case FXP_MIXING_HOUSEHOLDER:
        if (o->reflections < 0 || o->reflections > 4096)
            return FXP_ERR(ctx, FXP_EINVAL,
                           "%s (householder): reflections = %d must be in 1..4096 (or 0: C)", name,
                           o->reflections);
        return fxp_householder1x1_new(ctx, ps, name, C, H, W, o->reflections, rng, out);
    case FXP_MIXING_EMERGING: return fxp_emerging_new(ctx, ps, name, C, H, W, rng, out);
    case FXP_MIXING_WOODBURY:
        if (o->woodbury_rank < 1 || o->woodbury_rank > 4096)
            return FXP_ERR(ctx, FXP_EINVAL, "%s (woodbury): woodbury_rank = %d must be in 1..4096",
                           name, o->woodbury_rank);
        return fxp_woodbury_new(ctx, ps, name, C, H, W, o->woodbury_rank, rng, out);
    case FXP_MIXING_CONVEXP:
    case FXP_MIXING_CONVEXP_CIRCULAR:
        if ((rc = fxp__mixing_check_dims(ctx, name, C, H, W)) < 0) return rc;
        if ((rc = convexp_opts(ctx, name, o, kind == FXP_MIXING_CONVEXP_CIRCULAR, &ce)) < 0)
            return rc;
        return fxp_convexp_new(ctx, ps, name, &ce, rng, out);
    }
    return FXP_ERR(ctx, FXP_EINVAL, "%s: unknown mixing kind %d (0..%d)", name, (int)kind,
                   FXP_MIXING_KINDS - 1);
}
