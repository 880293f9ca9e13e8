/* The flow layers built on the exponential (layers.h): the ConvExp layer
 * and the graph convolution exponential layer.  Inverse round trips,
 * log-determinants against the brute-force Jacobian, gradients w.r.t. the
 * input and every parameter (through spectral normalisation), layer state,
 * per-graph adjacencies and permutation equivariance (Theorem 1), options. */
#include "testutil.h"

#include "expm_util.h"

/* Brute-force Jacobian of an affine map x -> f(x) (exact by linearity), and
 * the layer's reported logdet; both for example 0 of a batch of 1. */
static void layer_checks(fxp_ctx *ctx, fxp_flow *f, const fxp_flow_io *io, int nd,
                         const int *shape, double tol_logdet)
{
    const int n = (int)(shape[1] * (nd > 2 ? shape[2] : 1) * (nd > 3 ? shape[3] : 1));
    fxp_tape *t;
    ck_assert_ok(fxp_tape_new(ctx, &t));
    fxp_tape_set_grad_enabled(t, 0);
    float *x = malloc(n * 4), *e = malloc(n * 4), *f0 = malloc(n * 4);
    double *jac = malloc(sizeof(double) * n * n);
    test_randn(x, (size_t)n, 90, 1);
    fxp_tensor tx = fxp_tensor_wrap(x, nd, shape);
    fxp_var *vx, *z, *ld, *xr, *ldr;
    ck_assert_ok(fxp_tape_input(t, &vx, &tx, 0));
    ck_assert_ok(fxp_flow_forward(f, t, io, vx, &z, &ld));
    memcpy(f0, z->value.data, n * 4);
    const double logdet = ld->value.data[0];
    ck_assert_ok(fxp_flow_inverse(f, t, io, z, &xr, &ldr));
    ck_assert_msg(test_rel_err(xr->value.data, x, n) < 1e-5, "round trip %g",
                  test_rel_err(xr->value.data, x, n));
    ck_assert_float_eq_tol(ldr->value.data[0], -logdet, 1e-4 * (1 + fabs(logdet)));
    for (int j = 0; j < n; j++) {
        memcpy(e, x, n * 4);
        e[j] += 1.0f;
        fxp_tensor te = fxp_tensor_wrap(e, nd, shape);
        fxp_var *ve, *ze, *le;
        fxp_tape_reset(t);
        ck_assert_ok(fxp_tape_input(t, &ve, &te, 0));
        ck_assert_ok(fxp_flow_forward(f, t, io, ve, &ze, &le));
        for (int i = 0; i < n; i++) jac[i * n + j] = (double)ze->value.data[i] - f0[i];
    }
    const double brute = ref_logabsdet(jac, n);
    ck_assert_msg(fabs(brute - logdet) < tol_logdet, "logdet %g, brute force %g", logdet, brute);
    free(x); free(e); free(f0); free(jac);
    fxp_tape_free(t);
}


/* Parameter gradients of L = sum_i r_i z_i + sum_b ld_b against central
 * differences over every trainable parameter of ps. */
static double layer_loss(fxp_ctx *ctx, fxp_flow *f, const fxp_flow_io *io, fxp_tensor *x,
                         fxp_params *ps, int backward)
{
    fxp_tape *t;
    ck_assert_ok(fxp_tape_new(ctx, &t));
    fxp_tape_set_grad_enabled(t, backward);
    fxp_var *vx, *z, *ld, *s, *l;
    ck_assert_ok(fxp_tape_input(t, &vx, x, 0));
    ck_assert_ok(fxp_flow_forward(f, t, io, vx, &z, &ld));
    const int64_t n = fxp_tensor_numel(&z->value);
    float *r = malloc((size_t)n * 4);
    test_randn(r, (size_t)n, 999, 1);
    int rs[1] = { (int)n };
    fxp_tensor tr = fxp_tensor_wrap(r, 1, rs);
    fxp_var *vr, *zf;
    ck_assert_ok(fxp_tape_input(t, &vr, &tr, 0));
    ck_assert_ok(fxp_reshape(t, &zf, z, 1, rs));
    ck_assert_ok(fxp_mul(t, &s, zf, vr));
    ck_assert_ok(fxp_sum(t, &s, s, FXP_AXES_ALL, 0));
    ck_assert_ok(fxp_sum(t, &l, ld, FXP_AXES_ALL, 0));
    ck_assert_ok(fxp_add(t, &l, l, s));
    double v = l->value.data[0];
    if (backward) {
        fxp_params_zero_grad(ps);
        ck_assert_ok(fxp_tape_backward(t, l, NULL));
    }
    free(r);
    fxp_tape_free(t);
    return v;
}

