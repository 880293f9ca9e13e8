/* The image models of imageflow.h: the Table-1 prior flow p(v), the uniform
 * or variational dequantiser q(u|x), the ELBO, sampling, decoding and the
 * batched importance-weighted evaluation. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flows/image/image_internal.h"
#include "flowexp/imageflow.h"
#include "flowexp/mixing.h"
#include "flowexp/residual.h"
#include "flowexp/sylvester.h"

struct fxp_image_model {
    fxp_ctx *ctx;
    fxp_image_model_config cfg;
    fxp_model *pv;
    int latent[3];            /* the prior's top latent [C', H', W'] */
    /* variational dequantiser */
    fxp_flow *qflow;          /* a [B, C, H, W] -> z [B, 4C, H/2, W/2] */
    fxp_param *q_mean, *q_ls; /* [1, 4C, 1, 1] */
    int q_shape[3];
    fxp__densenet ctx_in, ctx_out;
    fxp__conv ctx_down;       /* the 2x2 stride-2 convolution, w [K, K, 2, 2] */
};

/* ---- construction -------------------------------------------------------------- */

static int layer_name(fxp_ctx *ctx, char *buf, size_t size, const char *prefix, int index,
                      const char *leaf)
{
    int n = snprintf(buf, size, "%s/%d/%s", prefix, index, leaf);
    return n < 0 || (size_t)n >= size ? FXP_ERR(ctx, FXP_EINVAL, "layer name too long") : FXP_OK;
}

/* The configured mixing layer for a C x H x W activation (mixing.h). */
static int mixing_new(fxp_image_model *m, fxp_params *ps, const char *name, int C, int H, int W,
                      fxp_rng *rng, fxp_flow **out)
{
    const fxp_image_model_config *c = &m->cfg;
    fxp_mixing_kind kind;
    fxp_mixing_opts o;
    int rc = fxp_mixing_kind_parse(c->mixing, &kind);
    if (rc < 0) return FXP_ERR(m->ctx, rc, "%s", fxp_last_error());
    fxp_mixing_opts_default(&o, C, H, W);
    o.reflections = c->reflections;
    o.woodbury_rank = c->woodbury_rank;
    o.convexp_coeff = c->convexp_coeff;
    o.convexp_sn_eps = c->convexp_sn_eps;
    o.convexp_terms_train = c->convexp_terms_train;
    o.convexp_terms_eval = c->convexp_terms_eval;
    o.convexp_power_steps = c->convexp_power_steps;
    return fxp_mixing_new(m->ctx, ps, name, kind, &o, rng, out);
}

static void coupling_opts(const fxp_image_model_config *c, int channels, int context,
                          fxp_image_coupling_opts *o)
{
    fxp_image_coupling_opts_default(o, channels);
    o->context = context;
    o->intermediate = c->intermediate;
    o->depth = c->depth;
    o->growth = c->growth;
    o->n_densenets = c->n_densenets;
    o->gated = c->gated;
}

/* Append a layer built by `make` under "<prefix>/<index>/<leaf>". */
#define APPEND(seq, prefix, leaf, call)                                       \
    do {                                                                      \
        fxp_flow *layer_;                                                     \
        FXP_TRY(layer_name(ctx, name, sizeof name, prefix, index++, leaf));   \
        FXP_TRY(call);                                                        \
        FXP_TRY(fxp_flow_seq_append(seq, layer_));                            \
    } while (0)

/* The prior flow of imageflow.h and its top latent shape. */
/* The prior model p(v) from its flow (taken over, also on failure) and a
 * per-channel diagonal Gaussian base on the C x H x W latent. */
static int finish_prior(fxp_image_model *m, fxp_params *ps, fxp_flow *seq, int C, int H, int W)
{
    m->latent[0] = C;
    m->latent[1] = H;
    m->latent[2] = W;
    const int pshape[3] = { C, 1, 1 };
    return fxp_model_new(m->ctx, ps, "pv", seq, FXP_BASE_DIAG_NORMAL, 3, pshape, &m->pv);
}

