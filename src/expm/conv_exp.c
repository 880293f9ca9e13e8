/* The convolution exponential: the conv operator for the series, the tape
 * op, its trace, and the raw-buffer API.  With a fixed number of terms and
 * zero padding (what the flows use) the series runs fused per image
 * (ops/conv_series.h: all terms of an image while it is in cache, the kernel
 * packed once per call); otherwise (adaptive truncation, circular padding,
 * FXP_CONV_IM2COL) every convolution of the generic series goes through the
 * three operator callbacks below, which call the kernels of ops/conv2d.h. */
#include <math.h>
#include <string.h>

#include "expm/expm_internal.h"
#include "ops/conv2d.h"
#include "ops/conv_series.h"

/* M = conv(.; K) on the whole batch [N, C, H, W]. */
typedef struct conv_op {
    fxp__conv_shape s;
    const float *k;
    fxp_var *kvar; /* gradient target, or NULL */
} conv_op;

static int conv_apply(void *self, fxp_ctx *ctx, const float *x, float *y)
{
    const conv_op *c = self;
    return fxp__conv2d_forward(ctx, &c->s, y, x, c->k, NULL, 1, 0);
}

/* The fused series step on the direct kernels; otherwise the product and
 * the series' own pass. */
static int conv_apply_term(void *self, fxp_ctx *ctx, const float *x, float *t, float s, float *y,
                           double *sumsq)
{
    const conv_op *c = self;
    if (fxp__conv_direct_pick(ctx, &c->s, 0))
        return fxp__conv_direct_term(ctx, &c->s, t, x, c->k, s, y, sumsq);
    const int rc = fxp__conv2d_forward(ctx, &c->s, t, x, c->k, NULL, 1, 0);
    if (rc < 0) return rc;
    const fxp__conv_shape *sh = &c->s;
    *sumsq = fxp__expm_add_term(ctx, (int64_t)sh->n * sh->c_in * sh->h * sh->w, s, t, t, y);
    return FXP_OK;
}

static int conv_apply_t(void *self, fxp_ctx *ctx, const float *x, float *y)
{
    const conv_op *c = self;
    return fxp__conv2d_backward_data(ctx, &c->s, y, x, c->k, 1, 0);
}

/* Tr M = N H W sum_c K[c, c, centre]: every diagonal entry of the matrix is
 * the kernel centre (zero padding: the centre tap never leaves the image;
 * circular padding with kh <= H, kw <= W: no other tap wraps onto the
 * output pixel itself). */
static double conv_trace(void *self)
{
    const conv_op *c = self;
    const fxp__conv_shape *s = &c->s;
    const int ca = (s->kh - 1) / 2, cb = (s->kw - 1) / 2;
    double acc = 0;
    for (int i = 0; i < s->c_in; i++)
        acc += c->k[((int64_t)(i * s->c_in + i) * s->kh + ca) * s->kw + cb];
    return (double)s->n * s->h * s->w * acc;
}

/* dK += scale * d<g, conv(u; K)>/dK (the weight gradient of a convolution). */
static int conv_param_grad(void *self, fxp_ctx *ctx, const float *u, const float *g, float scale)
{
    const conv_op *c = self;
    if (!c->kvar || !c->kvar->grad) return FXP_OK;
    return fxp__conv2d_backward_weight(ctx, &c->s, c->kvar->grad, g, u, scale);
}

static int conv_shape(fxp_ctx *ctx, const char *func, const fxp_tensor *x, const fxp_tensor *k,
                      fxp_padding padding, fxp__conv_shape *s)
{
    char s1[64], s2[64];
    if (x->ndim != 4 || k->ndim != 4 || k->shape[0] != x->shape[1] || k->shape[1] != x->shape[1])
        return fxp__err(ctx, FXP_ESHAPE, func,
                        "input %s and kernel %s do not fit (expected [N,C,H,W] and [C,C,kh,kw])",
                        fxp_tensor_shape_str(x, s1, sizeof s1),
                        fxp_tensor_shape_str(k, s2, sizeof s2));
    *s = (fxp__conv_shape){ x->shape[0], x->shape[1], x->shape[2], x->shape[3], x->shape[1],
                            k->shape[2], k->shape[3], padding };
    return fxp__conv_check(ctx, func, s);
}

/* ---- the fused series (ops/conv_series.h): fixed terms, zero padding ---------- */