static void param_gradcheck(fxp_ctx *ctx, fxp_flow *f, const fxp_flow_io *io, fxp_tensor *x,
                            fxp_params *ps)
{
    layer_loss(ctx, f, io, x, ps, 1);
    const size_t n = fxp_params_size(ps, FXP_PARAM_TRAINABLE);
    float *g = malloc(n * 4);
    memcpy(g, fxp_params_grad_data(ps), n * 4);
    float *w = fxp_params_data(ps, FXP_PARAM_TRAINABLE);
    double worst = 0, scale = 1e-3;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(g[i]));
    for (size_t i = 0; i < n; i++) {
        const float w0 = w[i], h = 1e-2f * fmaxf(1.0f, fabsf(w0));
        w[i] = w0 + h;
        double lp = layer_loss(ctx, f, io, x, ps, 0);
        w[i] = w0 - h;
        double lm = layer_loss(ctx, f, io, x, ps, 0);
        w[i] = w0;
        double num = (lp - lm) / (2.0 * h);
        worst = fmax(worst, fabs(num - g[i]) / fmax(1e-2 * scale, fmax(fabs(num), fabs(g[i]))));
    }
    ck_assert_msg(worst < 2e-2, "parameter gradients: worst relative error %g", worst);
    free(g);
}

static fxp_flow *g_layer;
static fxp_flow_io g_io;

/* Output and logdet of the layer, for gradient checks w.r.t. parameters. */
static int layer_fn(fxp_tape *t, fxp_var *const *in, fxp_var **out, void *user)
{
    (void)user;
    fxp_var *z, *ld, *s;
    int rc = fxp_flow_forward(g_layer, t, &g_io, in[0], &z, &ld);
    if (rc < 0) return rc;
    if ((rc = fxp_sum(t, &s, z, FXP_AXES_FROM(1), 0)) < 0) return rc;
    return fxp_add(t, out, s, ld);
}

START_TEST(test_convexp_layer)
{
    fxp_ctx *ctx = test_ctx(1);
    for (int mixer = 0; mixer < 3; mixer++) {
        fxp_params *ps;
        fxp_flow *f;
        fxp_rng rng;
        fxp_rng_seed(&rng, 100 + mixer);
        ck_assert_ok(fxp_params_new(ctx, &ps));
        fxp_convexp_opts o;
        fxp_convexp_opts_default(&o, 2, 3, 4);
        o.mixer = (fxp_mixer_kind)mixer;
        o.reflections = 2;
        o.padding = mixer == 2 ? FXP_PAD_CIRCULAR : FXP_PAD_ZERO;
        ck_assert_ok(fxp_convexp_new(ctx, ps, "cx", &o, &rng, &f));
        /* non-trivial parameters: a larger kernel and biases */
        fxp_param *k = fxp_params_find(ps, "cx/kernel"), *pre = fxp_params_find(ps, "cx/pre_bias");
        test_randn(fxp_param_value(k).data, 36, 110, 0.5f);
        test_randn(fxp_param_value(pre).data, 24, 111, 0.5f);
        fxp_flow_io io = { .training = 1 }; /* one training forward moves u, v */
        const int shape[4] = { 1, 2, 3, 4 };
        {
            fxp_tape *t;
            float xs[24];
            test_randn(xs, 24, 112, 1);
            fxp_tensor tx = fxp_tensor_wrap(xs, 4, shape);
            fxp_var *vx, *z, *ld;
            ck_assert_ok(fxp_tape_new(ctx, &t));
            for (int it = 0; it < 30; it++) { /* converge the power iteration */
                fxp_tape_reset(t);
                ck_assert_ok(fxp_tape_input(t, &vx, &tx, 0));
                ck_assert_ok(fxp_flow_forward(f, t, &io, vx, &z, &ld));
            }
            fxp_tape_free(t);
        }
        io.training = 0;
        layer_checks(ctx, f, &io, 4, shape, 1e-3);
        /* gradients w.r.t. the input and (through the layer) its parameters */
        g_layer = f;
        g_io = io;
        float xs[48];
        const int shape2[4] = { 2, 2, 3, 4 };
        test_randn(xs, 48, 113, 1);
        fxp_tensor tx = fxp_tensor_wrap(xs, 4, shape2);
        fxp_tensor *in[1] = { &tx };
        ck_assert_gradcheck(ctx, layer_fn, NULL, 1, in, NULL, 0, 1e-2);
        param_gradcheck(ctx, f, &io, &tx, ps);
        fxp_flow_free(f);
        fxp_params_free(ps);
    }
    fxp_ctx_free(ctx);
}
END_TEST