static int build_prior(fxp_image_model *m, fxp_params *ps, fxp_rng *rng)
{
    fxp_ctx *ctx = m->ctx;
    const fxp_image_model_config *c = &m->cfg;
    fxp_flow *seq = NULL;
    char name[FXP_PARAM_NAME_MAX];
    int rc, index = 0, C = c->channels * 4, H = c->height / 2, W = c->width / 2;
    fxp_image_coupling_opts co;
    FXP_TRY(fxp_flow_seq_new(ctx, "pv/flow", &seq));
    APPEND(seq, "pv/flow", "normalize",
           fxp_normalize_new(ctx, name, c->normalize_shift, c->normalize_scale, &layer_));
    APPEND(seq, "pv/flow", "squeeze", fxp_squeeze_new(ctx, name, &layer_));
    APPEND(seq, "pv/flow", "mixing", mixing_new(m, ps, name, C, H, W, rng, &layer_));
    for (int l = 0; l < c->levels; l++) {
        for (int s = 0; s < c->subflows; s++) {
            coupling_opts(c, C, 0, &co);
            APPEND(seq, "pv/flow", "coupling", fxp_image_coupling_new(ctx, ps, name, &co, rng, &layer_));
            APPEND(seq, "pv/flow", "mixing", mixing_new(m, ps, name, C, H, W, rng, &layer_));
        }
        if (l < c->levels - 1 && c->splitprior) {
            coupling_opts(c, C, 0, &co);
            APPEND(seq, "pv/flow", "split", fxp_split_prior_new(ctx, ps, name, &co, rng, &layer_));
            APPEND(seq, "pv/flow", "squeeze", fxp_squeeze_new(ctx, name, &layer_));
            C = C / 2 * 4;
            H /= 2;
            W /= 2;
        }
    }
    rc = finish_prior(m, ps, seq, C, H, W);
    seq = NULL; /* owned by the model, also on failure */
out:
    fxp_flow_free(seq);
    return rc;
}

/* One block of the Tables 2-3 models for a C x H x W activation (see
 * imageflow.h): appended to seq as its layers. */
static int append_block(fxp_image_model *m, fxp_params *ps, fxp_flow *seq, int *index, int C,
                        int H, int W, fxp_rng *rng)
{
    fxp_ctx *ctx = m->ctx;
    const fxp_image_model_config *c = &m->cfg;
    char name[FXP_PARAM_NAME_MAX];
    fxp_flow *layer;
    int rc;
#define ADD(leaf, call)                                                         \
    do {                                                                        \
        FXP_TRY(layer_name(ctx, name, sizeof name, "pv/flow", (*index)++, leaf)); \
        FXP_TRY(call);                                                          \
        FXP_TRY(fxp_flow_seq_append(seq, layer));                               \
    } while (0)
    ADD("actnorm", fxp_actnorm_new(ctx, ps, name, C, &layer));
    if (c->kind == FXP_IMAGE_RESFLOW) {
        fxp_resblock_opts o;
        fxp_resblock_opts_default(&o, C, H, W);
        o.hidden = c->hidden;
        o.coeff = c->resflow_coeff;
        o.sn_atol = c->resflow_sn_atol;
        o.sn_rtol = c->resflow_sn_rtol;
        o.sn_max_iter = c->resflow_sn_max_iter;
        o.lambda = c->resflow_lambda;
        o.n_exact_train = c->resflow_exact_train;
        o.n_exact_eval = c->resflow_exact_eval;
        o.inverse_atol = c->resflow_inverse_atol;
        o.inverse_rtol = c->resflow_inverse_rtol;
        o.inverse_max_iter = c->resflow_inverse_max_iter;
        ADD("resblock", fxp_resblock_new(ctx, ps, name, &o, rng, &layer));
    } else if (c->kind == FXP_IMAGE_COUPLING) {
        fxp_image_coupling_opts co;
        fxp_image_coupling_opts_default(&co, C);
        co.net = FXP_COND_CONV;
        co.intermediate = c->hidden;
        co.gated = 0;
        co.scale = FXP_SCALE_HALF_TANH;
        ADD("mixing", fxp_conv1x1_new(ctx, ps, name, C, H, W, rng, &layer));
        ADD("coupling", fxp_image_coupling_new(ctx, ps, name, &co, rng, &layer));
    } else {
        fxp_sylvester_opts o;
        fxp_sylvester_opts_default(&o, C, H, W);
        o.hidden = c->hidden;
        o.reflections = c->reflections;
        o.lipschitz = c->lipschitz;
        o.convexp_coeff = c->convexp_coeff;
        o.sn_eps = c->convexp_sn_eps;
        o.power_steps = c->convexp_power_steps;
        o.terms_train = c->convexp_terms_train;
        o.terms_eval = c->convexp_terms_eval;
        o.inverse_atol = c->sylvester_atol;
        o.inverse_max_iter = c->sylvester_max_iter;
        if (c->kind == FXP_IMAGE_SYLVESTER_NOBASIS) {
            o.q = FXP_SYLV_Q_NONE;
            o.convexp = 0;
        }
        if (c->kind == FXP_IMAGE_SYLVESTER_NOGEN) o.f = FXP_SYLV_F_ORIGINAL;
        ADD("sylvester", fxp_sylvester_new(ctx, ps, name, &o, rng, &layer));
        ADD("flip", fxp_flip_new(ctx, name, &layer));
    }
#undef ADD
out:
    return rc;
}

