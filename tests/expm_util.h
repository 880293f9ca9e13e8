/* Helpers of the exponential tests: explicit matrices of the operators,
 * tape-op wrappers, random graphs, and a user-defined operator for the
 * generic interface. */
#ifndef FXP_TEST_EXPM_UTIL_H
#define FXP_TEST_EXPM_UTIL_H

#include "testutil.h"

#include "expm_ref.h"
#include "ops/conv2d.h"

/* y = exp(+-M) x for a conv, through the tape op with gradients off. */
static inline void conv_exp_tape(fxp_ctx *ctx, float *x, const int xs[4], float *k, int kh, int kw,
                          fxp_padding pad, int inverse, const fxp_expm_opts *o, float *y,
                          fxp_expm_info *info)
{
    fxp_tape *t;
    ck_assert_ok(fxp_tape_new(ctx, &t));
    fxp_tape_set_grad_enabled(t, 0);
    int ks[4] = { xs[1], xs[1], kh, kw };
    fxp_tensor tx = fxp_tensor_wrap(x, 4, xs), tk = fxp_tensor_wrap(k, 4, ks);
    fxp_var *vx, *vk, *vy;
    ck_assert_ok(fxp_tape_input(t, &vx, &tx, 0));
    ck_assert_ok(fxp_tape_input(t, &vk, &tk, 0));
    ck_assert_ok(fxp_expm_conv(t, &vy, vx, vk, pad, inverse, o, info));
    memcpy(y, vy->value.data, (size_t)fxp_tensor_numel(&tx) * sizeof(float));
    fxp_tape_free(t);
}

/* The conv's matrix M (n = C H W) by applying it to unit vectors. */
static inline void conv_matrix(fxp_ctx *ctx, const float *k, int c, int h, int w, int kh, int kw,
                        fxp_padding pad, double *m)
{
    const int n = c * h * w;
    fxp__conv_shape s = { 1, c, h, w, c, kh, kw, pad };
    float *e = calloc((size_t)n, 4), *y = malloc((size_t)n * 4);
    for (int j = 0; j < n; j++) {
        e[j] = 1;
        ck_assert_ok(fxp__conv2d_forward(ctx, &s, y, e, k, NULL, 1, 0));
        for (int i = 0; i < n; i++) m[i * n + j] = y[i];
        e[j] = 0;
    }
    free(e);
    free(y);
}

static inline double max_abs_diff_d(const float *a, const double *b, int n)
{
    double d = 0;
    for (int i = 0; i < n; i++) d = fmax(d, fabs(a[i] - b[i]));
    return d;
}

/* M of the graph operator from its definition (paper eq. 7), as a
 * reference independent of the library: with Ahat = D^-1/2 A D^-1/2,
 * (M X)[i, g] = sum_f X[i, f] t0[f, g] + sum_j Ahat[i, j] sum_f X[j, f] t1[f, g],
 * so M[(i, g), (j, f)] = [i == j] t0[f, g] + Ahat[i, j] t1[f, g]. */
static inline void graph_matrix(const float *adj, const float *t0, const float *t1, int N, int F, double *m)
{
    const int n = N * F;
    double *dinv = malloc((size_t)N * sizeof *dinv);
    for (int i = 0; i < N; i++) {
        double d = 0;
        for (int j = 0; j < N; j++) d += adj[i * N + j];
        dinv[i] = 1 / sqrt(d);
    }
    for (int i = 0; i < N; i++)
        for (int g = 0; g < F; g++)
            for (int j = 0; j < N; j++)
                for (int f = 0; f < F; f++)
                    m[(i * F + g) * n + j * F + f] = (i == j ? t0[f * F + g] : 0.0) +
                                                     dinv[i] * adj[i * N + j] * dinv[j] * t1[f * F + g];
    free(dinv);
}

static inline void random_graph(float *adj, int N, uint64_t seed)
{
    float r[256];
    test_randn(r, (size_t)N * N, seed, 1);
    for (int i = 0; i < N; i++)
        for (int j = 0; j <= i; j++) {
            float v = i == j ? 0.0f : (fabsf(r[i * N + j]) > 0.3f ? 1.0f + fabsf(r[i * N + j]) : 0.0f);
            if (i != j && j == i - 1) v = 1.0f; /* a path keeps every node connected */
            adj[i * N + j] = adj[j * N + i] = v;
        }
}