/* Layer state and options of the ConvExp layer: u, v are FXP_PARAM_STATE
 * (saved by checkpoints, no gradient), advanced by training forwards and
 * inverses only; bad options are refused. */
START_TEST(test_convexp_layer_state)
{
    fxp_ctx *ctx = test_ctx(1);
    fxp_params *ps;
    fxp_flow *f;
    fxp_rng rng;
    fxp_rng_seed(&rng, 140);
    ck_assert_ok(fxp_params_new(ctx, &ps));
    fxp_convexp_opts o;
    fxp_convexp_opts_default(&o, 3, 4, 4);
    ck_assert_int_eq(o.mixer, FXP_MIXER_PLAIN);
    ck_assert_int_eq(o.terms_train, 6);
    ck_assert_int_eq(o.terms_eval, 13);
    ck_assert_float_eq(o.coeff, 0.9f);
    ck_assert_ok(fxp_convexp_new(ctx, ps, "cx", &o, &rng, &f));
    fxp_param *u = fxp_params_find(ps, "cx/u"), *v = fxp_params_find(ps, "cx/v");
    ck_assert_ptr_nonnull(u);
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(fxp_param_kind(u), FXP_PARAM_STATE);
    ck_assert_int_eq(fxp_param_kind(v), FXP_PARAM_STATE);
    ck_assert_int_eq(fxp_param_kind(fxp_params_find(ps, "cx/kernel")), FXP_PARAM_TRAINABLE);
    ck_assert_int_eq(fxp_param_value(u).shape[0], 48); /* C H W */
    float u0[48], x[96];
    memcpy(u0, fxp_param_value(u).data, sizeof u0);
    test_randn(x, 96, 141, 1);
    int xs[4] = { 2, 3, 4, 4 };
    fxp_tensor tx = fxp_tensor_wrap(x, 4, xs);
    fxp_tape *t;
    fxp_var *vx, *z, *ld, *xr;
    ck_assert_ok(fxp_tape_new(ctx, &t));
    ck_assert_ok(fxp_tape_input(t, &vx, &tx, 0));
    fxp_flow_io io = { .training = 0 };
    ck_assert_ok(fxp_flow_forward(f, t, &io, vx, &z, &ld));
    ck_assert_ok(fxp_flow_inverse(f, t, &io, z, &xr, &ld));
    ck_assert_mem_eq(u0, fxp_param_value(u).data, sizeof u0);
    io.training = 1;
    ck_assert_ok(fxp_flow_forward(f, t, &io, vx, &z, &ld));
    ck_assert(memcmp(u0, fxp_param_value(u).data, sizeof u0) != 0);
    memcpy(u0, fxp_param_value(u).data, sizeof u0);
    ck_assert_ok(fxp_flow_inverse(f, t, &io, z, &xr, &ld)); /* sampling in training mode */
    ck_assert(memcmp(u0, fxp_param_value(u).data, sizeof u0) != 0);
    /* x of the wrong shape */
    int bad_xs[4] = { 2, 3, 4, 5 };
    float xb[120] = { 0 };
    fxp_tensor tb = fxp_tensor_wrap(xb, 4, bad_xs);
    ck_assert_ok(fxp_tape_input(t, &vx, &tb, 0));
    ck_assert_fails(fxp_flow_forward(f, t, &io, vx, &z, &ld), FXP_ESHAPE, ctx);
    fxp_tape_free(t);
    fxp_flow_free(f);
    /* bad options */
    fxp_convexp_opts bad = o;
    bad.kernel = 2;
    ck_assert_fails(fxp_convexp_new(ctx, ps, "b1", &bad, &rng, &f), FXP_EINVAL, ctx);
    bad = o;
    bad.padding = FXP_PAD_CIRCULAR;
    bad.kernel = 5;
    ck_assert_fails(fxp_convexp_new(ctx, ps, "b2", &bad, &rng, &f), FXP_EINVAL, ctx);
    bad = o;
    bad.coeff = 0;
    ck_assert_fails(fxp_convexp_new(ctx, ps, "b3", &bad, &rng, &f), FXP_EINVAL, ctx);
    bad = o;
    bad.mixer = FXP_MIXER_HOUSEHOLDER;
    bad.reflections = 0;
    ck_assert_fails(fxp_convexp_new(ctx, ps, "b4", &bad, &rng, &f), FXP_EINVAL, ctx);
    bad = o;
    bad.terms_train = 0;
    ck_assert_fails(fxp_convexp_new(ctx, ps, "b5", &bad, &rng, &f), FXP_EINVAL, ctx);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}