/* The prior of the Tables 2-3 models (imageflow.h): no normalize layer;
 * squeeze, blocks, split priors and squeezes between levels. */
static int build_prior_blocks(fxp_image_model *m, fxp_params *ps, fxp_rng *rng)
{
    fxp_ctx *ctx = m->ctx;
    const fxp_image_model_config *c = &m->cfg;
    fxp_flow *seq = NULL;
    char name[FXP_PARAM_NAME_MAX];
    int rc, index = 0, C = c->channels * 4, H = c->height / 2, W = c->width / 2;
    fxp_image_coupling_opts co;
    FXP_TRY(fxp_flow_seq_new(ctx, "pv/flow", &seq));
    APPEND(seq, "pv/flow", "squeeze", fxp_squeeze_new(ctx, name, &layer_));
    for (int l = 0; l < c->levels; l++) {
        for (int s = 0; s < c->subflows; s++)
            FXP_TRY(append_block(m, ps, seq, &index, C, H, W, rng));
        if (l == c->levels - 1) break;
        if (c->splitprior && (l >= 1 || c->split_level0)) {
            coupling_opts(c, C, 0, &co);
            APPEND(seq, "pv/flow", "split", fxp_split_prior_new(ctx, ps, name, &co, rng, &layer_));
            C /= 2;
        }
        /* the authors squeeze between levels even without a split */
        APPEND(seq, "pv/flow", "squeeze", fxp_squeeze_new(ctx, name, &layer_));
        C *= 4;
        H /= 2;
        W /= 2;
    }
    rc = finish_prior(m, ps, seq, C, H, W);
    seq = NULL; /* owned by the model, also on failure */
out:
    fxp_flow_free(seq);
    return rc;
}