typedef struct fused_saved {
    fxp__conv_shape s;
    float sign;
    int terms;
    float **t; /* t[1..terms-1] on the tape, or NULL: recomputed by the backward */
} fused_saved;

/* dL/dx and dL/dK through the adjoint recursion of conv_series.h.  The saved
 * terms are only read, so the tape may be back-propagated more than once. */
static int fused_backward(fxp_tape *t, const fxp_node *node)
{
    const fused_saved *sv = node->saved;
    fxp_var *x = node->in[0], *k = node->in[1];
    return fxp__conv_series_backward(fxp_tape_ctx(t), &sv->s, k->value.data, sv->sign, sv->terms,
                                     x->value.data, (const float *const *)sv->t, node->out->grad,
                                     x->grad, k->grad);
}

static int expm_conv_fused(fxp_tape *t, fxp_var **out, fxp_var *x, fxp_var *kernel,
                           const fxp__conv_shape *s, int inverse, const fxp_expm_opts *o,
                           fxp_expm_info *info)
{
    fxp_ctx *ctx = fxp_tape_ctx(t);
    fxp_var *in[2] = { x, kernel }, *y;
    const int need = fxp_tape_needs_grad(t, 2, in), T = o->terms;
    const size_t bytes = (size_t)fxp_tensor_numel(&x->value) * sizeof(float);
    int rc = fxp_tape_var(t, &y, x->value.ndim, x->value.shape);
    if (rc < 0) return rc;
    float **terms = NULL; /* NULL: the backward recomputes them */
    if (need && T > 1 && !fxp_tape_save_memory(t)) {
        if (!(terms = fxp_tape_alloc(t, (size_t)T * sizeof *terms))) return FXP_ENOMEM;
        terms[0] = x->value.data; /* read only */
        for (int i = 1; i < T; i++)
            if (!(terms[i] = fxp_tape_alloc(t, bytes))) return FXP_ENOMEM;
    }
    double ss;
    const float sign = inverse ? -1.0f : 1.0f;
    if ((rc = fxp__conv_series_forward(ctx, s, kernel->value.data, sign, T, x->value.data,
                                       y->value.data, terms, &ss)) < 0)
        return rc;
    if (info) { /* the remainder bound of expm.h, from the caller's norm bound */
        const double ni = sqrt(ss), r = o->norm_bound / (T + 1);
        info->terms = T;
        info->last_norm = ni;
        info->error_bound = o->norm_bound > 0 && r < 1 ? ni * r / (1 - r) : -1;
    }
    if (need) {
        fused_saved *sv = fxp_tape_alloc(t, sizeof *sv);
        if (!sv) return FXP_ENOMEM;
        *sv = (fused_saved){ *s, sign, T, terms };
        if ((rc = fxp_tape_record(t, "fxp_expm_conv", fused_backward, y, 2, in, sv)) < 0)
            return rc;
    }
    *out = y;
    return FXP_OK;
}

int fxp_expm_conv(fxp_tape *t, fxp_var **out, fxp_var *x, fxp_var *kernel, fxp_padding padding,
                  int inverse, const fxp_expm_opts *opts, fxp_expm_info *info)
{
    FXP_API_SCOPE();
    if (!t) return FXP_ERR(NULL, FXP_EINVAL, "tape is NULL");
    fxp_ctx *ctx = fxp_tape_ctx(t);
    if (!out || !x || !kernel) return FXP_ERR(ctx, FXP_EINVAL, "NULL argument");
    fxp__conv_shape s;
    int rc = conv_shape(ctx, __func__, &x->value, &kernel->value, padding, &s);
    if (rc < 0) return rc;
    const fxp_expm_opts *o = fxp__expm_opts_or_default(opts);
    if ((rc = fxp__expm_check_opts(ctx, __func__, o)) < 0) return rc;
    if (o->tol == 0 && fxp__conv_series_ok(ctx, &s))
        return expm_conv_fused(t, out, x, kernel, &s, inverse, o, info);
    conv_op *c = fxp_tape_alloc(t, sizeof *c);
    fxp_linop *op = fxp_tape_alloc(t, sizeof *op);
    if (!c || !op) return FXP_ENOMEM;
    c->s = s;
    c->k = kernel->value.data;
    c->kvar = kernel;
    *op = (fxp_linop){ .self = c, .size = fxp_tensor_numel(&x->value), .apply = conv_apply,
                       .apply_t = conv_apply_t, .param_grad = conv_param_grad,
                       .trace = conv_trace, .apply_term = conv_apply_term };
    return fxp_expm_linop(t, out, x, op, inverse, 1, &kernel, opts, info);
}