END_TEST

/* fxp_flow_check on a correct layer, and on a layer whose logdet is wrong by a
 * constant (the check must see it). */
typedef struct bad_flow { fxp_flow base; fxp_flow *inner; } bad_flow;
static int bad_fwd(fxp_flow *f, fxp_tape *t, const fxp_flow_io *io, fxp_var *x, fxp_var **z,
                   fxp_var **ld)
{
    int rc = fxp_flow_forward(((bad_flow *)f)->inner, t, io, x, z, ld);
    return rc < 0 ? rc : fxp_add_scalar(t, ld, *ld, 0.25f);
}
static int bad_inv(fxp_flow *f, fxp_tape *t, const fxp_flow_io *io, fxp_var *z, fxp_var **x,
                   fxp_var **ld)
{
    int rc = fxp_flow_inverse(((bad_flow *)f)->inner, t, io, z, x, ld);
    return rc < 0 ? rc : fxp_add_scalar(t, ld, *ld, -0.25f);
}
static void bad_free(fxp_flow *f) { fxp_flow_free(((bad_flow *)f)->inner); free(f); }
static const fxp_flow_vtable bad_vt = { "bad", bad_fwd, bad_inv, bad_free };

START_TEST(test_flow_check)
{
    fxp_ctx *ctx = test_ctx(1);
    fxp_params *ps;
    fxp_rng rng;
    fxp_rng_seed(&rng, 5);
    ck_assert_ok(fxp_params_new(ctx, &ps));
    fxp_convexp_opts o;
    fxp_convexp_opts_default(&o, 3, 4, 5);
    fxp_flow *f;
    ck_assert_ok(fxp_convexp_new(ctx, ps, "cx", &o, &rng, &f));
    /* a kernel large enough that the trace term matters */
    fxp_tensor k = fxp_param_value(fxp_params_find(ps, "cx/kernel"));
    for (int64_t i = 0; i < fxp_tensor_numel(&k); i++) k.data[i] *= 4;
    const int shape[4] = { 2, 3, 4, 5 };
    float x[120];
    test_randn(x, 120, 11, 1);
    fxp_tensor tx = fxp_tensor_wrap(x, 4, shape);
    fxp_flow_check_result r;
    ck_assert_ok(fxp_flow_check(ctx, f, NULL, &tx, 0, &r));
    ck_assert_int_eq(r.dims, 60);
    ck_assert_msg(fabs(r.logdet) > 0.1, "logdet %g is too small to test", r.logdet);
    ck_assert_msg(r.logdet_err < 1e-3, "logdet %g brute %g", r.logdet, r.logdet_brute);
    ck_assert_msg(r.roundtrip_err < 1e-5 && r.logdet_sum_err < 1e-4, "round trip %g / %g",
                  r.roundtrip_err, r.logdet_sum_err);
    bad_flow *b = calloc(1, sizeof *b);
    b->base.vt = &bad_vt;
    b->base.ctx = ctx;
    strcpy(b->base.name, "bad");
    b->inner = f;
    ck_assert_ok(fxp_flow_check(ctx, &b->base, NULL, &tx, 0, &r));
    ck_assert_msg(fabs(r.logdet_err - 0.25) < 1e-3, "bad logdet not seen: err %g", r.logdet_err);
    ck_assert_msg(r.logdet_sum_err < 1e-4, "the bad layer's logdets still cancel");
    fxp_tensor big = tx;
    big.shape[3] = 5000;
    ck_assert_fails(fxp_flow_check(ctx, &b->base, NULL, &big, 0, &r), FXP_EINVAL, ctx);
    fxp_flow_free(&b->base);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}
END_TEST