/* The variational dequantiser: context network, flow g, base. */
static int build_dequantizer(fxp_image_model *m, fxp_params *ps, fxp_rng *rng)
{
    fxp_ctx *ctx = m->ctx;
    const fxp_image_model_config *c = &m->cfg;
    const int K = c->context_channels, C = c->channels * 4, H = c->height / 2,
              W = c->width / 2;
    char name[FXP_PARAM_NAME_MAX];
    int rc, index = 0;
    fxp_image_coupling_opts co;
    FXP_TRY(fxp__densenet_init(&m->ctx_in, ctx, ps, "qu/context/dense/0", c->channels, K,
                               c->context_depth, c->context_growth, c->gated, rng));
    FXP_TRY(fxp__conv_init(&m->ctx_down, ctx, ps, "qu/context/down", "w", "b", K, K, 2, 0, rng));
    FXP_TRY(fxp__densenet_init(&m->ctx_out, ctx, ps, "qu/context/dense/1", K, K,
                               c->context_depth, c->context_growth, c->gated, rng));
    FXP_TRY(fxp_flow_seq_new(ctx, "qu/flow", &m->qflow));
    APPEND(m->qflow, "qu/flow", "squeeze", fxp_squeeze_new(ctx, name, &layer_));
    for (int s = 0; s <= c->deq_subflows; s++) {
        if (s > 0) {
            coupling_opts(c, C, K, &co);
            APPEND(m->qflow, "qu/flow", "coupling",
                   fxp_image_coupling_new(ctx, ps, name, &co, rng, &layer_));
        }
        /* the mixing layers of g are parametrised as inverses: the layer
         * "qu/flow/<i>/mixing" wrapped as "qu/flow/<i>/inverted" */
        fxp_flow *mix, *inv;
        FXP_TRY(layer_name(ctx, name, sizeof name, "qu/flow", index, "mixing"));
        FXP_TRY(mixing_new(m, ps, name, C, H, W, rng, &mix));
        FXP_TRY(layer_name(ctx, name, sizeof name, "qu/flow", index++, "inverted"));
        FXP_TRY(fxp_flow_inverted_new(ctx, name, mix, &inv));
        FXP_TRY(fxp_flow_seq_append(m->qflow, inv));
    }
    const int pshape[4] = { 1, C, 1, 1 };
    FXP_TRY(fxp_params_add(ps, "qu/base/mean", FXP_PARAM_TRAINABLE, 4, pshape, &m->q_mean));
    FXP_TRY(fxp_params_add(ps, "qu/base/log_sigma", FXP_PARAM_TRAINABLE, 4, pshape, &m->q_ls));
    m->q_shape[0] = C;
    m->q_shape[1] = H;
    m->q_shape[2] = W;
out:
    return rc;
}
#undef APPEND

int fxp_image_model_new(fxp_ctx *ctx, fxp_params *ps, const fxp_image_model_config *cfg,
                        fxp_rng *rng, fxp_image_model **out)
{
    FXP_API_SCOPE();
    if (!ps || !cfg || !rng || !out) return FXP_ERR(ctx, FXP_EINVAL, "NULL argument");
    int rc = fxp_image_model_config_validate(ctx, cfg);
    if (rc < 0) return rc;
    fxp_image_model *m = calloc(1, sizeof *m);
    if (!m) return FXP_ERR(ctx, FXP_ENOMEM, "cannot allocate an image model");
    m->ctx = ctx;
    m->cfg = *cfg;
    if (cfg->kind == FXP_IMAGE_FLOW) FXP_TRY(build_prior(m, ps, rng));
    else FXP_TRY(build_prior_blocks(m, ps, rng));
    if (cfg->dequantization == FXP_DEQUANT_VARIATIONAL) FXP_TRY(build_dequantizer(m, ps, rng));
    *out = m;
    return FXP_OK;
out:
    fxp_image_model_free(m);
    return rc;
}

void fxp_image_model_free(fxp_image_model *m)
{
    FXP_API_SCOPE();
    if (!m) return;
    fxp_model_free(m->pv);
    fxp_flow_free(m->qflow);
    fxp__densenet_free(&m->ctx_in);
    fxp__densenet_free(&m->ctx_out);
    free(m);
}

fxp_model *fxp_image_model_prior(const fxp_image_model *m) { return m ? m->pv : NULL; }
fxp_flow *fxp_image_model_dequantizer(const fxp_image_model *m) { return m ? m->qflow : NULL; }
const fxp_image_model_config *fxp_image_model_get_config(const fxp_image_model *m)
{
    return m ? &m->cfg : NULL;
}

int fxp_image_model_logdet_is_exact(const fxp_image_model *m)
{
    return m && m->cfg.kind != FXP_IMAGE_RESFLOW;
}

void fxp_image_model_latent_shape(const fxp_image_model *m, int shape[3])
{
    for (int i = 0; i < 3; i++) shape[i] = m ? m->latent[i] : 0;
}

/* ---- objectives ------------------------------------------------------------------ */