/* ---- trace ---------------------------------------------------------------------
 * Tr M = H W sum_c K[c, c, ca, cb]; dTr/dK[c, c, ca, cb] = H W. */
typedef struct trace_saved {
    int c, kh, kw;
    double hw;
} trace_saved;

static int conv_trace_backward(fxp_tape *t, const fxp_node *n)
{
    (void)t;
    const trace_saved *s = n->saved;
    fxp_var *k = n->in[0];
    if (!k->grad) return FXP_OK;
    const int ca = (s->kh - 1) / 2, cb = (s->kw - 1) / 2;
    const float g = (float)s->hw * n->out->grad[0];
    for (int c = 0; c < s->c; c++) k->grad[((int64_t)(c * s->c + c) * s->kh + ca) * s->kw + cb] += g;
    return FXP_OK;
}

int fxp_conv_trace(fxp_tape *t, fxp_var **out, fxp_var *kernel, int h, int w)
{
    FXP_API_SCOPE();
    if (!t) return FXP_ERR(NULL, FXP_EINVAL, "tape is NULL");
    fxp_ctx *ctx = fxp_tape_ctx(t);
    char s1[64];
    if (!out || !kernel) return FXP_ERR(ctx, FXP_EINVAL, "NULL argument");
    const fxp_tensor *k = &kernel->value;
    if (k->ndim != 4 || k->shape[0] != k->shape[1] || k->shape[2] % 2 == 0 ||
        k->shape[3] % 2 == 0 || h < 1 || w < 1)
        return FXP_ERR(ctx, FXP_ESHAPE, "kernel %s (odd [C,C,kh,kw]) on %dx%d images",
                       fxp_tensor_shape_str(k, s1, sizeof s1), h, w);
    trace_saved sv = { k->shape[0], k->shape[2], k->shape[3], (double)h * w };
    double acc = 0;
    const int ca = (sv.kh - 1) / 2, cb = (sv.kw - 1) / 2;
    for (int c = 0; c < sv.c; c++)
        acc += k->data[((int64_t)(c * sv.c + c) * sv.kh + ca) * sv.kw + cb];
    fxp_var *y;
    int rc = fxp_tape_var(t, &y, 0, NULL);
    if (rc < 0) return rc;
    y->value.data[0] = (float)(sv.hw * acc);
    if (fxp_tape_needs_grad(t, 1, &kernel)) {
        trace_saved *s = fxp_tape_alloc(t, sizeof *s);
        if (!s) return FXP_ENOMEM;
        *s = sv;
        if ((rc = fxp_tape_record(t, "fxp_conv_trace", conv_trace_backward, y, 1, &kernel, s)) < 0)
            return rc;
    }
    *out = y;
    return FXP_OK;
}

/* ---- raw-buffer API ---------------------------------------------------------------- */

/* The raw functions' sizes: each >= 1, every buffer (x, kernel, the im2col
 * workspace C kh kw x H W) within FXP_MAX_ELEMENTS, checked without
 * overflow before anything is read or allocated. */
static int raw_conv_sizes(fxp_ctx *ctx, const char *func, const fxp__conv_shape *s,
                          int64_t *size, int64_t *ksize)
{
    int rc = fxp__conv_check(ctx, func, s);
    if (rc < 0) return rc;
    const int xd[4] = { s->n, s->c_in, s->h, s->w }, kd[4] = { s->c_in, s->c_in, s->kh, s->kw };
    const int wd[4] = { s->c_in, s->kh, s->kw, s->h };
    *size = fxp__numel(4, xd);
    *ksize = fxp__numel(4, kd);
    const int64_t work = fxp__mul_limit(fxp__numel(4, wd), s->w);
    if (*size < 0 || *ksize < 0 || work < 0)
        return fxp__err(ctx, FXP_EINVAL, func, "sizes n=%d c=%d h=%d w=%d kernel %dx%d: the input "
                       "(n c h w), the kernel (c c kh kw) or the workspace (c kh kw h w) "
                       "exceeds 2^40 elements", s->n, s->c_in, s->h, s->w, s->kh, s->kw);
    return FXP_OK;
}