START_TEST(test_graph_exp_layer)
{
    fxp_ctx *ctx = test_ctx(1);
    fxp_params *ps;
    fxp_flow *f;
    fxp_rng rng;
    fxp_rng_seed(&rng, 120);
    ck_assert_ok(fxp_params_new(ctx, &ps));
    fxp_graph_conv_exp_opts o;
    fxp_graph_conv_exp_opts_default(&o);
    o.features = 3;
    o.coeff0 = 2.0f;
    ck_assert_ok(fxp_graph_conv_exp_new(ctx, ps, "gce", &o, &rng, &f));
    test_randn(fxp_param_value(fxp_params_find(ps, "gce/theta0")).data, 9, 121, 0.5f);
    test_randn(fxp_param_value(fxp_params_find(ps, "gce/theta1")).data, 9, 122, 0.5f);
    float adj[16];
    random_graph(adj, 4, 123);
    int as[2] = { 4, 4 };
    fxp_tensor ta = fxp_tensor_wrap(adj, 2, as);
    fxp_flow_io io = { .training = 0, .adj = &ta };
    const int shape[3] = { 1, 4, 3 };
    layer_checks(ctx, f, &io, 3, shape, 1e-3);
    g_layer = f;
    g_io = io;
    float xs[24];
    const int shape2[3] = { 2, 4, 3 };
    test_randn(xs, 24, 124, 1);
    fxp_tensor tx = fxp_tensor_wrap(xs, 3, shape2);
    fxp_tensor *in[1] = { &tx };
    ck_assert_gradcheck(ctx, layer_fn, NULL, 1, in, NULL, 0, 1e-2);
    param_gradcheck(ctx, f, &io, &tx, ps);
    /* missing adjacency is an error */
    fxp_tape *t;
    fxp_var *vx, *z, *ld;
    ck_assert_ok(fxp_tape_new(ctx, &t));
    ck_assert_ok(fxp_tape_input(t, &vx, &tx, 0));
    fxp_flow_io none = { .training = 0 };
    ck_assert_fails(fxp_flow_forward(f, t, &none, vx, &z, &ld), FXP_EINVAL, ctx);
    const float isolated[16] = { 0, 1, 1, 0, 1, 0, 1, 0, 1, 1, 0, 0, 0, 0, 0, 0 };
    fxp_tensor tiso = fxp_tensor_wrap((float *)isolated, 2, as);
    fxp_flow_io iso = { .training = 0, .adj = &tiso };
    ck_assert_fails(fxp_flow_forward(f, t, &iso, vx, &z, &ld), FXP_EINVAL, ctx);
    ck_assert_ptr_nonnull(strstr(fxp_ctx_error(ctx), "node 3 has no neighbours"));
    fxp_tape_free(t);
    fxp_flow_free(f);
    fxp_params_free(ps);
    /* bad options */
    ck_assert_ok(fxp_params_new(ctx, &ps));
    fxp_graph_conv_exp_opts bad = o;
    bad.terms_eval = 0;
    ck_assert_fails(fxp_graph_conv_exp_new(ctx, ps, "b1", &bad, &rng, &f), FXP_EINVAL, ctx);
    bad = o;
    bad.coeff1 = 0;
    ck_assert_fails(fxp_graph_conv_exp_new(ctx, ps, "b2", &bad, &rng, &f), FXP_EINVAL, ctx);
    bad = o;
    bad.max_degree = -1;
    ck_assert_fails(fxp_graph_conv_exp_new(ctx, ps, "b3", &bad, &rng, &f), FXP_EINVAL, ctx);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}
END_TEST

/* Per-graph adjacencies in one batch, at the layer level: with a fixed
 * max_degree each graph's output and logdet are those of the graph alone;
 * permuting the nodes of a graph (P A P^T, P x) permutes its output and
 * leaves its logdet unchanged (Theorem 1). */