static int check_images(const fxp_image_model *m, const fxp_var *x, const char *what)
{
    const fxp_tensor *v = &x->value;
    char s[64];
    if (v->ndim != 4 || v->shape[1] != m->cfg.channels || v->shape[2] != m->cfg.height ||
        v->shape[3] != m->cfg.width)
        return FXP_ERR(m->ctx, FXP_ESHAPE, "%s %s must be [B, %d, %d, %d]", what,
                       fxp_tensor_shape_str(v, s, sizeof s), m->cfg.channels, m->cfg.height,
                       m->cfg.width);
    return FXP_OK;
}

int fxp_image_model_context(fxp_image_model *m, fxp_tape *t, fxp_var *x, fxp_var **context)
{
    FXP_API_SCOPE();
    if (!m || !t || !x || !context) return FXP_ERR(m ? m->ctx : NULL, FXP_EINVAL, "NULL argument");
    if (!m->qflow)
        return FXP_ERR(m->ctx, FXP_EINVAL, "the model uses uniform dequantization (no context)");
    int rc;
    fxp_var *h, *w, *b, *w1;
    const int K = m->cfg.context_channels, w1s[4] = { K, 4 * K, 1, 1 };
    FXP_TRY(check_images(m, x, "x"));
    FXP_TRY(fxp_add_scalar(t, &h, x, -m->cfg.normalize_shift));
    FXP_TRY(fxp_scale(t, &h, h, 1.0f / m->cfg.normalize_scale));
    FXP_TRY(fxp__densenet_apply(&m->ctx_in, t, h, &h));
    /* a 2x2 stride-2 convolution is a 1x1 convolution of the squeezed input:
     * squeeze channel c*4 + dy*2 + dx is w[o, c, dy, dx]'s row-major index */
    FXP_TRY(fxp_squeeze2d(t, &h, h));
    FXP_TRY(fxp_tape_param(t, &w, m->ctx_down.w));
    FXP_TRY(fxp_tape_param(t, &b, m->ctx_down.b));
    FXP_TRY(fxp_reshape(t, &w1, w, 4, w1s));
    FXP_TRY(fxp_conv2d(t, &h, h, w1, b, NULL));
    FXP_TRY(fxp__densenet_apply(&m->ctx_out, t, h, context));
out:
    return rc;
}

/* log p(v); rng (may be NULL) feeds the layers that draw in their forward
 * (the residual blocks' log-determinant estimators). */
static int log_density(fxp_image_model *m, fxp_tape *t, int training, fxp_rng *rng, fxp_var *v,
                       fxp_var **log_p)
{
    int rc = check_images(m, v, "v");
    if (rc < 0) return rc;
    fxp_flow_io io = { .training = training, .rng = rng, .temperature = 1 };
    return fxp_model_log_prob(m->pv, t, &io, v, log_p);
}

int fxp_image_model_log_density(fxp_image_model *m, fxp_tape *t, int training, fxp_var *v,
                                fxp_var **log_p)
{
    FXP_API_SCOPE();
    if (!m || !t || !v || !log_p) return FXP_ERR(m ? m->ctx : NULL, FXP_EINVAL, "NULL argument");
    return log_density(m, t, training, NULL, v, log_p);
}