int fxp_conv_exp_ctx(fxp_ctx *ctx, const float *x, float *y, const float *kernel, int n, int c,
                     int h, int w, int kh, int kw, int terms, int inverse)
{
    FXP_API_SCOPE();
    if (!ctx) return FXP_ERR(NULL, FXP_EINVAL, "ctx is NULL");
    if (!x || !y || !kernel) return FXP_ERR(ctx, FXP_EINVAL, "x, y or kernel is NULL");
    if (terms < 1 || terms > 1000)
        return FXP_ERR(ctx, FXP_EINVAL, "terms = %d outside [1, 1000]", terms);
    fxp__conv_shape s = { n, c, h, w, c, kh, kw, FXP_PAD_ZERO };
    int64_t size, ksize;
    int rc = raw_conv_sizes(ctx, __func__, &s, &size, &ksize);
    if (rc < 0) return rc;
    /* The series runs into scratch and is copied to y only on success; the
     * scratch is taken first, so sizes beyond memory fail before x is read.
     * Fused per image when the kernels allow (ops/conv_series.h), else one
     * batched convolution per term. */
    fxp__arena_mark mark = fxp__scratch_save(ctx);
    float *tmp = fxp__scratch_alloc(ctx, (size_t)size * sizeof(float));
    if (!tmp) return FXP_ENOMEM;
    if ((rc = fxp__check_finite_buf(ctx, __func__, "kernel", kernel, ksize)) >= 0 &&
        (rc = fxp__check_finite_buf(ctx, __func__, "x", x, size)) >= 0) {
        if (fxp__conv_series_ok(ctx, &s)) {
            double last_ss = 0;
            rc = fxp__conv_series_forward(ctx, &s, kernel, inverse ? -1.0f : 1.0f, terms, x, tmp,
                                          NULL, &last_ss);
            if (rc >= 0)
                rc = fxp__expm_raw_converged(ctx, __func__, terms, sqrt(last_ss),
                                             sqrt(fxp__sumsq(ctx, x, size)));
        } else {
            conv_op cop = { s, kernel, NULL };
            fxp_linop op = { .self = &cop, .size = size, .apply = conv_apply,
                             .apply_t = conv_apply_t, .apply_term = conv_apply_term };
            rc = fxp__expm_raw(ctx, &op, x, tmp, inverse, terms);
        }
    }
    if (rc >= 0) memcpy(y, tmp, (size_t)size * sizeof(float));
    fxp__scratch_restore(ctx, mark);
    return rc;
}

int fxp_conv_exp(const float *x, float *y, const float *kernel, int n, int c, int h, int w,
                 int kh, int kw, int terms, int inverse)
{
    FXP_API_SCOPE();
    fxp_ctx *ctx;
    int rc = fxp_ctx_new(&ctx);
    if (rc < 0) return rc;
    rc = fxp_conv_exp_ctx(ctx, x, y, kernel, n, c, h, w, kh, kw, terms, inverse);
    fxp_ctx_free(ctx);
    return rc;
}

double fxp_conv_exp_logdet(const float *kernel, int c, int h, int w, int kh, int kw)
{
    FXP_API_SCOPE();
    if (!kernel || c < 1 || h < 1 || w < 1 || kh < 1 || kw < 1 || kh % 2 == 0 || kw % 2 == 0) {
        FXP_ERR(NULL, FXP_EINVAL, "bad arguments (kernel %p, c=%d h=%d w=%d, kernel %dx%d odd)",
                (const void *)kernel, c, h, w, kh, kw);
        return NAN;
    }
    const int kd[4] = { c, c, kh, kw };
    const int64_t ksize = fxp__numel(4, kd);
    if (ksize < 0) {
        FXP_ERR(NULL, FXP_EINVAL, "kernel c c kh kw = %d %d %d %d exceeds 2^40 elements", c, c,
                kh, kw);
        return NAN;
    }
    if (fxp__check_finite_buf(NULL, __func__, "kernel", kernel, ksize) < 0) return NAN;
    double acc = 0;
    const int ca = (kh - 1) / 2, cb = (kw - 1) / 2;
    for (int i = 0; i < c; i++) acc += kernel[((int64_t)(i * c + i) * kh + ca) * kw + cb];
    return (double)h * w * acc;
}