START_TEST(test_graph_exp_layer_batches)
{
    fxp_ctx *ctx = test_ctx(1);
    fxp_params *ps;
    fxp_flow *f;
    fxp_rng rng;
    fxp_rng_seed(&rng, 130);
    ck_assert_ok(fxp_params_new(ctx, &ps));
    fxp_graph_conv_exp_opts o;
    fxp_graph_conv_exp_opts_default(&o);
    o.features = 2;
    o.max_degree = 3;
    ck_assert_ok(fxp_graph_conv_exp_new(ctx, ps, "gce", &o, &rng, &f));
    test_randn(fxp_param_value(fxp_params_find(ps, "gce/theta0")).data, 4, 131, 0.6f);
    test_randn(fxp_param_value(fxp_params_find(ps, "gce/theta1")).data, 4, 132, 0.6f);
    const int B = 2, N = 5, F = 2;
    float adj[50], x[20], pa[50], px[20];
    random_graph(adj, N, 133);
    for (int i = 0; i < N; i++) /* graph 1: a ring, max degree 2 */
        for (int j = 0; j < N; j++) adj[25 + i * N + j] = (j == (i + 1) % N || i == (j + 1) % N);
    test_randn(x, 20, 134, 1);
    int as[3] = { B, N, N }, xs[3] = { B, N, F }, xs1[3] = { 1, N, F };
    fxp_tensor ta = fxp_tensor_wrap(adj, 3, as), tx = fxp_tensor_wrap(x, 3, xs);
    fxp_flow_io io = { .training = 1, .adj = &ta }; /* training: one power step per call */
    fxp_tape *t;
    fxp_var *vx, *z, *ld, *z1, *ld1, *xr, *ldr;
    ck_assert_ok(fxp_tape_new(ctx, &t));
    for (int it = 0; it < 20; it++) {
        fxp_tape_reset(t);
        ck_assert_ok(fxp_tape_input(t, &vx, &tx, 0));
        ck_assert_ok(fxp_flow_forward(f, t, &io, vx, &z, &ld));
    }
    io.training = 0;
    fxp_tape_set_grad_enabled(t, 0);
    fxp_tape_reset(t);
    ck_assert_ok(fxp_tape_input(t, &vx, &tx, 0));
    ck_assert_ok(fxp_flow_forward(f, t, &io, vx, &z, &ld));
    ck_assert_ok(fxp_flow_inverse(f, t, &io, z, &xr, &ldr));
    ck_assert_msg(test_rel_err(xr->value.data, x, 20) < 1e-5, "round trip %g",
                  test_rel_err(xr->value.data, x, 20));
    ck_assert_float_eq_tol(ld->value.data[0], ld->value.data[1], 1e-6f);
    for (int b = 0; b < B; b++) {
        fxp_tensor a1 = fxp_tensor_wrap(adj + b * N * N, 2, as + 1),
                   x1 = fxp_tensor_wrap(x + b * N * F, 3, xs1);
        fxp_flow_io io1 = { .training = 0, .adj = &a1 };
        ck_assert_ok(fxp_tape_input(t, &vx, &x1, 0));
        ck_assert_ok(fxp_flow_forward(f, t, &io1, vx, &z1, &ld1));
        ck_assert_msg(test_rel_err(z1->value.data, z->value.data + b * N * F, 10) < 1e-6,
                      "graph %d depends on its batch", b);
        ck_assert_float_eq_tol(ld1->value.data[0], ld->value.data[b], 1e-6f);
        /* permute graph b's nodes */
        const int perm[5] = { 3, 0, 4, 2, 1 };
        for (int i = 0; i < N; i++) {
            for (int j = 0; j < N; j++) pa[i * N + j] = adj[b * N * N + perm[i] * N + perm[j]];
            for (int k = 0; k < F; k++) px[i * F + k] = x[(b * N + perm[i]) * F + k];
        }
        fxp_tensor pa1 = fxp_tensor_wrap(pa, 2, as + 1), px1 = fxp_tensor_wrap(px, 3, xs1);
        fxp_flow_io iop = { .training = 0, .adj = &pa1 };
        ck_assert_ok(fxp_tape_input(t, &vx, &px1, 0));
        ck_assert_ok(fxp_flow_forward(f, t, &iop, vx, &z1, &ld1));
        ck_assert_float_eq_tol(ld1->value.data[0], ld->value.data[b], 1e-6f);
        for (int i = 0; i < N; i++)
            for (int k = 0; k < F; k++)
                ck_assert_float_eq_tol(z1->value.data[i * F + k],
                                       z->value.data[(b * N + perm[i]) * F + k], 1e-5f);
    }
    fxp_tape_free(t);
    fxp_flow_free(f);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}
END_TEST

static Suite *expm_layers_suite(void)
{
    Suite *s = suite_create("expm-layers");
    TCase *tc = tcase_create("expm-layers");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_convexp_layer);
    tcase_add_test(tc, test_convexp_layer_state);
    tcase_add_test(tc, test_flow_check);
    tcase_add_test(tc, test_graph_exp_layer);
    tcase_add_test(tc, test_graph_exp_layer_batches);
    suite_add_tcase(s, tc);
    return s;
}

FXP_TEST_MAIN(expm_layers_suite)