/* The ELBO with given noise (imageflow.h). */
static int elbo_noise(fxp_image_model *m, fxp_tape *t, int training, fxp_rng *rng, fxp_var *x,
                      fxp_var *noise, fxp_var **elbo, fxp_var **log_q_out)
{
    int rc;
    fxp_var *u, *lq = NULL, *v, *lp;
    if (!m->qflow) {
        u = noise;
    } else {
        fxp_var *cx, *mu, *ls, *sg, *z, *lpz, *a, *lda, *sp, *sn, *lsig;
        fxp_flow_io io = { .training = training };
        FXP_TRY(fxp_image_model_context(m, t, x, &cx));
        io.context = cx;
        /* z = mu + sigma eps under the base N(mu, sigma^2) */
        FXP_TRY(fxp_tape_param(t, &mu, m->q_mean));
        FXP_TRY(fxp_tape_param(t, &ls, m->q_ls));
        FXP_TRY(fxp_exp(t, &sg, ls));
        FXP_TRY(fxp_mul(t, &z, noise, sg));
        FXP_TRY(fxp_add(t, &z, z, mu));
        FXP_TRY(fxp_gaussian_logpdf(t, &lpz, z, mu, ls));
        /* a = g^-1(z): log q(a) = log N(z) - log|da/dz| */
        FXP_TRY(fxp_flow_inverse(m->qflow, t, &io, z, &a, &lda));
        /* u = sigmoid(a): log sigmoid'(a) = -softplus(-a) - softplus(a) */
        FXP_TRY(fxp_sigmoid(t, &u, a));
        FXP_TRY(fxp_softplus(t, &sp, a));
        FXP_TRY(fxp_scale(t, &sn, a, -1.0f));
        FXP_TRY(fxp_softplus(t, &sn, sn));
        FXP_TRY(fxp_add(t, &lsig, sp, sn));
        FXP_TRY(fxp_sum(t, &lsig, lsig, FXP_AXES_FROM(1), 0));
        /* log q(u) = log N(z) - log|da/dz| + sum (softplus(a) + softplus(-a)) */
        FXP_TRY(fxp_sub(t, &lq, lpz, lda));
        FXP_TRY(fxp_add(t, &lq, lq, lsig));
    }
    FXP_TRY(fxp_add(t, &v, x, u));
    FXP_TRY(log_density(m, t, training, rng, v, &lp));
    if (lq) FXP_TRY(fxp_sub(t, elbo, lp, lq));
    else *elbo = lp;
    if (log_q_out) {
        if (lq) *log_q_out = lq;
        else FXP_TRY(fxp__zeros(t, log_q_out, 1, x->value.shape));
    }
out:
    return rc;
}

/* The noise variable of B rows (shape per dequantiser) without values. */
static int noise_var(fxp_image_model *m, fxp_tape *t, int B, fxp_var **noise)
{
    int shape[4] = { B, m->cfg.channels, m->cfg.height, m->cfg.width };
    if (m->qflow) memcpy(shape + 1, m->q_shape, sizeof m->q_shape);
    return fxp_tape_var(t, noise, 4, shape);
}

int fxp_image_model_elbo_noise(fxp_image_model *m, fxp_tape *t, int training, fxp_rng *rng,
                               fxp_var *x, fxp_var *noise, fxp_var **elbo, fxp_var **log_q)
{
    FXP_API_SCOPE();
    if (!m || !t || !x || !noise || !elbo)
        return FXP_ERR(m ? m->ctx : NULL, FXP_EINVAL, "NULL argument");
    int rc = check_images(m, x, "x");
    if (rc < 0) return rc;
    int shape[4] = { x->value.shape[0], m->cfg.channels, m->cfg.height, m->cfg.width };
    if (m->qflow) memcpy(shape + 1, m->q_shape, sizeof m->q_shape);
    const fxp_tensor want = { NULL, 4, { shape[0], shape[1], shape[2], shape[3], 1 }, 0 };
    if (!fxp_tensor_same_shape(&noise->value, &want)) {
        char s1[64], s2[64];
        return FXP_ERR(m->ctx, FXP_ESHAPE, "noise %s must be %s",
                       fxp_tensor_shape_str(&noise->value, s1, sizeof s1),
                       fxp_tensor_shape_str(&want, s2, sizeof s2));
    }
    return elbo_noise(m, t, training, rng, x, noise, elbo, log_q);
}

int fxp_image_model_elbo(fxp_image_model *m, fxp_tape *t, int training, fxp_var *x, fxp_rng *rng,
                         fxp_var **elbo, fxp_var **log_q)
{
    FXP_API_SCOPE();
    if (!m || !t || !x || !rng || !elbo)
        return FXP_ERR(m ? m->ctx : NULL, FXP_EINVAL, "NULL argument");
    int rc;
    fxp_var *noise;
    FXP_TRY(check_images(m, x, "x"));
    FXP_TRY(noise_var(m, t, x->value.shape[0], &noise));
    const size_t n = (size_t)fxp_tensor_numel(&noise->value);
    if (m->qflow)
        fxp_rng_normal_threads(rng, noise->value.data, n, 0, 1, fxp_ctx_threads(m->ctx));
    else
        fxp_rng_uniform(rng, noise->value.data, n);
    FXP_TRY(elbo_noise(m, t, training, rng, x, noise, elbo, log_q));
out:
    return rc;
}