/* y = exp(+-M) x for the graph tape op with an explicit A_hat ([N,N] or [B,N,N]). */
static inline void graph_exp_tape(fxp_ctx *ctx, float *x, int B, int N, int F, float *ahat, int per_graph,
                           float *t0, float *t1, int terms, int inverse, float *y)
{
    fxp_tape *t;
    ck_assert_ok(fxp_tape_new(ctx, &t));
    fxp_tape_set_grad_enabled(t, 0);
    int xs[3] = { B, N, F }, ts[2] = { F, F }, as[3] = { B, N, N };
    fxp_tensor tx = fxp_tensor_wrap(x, 3, xs), t0t = fxp_tensor_wrap(t0, 2, ts),
               t1t = fxp_tensor_wrap(t1, 2, ts),
               ta = fxp_tensor_wrap(ahat, per_graph ? 3 : 2, per_graph ? as : as + 1);
    fxp_var *vx, *v0, *v1, *vy;
    ck_assert_ok(fxp_tape_input(t, &vx, &tx, 0));
    ck_assert_ok(fxp_tape_input(t, &v0, &t0t, 0));
    ck_assert_ok(fxp_tape_input(t, &v1, &t1t, 0));
    fxp_expm_opts o = fxp_expm_fixed(terms);
    ck_assert_ok(fxp_expm_graph(t, &vy, vx, &ta, v0, v1, inverse, &o, NULL));
    memcpy(y, vy->value.data, sizeof(float) * B * N * F);
    fxp_tape_free(t);
}

/* A user-defined operator on R^n: (M x)_i = c_i x_i + d_i x_{(i+1) mod n},
 * parameters c, d [n]; Tr M = sum c; ||M|| <= max|c| + max|d|. */
typedef struct shift_op {
    int n;
    fxp_var *c, *d;
} shift_op;

static inline int shift_apply(void *self, fxp_ctx *ctx, const float *x, float *y)
{
    (void)ctx;
    const shift_op *s = self;
    for (int i = 0; i < s->n; i++)
        y[i] = s->c->value.data[i] * x[i] + s->d->value.data[i] * x[(i + 1) % s->n];
    return FXP_OK;
}

static inline int shift_apply_t(void *self, fxp_ctx *ctx, const float *x, float *y)
{
    (void)ctx;
    const shift_op *s = self;
    for (int j = 0; j < s->n; j++) {
        const int p = (j + s->n - 1) % s->n;
        y[j] = s->c->value.data[j] * x[j] + s->d->value.data[p] * x[p];
    }
    return FXP_OK;
}

static inline int shift_param_grad(void *self, fxp_ctx *ctx, const float *u, const float *g, float scale)
{
    (void)ctx;
    const shift_op *s = self;
    for (int i = 0; i < s->n; i++) {
        if (s->c->grad) s->c->grad[i] += scale * g[i] * u[i];
        if (s->d->grad) s->d->grad[i] += scale * g[i] * u[(i + 1) % s->n];
    }
    return FXP_OK;
}

static inline double shift_trace(void *self)
{
    const shift_op *s = self;
    double t = 0;
    for (int i = 0; i < s->n; i++) t += s->c->value.data[i];
    return t;
}

static inline int shift_build(fxp_tape *t, fxp_var *c, fxp_var *d, fxp_linop **out)
{
    shift_op *s = fxp_tape_alloc(t, sizeof *s);
    fxp_linop *op = fxp_tape_alloc(t, sizeof *op);
    if (!s || !op) return FXP_ENOMEM;
    *s = (shift_op){ (int)fxp_tensor_numel(&c->value), c, d };
    double mc = 0, md = 0;
    for (int i = 0; i < s->n; i++) {
        mc = fmax(mc, fabs(c->value.data[i]));
        md = fmax(md, fabs(d->value.data[i]));
    }
    *op = (fxp_linop){ .self = s, .size = s->n, .apply = shift_apply, .apply_t = shift_apply_t,
                       .param_grad = shift_param_grad, .trace = shift_trace,
                       .norm_bound = mc + md };
    *out = op;
    return FXP_OK;
}

static inline int shift_fn(fxp_tape *t, fxp_var *const *in, fxp_var **out, void *user)
{
    fxp_linop *op;
    int rc = shift_build(t, in[1], in[2], &op);
    if (rc < 0) return rc;
    fxp_expm_opts o = fxp_expm_fixed(7);
    return fxp_expm_linop(t, out, in[0], op, (int)(intptr_t)user, 2, in + 1, &o, NULL);
}

#endif