/* ---- sampling ----------------------------------------------------------------------- */

int fxp_image_model_sample(fxp_image_model *m, fxp_tape *t, int n, float temperature,
                           fxp_rng *rng, fxp_var **v)
{
    FXP_API_SCOPE();
    if (!m || !t || !rng || !v) return FXP_ERR(m ? m->ctx : NULL, FXP_EINVAL, "NULL argument");
    fxp_flow_io io = { .training = 0, .rng = rng, .temperature = temperature };
    return fxp_model_sample(m->pv, t, &io, n, m->latent, temperature, rng, v);
}

int fxp_image_model_decode(fxp_image_model *m, fxp_tape *t, fxp_var *eps, fxp_latents *latents,
                           fxp_var **v)
{
    FXP_API_SCOPE();
    if (!m || !t || !eps || !v) return FXP_ERR(m ? m->ctx : NULL, FXP_EINVAL, "NULL argument");
    fxp_rng zero;
    fxp_rng_seed(&zero, 0);
    fxp_flow_io io = { .training = 0, .latents = latents, .rng = &zero, .temperature = 0 };
    return fxp_model_decode(m->pv, t, &io, eps, v);
}

/* ---- evaluation --------------------------------------------------------------------- */

/* Philox blocks per noise row: rows of (image i, sample k) use the counter
 * range starting at i 2^32 + k blocks_per_row of the stream `seed`. */
static uint64_t row_counter(int64_t image, int sample, uint64_t blocks_per_row)
{
    return ((uint64_t)image << 32) + (uint64_t)sample * blocks_per_row;
}

void fxp_image_eval_finish(fxp_image_eval *e)
{
    if (!e) return;
    const double n = (double)e->n_images;
    const double *s = e->sums;
    e->bpd_elbo = n > 0 ? s[0] / n : NAN;
    e->bpd_iw = n > 0 ? s[2] / n : NAN;
    e->bpd_elbo_stderr = n > 1 ? sqrt(fmax(0, (s[1] - s[0] * s[0] / n) / (n - 1)) / n) : 0;
    e->bpd_iw_stderr = n > 1 ? sqrt(fmax(0, (s[3] - s[2] * s[2] / n) / (n - 1)) / n) : 0;
}

int fxp_image_model_evaluate(fxp_image_model *m, const uint8_t *pixels, int n, int64_t first_index,
                             int iw_samples, int batch, uint64_t seed,
                             fxp_eval_progress_fn progress, void *user, fxp_image_eval *res)
{
    FXP_API_SCOPE();
    if (!m || !pixels || !res) return FXP_ERR(m ? m->ctx : NULL, FXP_EINVAL, "NULL argument");
    fxp_ctx *ctx = m->ctx;
    if (n < 1 || iw_samples < 1 || batch < 1 || first_index < 0 || first_index > (1ll << 31))
        return FXP_ERR(ctx, FXP_EINVAL,
                       "n = %d images, iw_samples = %d, batch = %d (each >= 1), first_index = "
                       "%lld (0 .. 2^31)",
                       n, iw_samples, batch, (long long)first_index);
    if (iw_samples > (1 << 20))
        return FXP_ERR(ctx, FXP_EINVAL, "iw_samples = %d exceeds 2^20", iw_samples);
    if (iw_samples > 1 && !fxp_image_model_logdet_is_exact(m))
        return FXP_ERR(ctx, FXP_EUNSUPPORTED,
                       "the residual flow's log-densities are stochastic estimates: no "
                       "importance-weighted bound (iw_samples = %d; it needs exact determinants)",
                       iw_samples);
    const int C = m->cfg.channels, H = m->cfg.height, W = m->cfg.width;
    const int64_t D = (int64_t)C * H * W, total = (int64_t)n * iw_samples;
    const int rows = (int)(total < batch ? total : batch);
    int64_t nd = D;
    if (m->qflow) nd = (int64_t)m->q_shape[0] * m->q_shape[1] * m->q_shape[2];
    const uint64_t blocks = (uint64_t)(nd + 3) / 4;
    if (blocks * (uint64_t)iw_samples >= (1ull << 32))
        return FXP_ERR(ctx, FXP_EINVAL, "iw_samples = %d is too many for images of %lld values",
                       iw_samples, (long long)D);
    double *mx = malloc((size_t)n * sizeof *mx), *se = malloc((size_t)n * sizeof *se),
           *sum = malloc((size_t)n * sizeof *sum);
    fxp_tape *t = NULL;
    int rc = FXP_OK;
    if (!mx || !se || !sum) {
        rc = FXP_ERR(ctx, FXP_ENOMEM, "cannot allocate the evaluation of %d images", n);
        goto out;
    }
    for (int i = 0; i < n; i++) {
        mx[i] = -INFINITY;
        se[i] = 0;
        sum[i] = 0;
    }
    FXP_TRY(fxp_tape_new(ctx, &t));
    fxp_tape_set_grad_enabled(t, 0);
    const double scale = 1.0 / ((double)D * FXP_LN2);
    for (int64_t start = 0; start < total; start += rows) {
        const int r = (int)(total - start < rows ? total - start : rows);
        const int shape[4] = { r, C, H, W };
        fxp_var *x, *noise, *elbo;
        fxp_tape_reset(t);
        FXP_TRY(fxp_tape_var(t, &x, 4, shape));
        FXP_TRY(noise_var(m, t, r, &noise));
        for (int j = 0; j < r; j++) {
            const int64_t row = start + j, img = row / iw_samples;
            const int k = (int)(row % iw_samples);
            const uint8_t *src = pixels + img * D;
            float *dst = x->value.data + (int64_t)j * D;
            for (int64_t e = 0; e < D; e++) dst[e] = src[e];
            fxp_rng s;
            fxp_rng_seed(&s, seed);
            s.counter = row_counter(first_index + img, k, blocks);
            float *nz = noise->value.data + (int64_t)j * nd;
            if (m->qflow) fxp_rng_normal(&s, nz, (size_t)nd, 0, 1);
            else fxp_rng_uniform(&s, nz, (size_t)nd);
        }
        /* the residual blocks' estimators: a stream per forward, a function of
         * (seed, first row), disjoint from the noise's counters */
        fxp_rng est;
        fxp_rng_seed(&est, seed ^ 0x5851F42D4C957F2Dull);
        est.counter = (uint64_t)(first_index * iw_samples + start) << 24;
        FXP_TRY(elbo_noise(m, t, 0, &est, x, noise, &elbo, NULL));
        for (int j = 0; j < r; j++) {
            const int64_t img = (start + j) / iw_samples;
            const double e = elbo->value.data[j];
            if (!isfinite(e)) {
                rc = FXP_ERR(ctx, FXP_ENUMERIC, "the ELBO of image %lld is not finite",
                             (long long)img);
                goto out;
            }
            sum[img] += e;
            if (e > mx[img]) { /* streaming logsumexp */
                se[img] = se[img] * exp(mx[img] - e) + 1.0;
                mx[img] = e;
            } else {
                se[img] += exp(e - mx[img]);
            }
        }
        if (progress) progress(user, (start + r) / iw_samples, n);
    }
    /* per-image bits/dim, then means and standard errors over images */
    double s1 = 0, s2 = 0, q1 = 0, q2 = 0;
    for (int i = 0; i < n; i++) {
        const double be = -sum[i] / iw_samples * scale;
        const double bi = -(mx[i] + log(se[i]) - log((double)iw_samples)) * scale;
        s1 += be;
        s2 += be * be;
        q1 += bi;
        q2 += bi * bi;
    }
    res->n_images = n;
    res->iw_samples = iw_samples;
    res->sums[0] = s1;
    res->sums[1] = s2;
    res->sums[2] = q1;
    res->sums[3] = q2;
    fxp_image_eval_finish(res);
out:
    fxp_tape_free(t);
    free(mx);
    free(se);
    free(sum);
    return rc;
}
