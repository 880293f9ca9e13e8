/* Graph flows: the graph affine coupling (per-node MLP and message-passing
 * conditioners), graph actnorm, and the three Table-4 models.
 * Every check runs on tiny graphs (B = 2, N = 3..5, F = 2) with perturbed
 * parameters, so the zero-initialised coupling heads are not the identity. */
#include "testutil.h"

#include "core/internal.h"
#include "flowexp/graphflow.h"

enum { B = 2, F = 2 };

/* ---- fixtures ------------------------------------------------------------------ */

/* Add N(0, std^2) noise to every trainable parameter. */
static void perturb(fxp_params *ps, uint64_t seed, float std)
{
    size_t n = fxp_params_size(ps, FXP_PARAM_TRAINABLE);
    float *v = fxp_params_data(ps, FXP_PARAM_TRAINABLE), *noise = malloc(n * sizeof *noise);
    ck_assert_ptr_nonnull(noise);
    test_randn(noise, n, seed, std);
    for (size_t i = 0; i < n; i++) v[i] += noise[i];
    free(noise);
}

/* A symmetric weighted adjacency with zero diagonal: [g, n, n] (g graphs),
 * entries in (0.2, 1.2), some zeroed (but no isolated node). */
static void random_adj(float *a, int g, int n, uint64_t seed)
{
    fxp_rng r;
    fxp_rng_seed(&r, seed);
    for (int k = 0; k < g; k++) {
        float *m = a + (size_t)k * n * n;
        for (int i = 0; i < n; i++) {
            m[i * n + i] = 0.0f;
            for (int j = i + 1; j < n; j++) {
                float u[2];
                fxp_rng_uniform(&r, u, 2);
                float w = (u[0] < 0.25f && j != i + 1) ? 0.0f : 0.2f + u[1];
                m[i * n + j] = m[j * n + i] = w;
            }
        }
    }
}

/* The fully connected graph on n nodes (ones off the diagonal). */
static void full_adj(float *a, int n)
{
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) a[i * n + j] = i == j ? 0.0f : 1.0f;
}

typedef enum { L_MLP0, L_MLP1, L_MP0, L_MP1, L_ATTN, L_EDGE, L_ACTNORM, L_LINEAR, L_COUNT } layer_id;

/* Build one layer with perturbed parameters (the actnorm after its
 * data-dependent initialisation on a training forward). */
static fxp_flow *make_layer(fxp_ctx *ctx, fxp_params *ps, layer_id id, fxp_graph_act act)
{
    fxp_flow *f = NULL;
    fxp_rng rng;
    fxp_rng_seed(&rng, 11 + id);
    if (id == L_ACTNORM) {
        ck_assert_ok(fxp_graph_actnorm_new(ctx, ps, "an", F, &f));
        perturb(ps, 5, 0.4f);
        return f;
    }
    if (id == L_LINEAR) {
        ck_assert_ok(fxp_graph_linear_new(ctx, ps, "lin", F, &rng, &f));
        perturb(ps, 6, 0.4f);
        return f;
    }
    fxp_graph_coupling_opts o;
    fxp_graph_coupling_opts_default(&o);
    o.features = F;
    o.cond = id <= L_MLP1 ? FXP_GRAPH_COND_MLP
             : id == L_ATTN ? FXP_GRAPH_COND_ATTN
             : id == L_EDGE ? FXP_GRAPH_COND_EDGE
                            : FXP_GRAPH_COND_MP;
    o.swap = id == L_MLP1 || id == L_MP1;
    o.hidden = id == L_ATTN ? 6 : 5;
    o.heads = 2;
    o.mlp_layers = 2;
    o.rounds = 2;
    o.scale_bound = 1.5f;
    o.act = act;
    ck_assert_ok(fxp_graph_coupling_new(ctx, ps, "cp", &o, &rng, &f));
    perturb(ps, 7 + id, 0.5f);
    return f;
}

typedef struct run_out {
    float *z;       /* [B, n, F] */
    float ld[8];    /* logdet per graph */
} run_out;

/* Forward (inverse if inv) of f on x [b, n, F] without gradients; copies the
 * outputs into r (r->z malloc'd). adj: NULL, [n,n] or [b,n,n] (adj_ndim). */
static int run_flow(fxp_ctx *ctx, fxp_flow *f, const float *x, int b, int n, const float *adj,
                    int adj_ndim, int inv, run_out *r)
{
    fxp_tape *t;
    int rc = fxp_tape_new(ctx, &t);
    if (rc < 0) return rc;
    fxp_tape_set_grad_enabled(t, 0);
    int xs[3] = { b, n, F }, as[3] = { b, n, n };
    fxp_tensor xt = fxp_tensor_wrap((float *)x, 3, xs);
    fxp_tensor at = adj_ndim == 3 ? fxp_tensor_wrap((float *)adj, 3, as)
                                  : fxp_tensor_wrap((float *)adj, 2, as + 1);
    fxp_flow_io io = { .training = 0, .adj = adj ? &at : NULL };
    fxp_var *xv, *zv, *ld;
    rc = fxp_tape_input(t, &xv, &xt, 0);
    if (rc >= 0)
        rc = inv ? fxp_flow_inverse(f, t, &io, xv, &zv, &ld) : fxp_flow_forward(f, t, &io, xv, &zv, &ld);
    if (rc >= 0) {
        size_t sz = (size_t)b * n * F * sizeof(float);
        r->z = malloc(sz);
        memcpy(r->z, zv->value.data, sz);
        for (int i = 0; i < b; i++) r->ld[i] = ld->value.data[i];
    }
    fxp_tape_free(t);
    return rc;
}

/* log|det J| of a d x d row-major matrix (LU with partial pivoting). */
static double logabsdet(double *a, int d)
{
    double s = 0;
    for (int k = 0; k < d; k++) {
        int p = k;
        for (int i = k + 1; i < d; i++)
            if (fabs(a[i * d + k]) > fabs(a[p * d + k])) p = i;
        if (p != k)
            for (int j = 0; j < d; j++) {
                double tmp = a[k * d + j];
                a[k * d + j] = a[p * d + j];
                a[p * d + j] = tmp;
            }
        s += log(fabs(a[k * d + k]));
        for (int i = k + 1; i < d; i++) {
            double m = a[i * d + k] / a[k * d + k];
            for (int j = k; j < d; j++) a[i * d + j] -= m * a[k * d + j];
        }
    }
    return s;
}

/* Compare each graph's logdet with log|det| of its Jacobian built column by
 * column from central differences (the graphs of the batch are independent,
 * so one perturbed batch gives column j of every graph's Jacobian). */
static void check_logdet_fd(fxp_ctx *ctx, fxp_flow *f, const float *x, int n, const float *adj,
                            int adj_ndim, int inv, float h, double tol)
{
    const int d = n * F;
    run_out r0, rp, rm;
    ck_assert_ok(run_flow(ctx, f, x, B, n, adj, adj_ndim, inv, &r0));
    double *jac = calloc((size_t)B * d * d, sizeof *jac);
    float *xp = malloc((size_t)B * d * sizeof *xp);
    for (int j = 0; j < d; j++) {
        memcpy(xp, x, (size_t)B * d * sizeof *xp);
        for (int b = 0; b < B; b++) xp[b * d + j] += h;
        ck_assert_ok(run_flow(ctx, f, xp, B, n, adj, adj_ndim, inv, &rp));
        for (int b = 0; b < B; b++) xp[b * d + j] -= 2 * h;
        ck_assert_ok(run_flow(ctx, f, xp, B, n, adj, adj_ndim, inv, &rm));
        for (int b = 0; b < B; b++)
            for (int i = 0; i < d; i++)
                jac[(size_t)b * d * d + i * d + j] =
                    ((double)rp.z[b * d + i] - rm.z[b * d + i]) / (2.0 * h);
        free(rp.z);
        free(rm.z);
    }
    for (int b = 0; b < B; b++) {
        double ref = logabsdet(jac + (size_t)b * d * d, d);
        ck_assert_msg(fabs(ref - r0.ld[b]) < tol * fmax(1.0, fabs(ref)),
                      "%s graph %d: logdet %.6f, brute-force Jacobian %.6f", fxp_flow_name(f), b,
                      (double)r0.ld[b], ref);
    }
    /* the test is not trivial: the layer changes volume */
    ck_assert_msg(fabs(r0.ld[0]) > 1e-3 || fabs(r0.ld[1]) > 1e-3, "%s: logdet is ~0",
                  fxp_flow_name(f));
    free(r0.z);
    free(jac);
    free(xp);
}

/* inverse(forward(x)) == x and the logdets cancel. */
static void check_roundtrip(fxp_ctx *ctx, fxp_flow *f, const float *x, int n, const float *adj,
                            int adj_ndim, double tol)
{
    run_out fz, fx;
    ck_assert_ok(run_flow(ctx, f, x, B, n, adj, adj_ndim, 0, &fz));
    ck_assert_ok(run_flow(ctx, f, fz.z, B, n, adj, adj_ndim, 1, &fx));
    const size_t m = (size_t)B * n * F;
    ck_assert_msg(test_rel_err(fx.z, x, m) < tol, "%s: roundtrip error %.3g", fxp_flow_name(f),
                  test_rel_err(fx.z, x, m));
    ck_assert_msg(test_rel_err(fz.z, x, m) > 1e-3, "%s: forward is the identity",
                  fxp_flow_name(f));
    for (int b = 0; b < B; b++)
        ck_assert_msg(fabs(fz.ld[b] + fx.ld[b]) < tol * fmax(1.0, fabs(fz.ld[b])),
                      "%s: logdets %g and %g do not cancel", fxp_flow_name(f), (double)fz.ld[b],
                      (double)fx.ld[b]);
    free(fz.z);
    free(fx.z);
}

/* Permuting nodes of x and adj permutes the output; logdets unchanged. */
static void check_equivariance(fxp_ctx *ctx, fxp_flow *f, const float *x, int n,
                               const float *adj)
{
    const int perm[5] = { 2, 0, 3, 1, 4 };
    ck_assert_int_le(n, 5);
    float *xp = malloc((size_t)B * n * F * sizeof *xp), *ap = malloc((size_t)B * n * n * sizeof *ap);
    int pm[5], k = 0;
    for (int i = 0; i < 5; i++)
        if (perm[i] < n) pm[k++] = perm[i];
    for (int b = 0; b < B; b++)
        for (int i = 0; i < n; i++) {
            for (int c = 0; c < F; c++) xp[(b * n + i) * F + c] = x[(b * n + pm[i]) * F + c];
            for (int j = 0; j < n; j++)
                ap[(b * n + i) * n + j] = adj[(b * n + pm[i]) * n + pm[j]];
        }
    run_out r, rp;
    ck_assert_ok(run_flow(ctx, f, x, B, n, adj, 3, 0, &r));
    ck_assert_ok(run_flow(ctx, f, xp, B, n, ap, 3, 0, &rp));
    for (int b = 0; b < B; b++) {
        for (int i = 0; i < n; i++)
            for (int c = 0; c < F; c++)
                ck_assert_msg(fabsf(rp.z[(b * n + i) * F + c] - r.z[(b * n + pm[i]) * F + c]) <
                                  1e-5f * (1.0f + fabsf(r.z[(b * n + pm[i]) * F + c])),
                              "%s: not equivariant at graph %d node %d", fxp_flow_name(f), b, i);
        ck_assert_msg(fabsf(rp.ld[b] - r.ld[b]) < 1e-5f * (1.0f + fabsf(r.ld[b])),
                      "%s: logdet changed under permutation (%g vs %g)", fxp_flow_name(f),
                      (double)rp.ld[b], (double)r.ld[b]);
    }
    free(r.z);
    free(rp.z);
    free(xp);
    free(ap);
}

/* ---- layers ----------------------------------------------------------------------- */

START_TEST(test_layer_roundtrip_logdet)
{
    fxp_ctx *ctx = test_ctx(1);
    const int n = 3 + _i % 2; /* N = 3 and 4 */
    for (int id = 0; id < L_COUNT; id++) {
        fxp_params *ps;
        ck_assert_ok(fxp_params_new(ctx, &ps));
        fxp_flow *f = make_layer(ctx, ps, (layer_id)id, FXP_GRAPH_ACT_RELU);
        float x[B * 4 * F], adj[B * 4 * 4];
        test_randn(x, (size_t)B * n * F, 100 + id, 1.0f);
        random_adj(adj, B, n, 200 + id);
        check_roundtrip(ctx, f, x, n, adj, 3, 1e-5);
        check_logdet_fd(ctx, f, x, n, adj, 3, 0, 1e-2f, 2e-3);
        check_logdet_fd(ctx, f, x, n, adj, 3, 1, 1e-2f, 2e-3);
        check_equivariance(ctx, f, x, n, adj);
        fxp_flow_free(f);
        fxp_params_free(ps);
    }
    fxp_ctx_free(ctx);
}
END_TEST

/* The message-passing coupling depends on the adjacency and the per-node
 * MLP coupling does not; a shared [N,N] adjacency equals the same matrix
 * repeated per graph. */
START_TEST(test_coupling_adjacency_use)
{
    fxp_ctx *ctx = test_ctx(1);
    const int n = 4;
    float x[B * n * F], a1[n * n], a3[B * n * n], ar[B * n * n];
    test_randn(x, sizeof x / sizeof *x, 1, 1.0f);
    random_adj(a1, 1, n, 2);
    memcpy(a3, a1, sizeof a1);
    memcpy(a3 + n * n, a1, sizeof a1);
    random_adj(ar, B, n, 3);
    for (int id = L_MLP0; id <= L_EDGE; id++) {
        fxp_params *ps;
        ck_assert_ok(fxp_params_new(ctx, &ps));
        fxp_flow *f = make_layer(ctx, ps, (layer_id)id, FXP_GRAPH_ACT_RELU);
        run_out r1, r3, rr;
        ck_assert_ok(run_flow(ctx, f, x, B, n, a1, 2, 0, &r1));
        ck_assert_ok(run_flow(ctx, f, x, B, n, a3, 3, 0, &r3));
        ck_assert_ok(run_flow(ctx, f, x, B, n, ar, 3, 0, &rr));
        ck_assert_double_eq_tol(test_rel_err(r3.z, r1.z, B * n * F), 0.0, 1e-6);
        ck_assert_float_eq_tol(r3.ld[0], r1.ld[0], 1e-5f);
        ck_assert_float_eq_tol(r3.ld[1], r1.ld[1], 1e-5f);
        double diff = test_rel_err(rr.z, r1.z, B * n * F);
        if (id >= L_MP0) ck_assert_msg(diff > 1e-4, "MP coupling ignores the adjacency");
        else ck_assert_double_eq_tol(diff, 0.0, 1e-7);
        free(r1.z);
        free(r3.z);
        free(rr.z);
        fxp_flow_free(f);
        fxp_params_free(ps);
    }
    fxp_ctx_free(ctx);
}
END_TEST

/* Data-dependent actnorm initialisation: unit statistics after the first
 * training forward, state flag set, no re-initialisation afterwards. */
START_TEST(test_actnorm_init)
{
    fxp_ctx *ctx = test_ctx(1);
    fxp_params *ps;
    fxp_flow *f;
    ck_assert_ok(fxp_params_new(ctx, &ps));
    ck_assert_ok(fxp_graph_actnorm_new(ctx, ps, "an", F, &f));
    ck_assert_int_eq(fxp_params_size(ps, FXP_PARAM_STATE), 1);
    enum { N = 5 };
    float x[B * N * F];
    test_randn(x, sizeof x / sizeof *x, 9, 3.0f);
    for (int i = 0; i < B * N; i++) x[i * F + 1] += 7.0f;
    fxp_tape *t;
    ck_assert_ok(fxp_tape_new(ctx, &t));
    int xs[3] = { B, N, F };
    fxp_tensor xt = fxp_tensor_wrap(x, 3, xs);
    fxp_flow_io io = { .training = 1 };
    fxp_var *xv, *z, *ld;
    ck_assert_ok(fxp_tape_input(t, &xv, &xt, 0));
    ck_assert_ok(fxp_flow_forward(f, t, &io, xv, &z, &ld));
    for (int c = 0; c < F; c++) {
        double s = 0, s2 = 0;
        for (int i = 0; i < B * N; i++) s += z->value.data[i * F + c];
        for (int i = 0; i < B * N; i++) s2 += pow(z->value.data[i * F + c] - s / (B * N), 2);
        ck_assert_double_eq_tol(s / (B * N), 0.0, 1e-5);
        ck_assert_double_eq_tol(s2 / (B * N), 1.0, 1e-4);
    }
    const float *ls = fxp_param_value(fxp_params_find(ps, "an/log_scale")).data;
    ck_assert_float_eq_tol(ld->value.data[0], N * (ls[0] + ls[1]), 1e-5f);
    ck_assert_float_eq(ld->value.data[1], ld->value.data[0]);
    ck_assert_float_eq(fxp_params_data(ps, FXP_PARAM_STATE)[0], 1.0f);
    const float before = ls[1];
    for (size_t i = 0; i < sizeof x / sizeof *x; i++) x[i] *= 0.1f;
    fxp_tape_reset(t);
    ck_assert_ok(fxp_tape_input(t, &xv, &xt, 0));
    ck_assert_ok(fxp_flow_forward(f, t, &io, xv, &z, &ld));
    ck_assert_float_eq(ls[1], before);
    fxp_tape_free(t);
    fxp_flow_free(f);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}
END_TEST

/* Gradients of a coupling's logdet + output w.r.t. its input. */
typedef struct layer_user {
    fxp_flow *f;
    fxp_tensor adj;
} layer_user;

static int layer_fn(fxp_tape *t, fxp_var *const *in, fxp_var **out, void *user)
{
    layer_user *u = user;
    fxp_flow_io io = { .training = 0, .adj = &u->adj };
    fxp_var *z, *ld, *s;
    int rc;
    FXP_TRY(fxp_flow_forward(u->f, t, &io, in[0], &z, &ld));
    FXP_TRY(fxp_sum(t, &s, z, FXP_AXES_FROM(1), 0));
    FXP_TRY(fxp_add(t, out, s, ld));
out:
    return rc;
}

START_TEST(test_layer_input_gradcheck)
{
    fxp_ctx *ctx = test_ctx(1);
    enum { N = 3 };
    for (int id = 0; id < L_COUNT; id++) {
        fxp_params *ps;
        ck_assert_ok(fxp_params_new(ctx, &ps));
        layer_user u;
        u.f = make_layer(ctx, ps, (layer_id)id, FXP_GRAPH_ACT_TANH);
        float x[B * N * F], adj[B * N * N];
        test_randn(x, sizeof x / sizeof *x, 31, 1.0f);
        random_adj(adj, B, N, 32);
        int xs[3] = { B, N, F }, as[3] = { B, N, N };
        fxp_tensor xt = fxp_tensor_wrap(x, 3, xs);
        u.adj = fxp_tensor_wrap(adj, 3, as);
        fxp_tensor *inputs[1] = { &xt };
        ck_assert_gradcheck(ctx, layer_fn, &u, 1, inputs, NULL, 1e-2f, 2e-2);
        fxp_flow_free(u.f);
        fxp_params_free(ps);
    }
    fxp_ctx_free(ctx);
}
END_TEST

START_TEST(test_layer_errors)
{
    fxp_ctx *ctx = test_ctx(1);
    fxp_params *ps;
    fxp_flow *f = NULL, *g = NULL;
    fxp_rng rng;
    fxp_rng_seed(&rng, 1);
    ck_assert_ok(fxp_params_new(ctx, &ps));
    fxp_graph_coupling_opts o;
    fxp_graph_coupling_opts_default(&o);
    o.features = 3;
    ck_assert_fails(fxp_graph_coupling_new(ctx, ps, "c", &o, &rng, &f), FXP_EINVAL, ctx);
    o.features = 2;
    o.hidden = 0;
    ck_assert_fails(fxp_graph_coupling_new(ctx, ps, "c", &o, &rng, &f), FXP_EINVAL, ctx);
    o.hidden = 4;
    o.scale_bound = 0.0f;
    ck_assert_fails(fxp_graph_coupling_new(ctx, ps, "c", &o, &rng, &f), FXP_EINVAL, ctx);
    o.scale_bound = 2.0f;
    ck_assert_fails(fxp_graph_actnorm_new(ctx, ps, "a", 0, &g), FXP_EINVAL, ctx);
    ck_assert_ok(fxp_graph_coupling_new(ctx, ps, "c", &o, &rng, &f));
    ck_assert_ok(fxp_graph_actnorm_new(ctx, ps, "a", 2, &g));
    /* duplicate parameter names */
    fxp_flow *dup = NULL;
    ck_assert_fails(fxp_graph_coupling_new(ctx, ps, "c", &o, &rng, &dup), FXP_EINVAL, ctx);
    ck_assert_ptr_null(dup);

    fxp_tape *t;
    ck_assert_ok(fxp_tape_new(ctx, &t));
    float x[2 * 3 * 4] = { 0 }, adj[3 * 3];
    full_adj(adj, 3);
    int s3[3] = { 2, 3, 2 }, s_f4[3] = { 2, 3, 4 }, s2[2] = { 2, 6 }, a_bad[2] = { 2, 2 };
    fxp_tensor xt = fxp_tensor_wrap(x, 3, s3), x4 = fxp_tensor_wrap(x, 3, s_f4),
               x2 = fxp_tensor_wrap(x, 2, s2), at = fxp_tensor_wrap(adj, 2, (int[2]){ 3, 3 }),
               ab = fxp_tensor_wrap(adj, 2, a_bad);
    fxp_var *xv, *x4v, *x2v, *z, *ld;
    ck_assert_ok(fxp_tape_input(t, &xv, &xt, 0));
    ck_assert_ok(fxp_tape_input(t, &x4v, &x4, 0));
    ck_assert_ok(fxp_tape_input(t, &x2v, &x2, 0));
    fxp_flow_io none = { .training = 0 }, good = { .training = 0, .adj = &at },
                bad = { .training = 0, .adj = &ab };
    ck_assert_fails(fxp_flow_forward(f, t, &none, xv, &z, &ld), FXP_EINVAL, ctx);
    ck_assert_ptr_nonnull(strstr(fxp_ctx_error(ctx), "adjacency"));
    ck_assert_fails(fxp_flow_inverse(f, t, &none, xv, &z, &ld), FXP_EINVAL, ctx);
    ck_assert_fails(fxp_flow_forward(f, t, &bad, xv, &z, &ld), FXP_ESHAPE, ctx);
    ck_assert_ptr_nonnull(strstr(fxp_ctx_error(ctx), "[2,2]"));
    ck_assert_fails(fxp_flow_forward(f, t, &good, x4v, &z, &ld), FXP_ESHAPE, ctx);
    ck_assert_fails(fxp_flow_forward(f, t, &good, x2v, &z, &ld), FXP_ESHAPE, ctx);
    ck_assert_fails(fxp_flow_forward(g, t, &good, x4v, &z, &ld), FXP_ESHAPE, ctx);
    ck_assert_fails(fxp_flow_inverse(g, t, &good, x2v, &z, &ld), FXP_ESHAPE, ctx);
    ck_assert_ok(fxp_flow_forward(f, t, &good, xv, &z, &ld));
    ck_assert_ok(fxp_flow_forward(g, t, &none, xv, &z, &ld));
    fxp_tape_free(t);
    fxp_flow_free(f);
    fxp_flow_free(g);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}
END_TEST

/* ---- models ------------------------------------------------------------------------ */

/* A tiny model of `kind` with perturbed parameters and initialised actnorms. */
static fxp_model *make_model(fxp_ctx *ctx, fxp_params *ps, fxp_graph_model_kind kind,
                             fxp_base_kind base, fxp_graph_act act)
{
    fxp_graph_model_config cfg;
    fxp_graph_model_config_default(&cfg, kind);
    cfg.couplings = 3;
    cfg.hidden = 4;
    cfg.mlp_layers = 2;
    cfg.rounds = 1;
    cfg.linear = 1;
    cfg.act = act;
    cfg.base = base;
    cfg.gce_terms_train = cfg.gce_terms_eval = 30;
    cfg.gce_max_degree = 4; /* so that a graph's map does not depend on its batch */
    fxp_rng rng;
    fxp_rng_seed(&rng, 77 + kind);
    fxp_model *m = NULL;
    ck_assert_ok(fxp_graph_model_new(ctx, ps, &cfg, &rng, &m));
    /* initialise the actnorms on data, then perturb everything */
    enum { N = 4 };
    float x[B * N * F], adj[N * N];
    test_randn(x, sizeof x / sizeof *x, 3, 2.0f);
    full_adj(adj, N);
    fxp_tape *t;
    ck_assert_ok(fxp_tape_new(ctx, &t));
    fxp_tape_set_grad_enabled(t, 0);
    int xs[3] = { B, N, F };
    fxp_tensor xt = fxp_tensor_wrap(x, 3, xs), at = fxp_tensor_wrap(adj, 2, (int[2]){ N, N });
    fxp_flow_io io = { .training = 1, .adj = &at };
    fxp_var *xv, *lp;
    ck_assert_ok(fxp_tape_input(t, &xv, &xt, 0));
    ck_assert_ok(fxp_model_log_prob(m, t, &io, xv, &lp));
    fxp_tape_free(t);
    perturb(ps, 21 + kind, 0.3f);
    return m;
}

/* log p per graph (no gradients). */
static int model_logp(fxp_ctx *ctx, fxp_model *m, const float *x, int b, int n, const float *adj,
                      int adj_ndim, float *lp_out)
{
    fxp_tape *t;
    int rc = fxp_tape_new(ctx, &t);
    if (rc < 0) return rc;
    fxp_tape_set_grad_enabled(t, 0);
    int xs[3] = { b, n, F }, as[3] = { b, n, n };
    fxp_tensor xt = fxp_tensor_wrap((float *)x, 3, xs);
    fxp_tensor at = adj_ndim == 3 ? fxp_tensor_wrap((float *)adj, 3, as)
                                  : fxp_tensor_wrap((float *)adj, 2, as + 1);
    fxp_flow_io io = { .training = 0, .adj = adj ? &at : NULL };
    fxp_var *xv, *lp;
    rc = fxp_tape_input(t, &xv, &xt, 0);
    if (rc >= 0) rc = fxp_model_log_prob(m, t, &io, xv, &lp);
    if (rc >= 0) memcpy(lp_out, lp->value.data, (size_t)b * sizeof(float));
    fxp_tape_free(t);
    return rc;
}

START_TEST(test_model_flow_roundtrip_logdet)
{
    fxp_ctx *ctx = test_ctx(1);
    const fxp_graph_model_kind kind = (fxp_graph_model_kind)_i;
    fxp_params *ps;
    ck_assert_ok(fxp_params_new(ctx, &ps));
    fxp_model *m = make_model(ctx, ps, kind, FXP_BASE_DIAG_NORMAL, FXP_GRAPH_ACT_TANH);
    fxp_flow *f = fxp_model_flow(m);
    enum { N = 4 };
    float x[B * N * F], adj[B * N * N];
    test_randn(x, sizeof x / sizeof *x, 41, 1.5f);
    random_adj(adj, B, N, 42);
    check_roundtrip(ctx, f, x, N, adj, 3, 1e-4);
    /* whole flows are strongly nonlinear: a smaller step */
    check_logdet_fd(ctx, f, x, N, adj, 3, 0, 2e-3f, 5e-3);
    check_equivariance(ctx, f, x, N, adj);
    fxp_model_free(m);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}
END_TEST

/* log p is invariant under node permutations (P x, P A P^T), does not
 * depend on the batch composition, and shared == per-graph adjacency. */
START_TEST(test_model_permutation_invariance)
{
    fxp_ctx *ctx = test_ctx(1);
    const fxp_graph_model_kind kind = (fxp_graph_model_kind)_i;
    fxp_params *ps;
    ck_assert_ok(fxp_params_new(ctx, &ps));
    fxp_model *m = make_model(ctx, ps, kind, FXP_BASE_DIAG_NORMAL, FXP_GRAPH_ACT_RELU);
    enum { N = 4 };
    const int perm[N] = { 3, 1, 0, 2 };
    float x[B * N * F], xp[B * N * F], adj[B * N * N], ap[B * N * N];
    test_randn(x, sizeof x / sizeof *x, 51, 2.0f);
    random_adj(adj, B, N, 52);
    for (int b = 0; b < B; b++)
        for (int i = 0; i < N; i++) {
            for (int c = 0; c < F; c++) xp[(b * N + i) * F + c] = x[(b * N + perm[i]) * F + c];
            for (int j = 0; j < N; j++) ap[(b * N + i) * N + j] = adj[(b * N + perm[i]) * N + perm[j]];
        }
    float lp[B], lpp[B], lp1[1];
    ck_assert_ok(model_logp(ctx, m, x, B, N, adj, 3, lp));
    ck_assert_ok(model_logp(ctx, m, xp, B, N, ap, 3, lpp));
    for (int b = 0; b < B; b++) {
        ck_assert_msg(isfinite(lp[b]), "log p not finite");
        ck_assert_msg(fabsf(lp[b] - lpp[b]) < 2e-5f * (1 + fabsf(lp[b])),
                      "graph %d: log p %.7g vs permuted %.7g", b, (double)lp[b], (double)lpp[b]);
    }
    /* graph 1 alone */
    ck_assert_ok(model_logp(ctx, m, x + N * F, 1, N, adj + N * N, 3, lp1));
    ck_assert_float_eq_tol(lp1[0], lp[1], 1e-5f * (1 + fabsf(lp[1])));
    /* shared adjacency == the same matrix per graph */
    float full[N * N], full3[B * N * N], ls[B], l3[B];
    full_adj(full, N);
    memcpy(full3, full, sizeof full);
    memcpy(full3 + N * N, full, sizeof full);
    ck_assert_ok(model_logp(ctx, m, x, B, N, full, 2, ls));
    ck_assert_ok(model_logp(ctx, m, x, B, N, full3, 3, l3));
    for (int b = 0; b < B; b++) ck_assert_float_eq_tol(ls[b], l3[b], 1e-5f * (1 + fabsf(ls[b])));
    if (kind != FXP_GRAPH_MODEL_COUPLING)
        ck_assert_msg(fabsf(ls[0] - lp[0]) > 1e-4f, "graph model ignores the adjacency");
    else
        ck_assert_float_eq_tol(ls[0], lp[0], 1e-6f * (1 + fabsf(lp[0])));
    fxp_model_free(m);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}
END_TEST

/* The node count may change between calls; sampling inverts the flow. */
START_TEST(test_model_variable_n_and_sample)
{
    fxp_ctx *ctx = test_ctx(1);
    const fxp_graph_model_kind kind = (fxp_graph_model_kind)_i;
    fxp_params *ps;
    ck_assert_ok(fxp_params_new(ctx, &ps));
    fxp_model *m = make_model(ctx, ps, kind, FXP_BASE_STANDARD_NORMAL, FXP_GRAPH_ACT_RELU);
    for (int n = 3; n <= 5; n++) {
        float x[B * 5 * F], adj[5 * 5], lp[B];
        test_randn(x, (size_t)B * n * F, 60 + n, 1.0f);
        full_adj(adj, n);
        ck_assert_ok(model_logp(ctx, m, x, B, n, adj, 2, lp));
        ck_assert_msg(isfinite(lp[0]) && isfinite(lp[1]), "N = %d: log p not finite", n);
        check_roundtrip(ctx, fxp_model_flow(m), x, n, adj, 2, 1e-4);

        /* samples: the flow maps them back to the base draws */
        fxp_tape *t;
        ck_assert_ok(fxp_tape_new(ctx, &t));
        fxp_tape_set_grad_enabled(t, 0);
        int as[2] = { n, n }, ev[2] = { n, F };
        fxp_tensor at = fxp_tensor_wrap(adj, 2, as);
        fxp_flow_io io = { .training = 0, .adj = &at };
        fxp_rng r1, r2;
        fxp_rng_seed(&r1, 5);
        r2 = r1;
        fxp_var *xs, *z, *ld;
        ck_assert_ok(fxp_model_sample(m, t, &io, 3, ev, 1.0f, &r1, &xs));
        ck_assert_int_eq(xs->value.shape[0], 3);
        ck_assert_int_eq(xs->value.shape[1], n);
        ck_assert_ok(fxp_flow_forward(fxp_model_flow(m), t, &io, xs, &z, &ld));
        float eps[3 * 5 * F];
        fxp_rng_normal(&r2, eps, (size_t)3 * n * F, 0.0f, 1.0f);
        ck_assert_double_lt(test_rel_err(z->value.data, eps, (size_t)3 * n * F), 1e-3);
        fxp_tape_free(t);
    }
    fxp_model_free(m);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}
END_TEST

/* Parameter gradients of L = sum_b r_b log p_b against central differences. */
START_TEST(test_model_param_gradients)
{
    fxp_ctx *ctx = test_ctx(1);
    const fxp_graph_model_kind kind = (fxp_graph_model_kind)_i;
    fxp_params *ps;
    ck_assert_ok(fxp_params_new(ctx, &ps));
    fxp_model *m = make_model(ctx, ps, kind, FXP_BASE_DIAG_NORMAL, FXP_GRAPH_ACT_TANH);
    enum { N = 3 };
    float x[B * N * F], adj[B * N * N];
    const double r[B] = { 0.7, -1.3 };
    test_randn(x, sizeof x / sizeof *x, 71, 1.0f);
    random_adj(adj, B, N, 72);
    /* analytic */
    fxp_tape *t;
    ck_assert_ok(fxp_tape_new(ctx, &t));
    int xs[3] = { B, N, F };
    fxp_tensor xt = fxp_tensor_wrap(x, 3, xs), at = fxp_tensor_wrap(adj, 3, (int[3]){ B, N, N });
    fxp_flow_io io = { .training = 0, .adj = &at };
    fxp_var *xv, *lp;
    ck_assert_ok(fxp_tape_input(t, &xv, &xt, 0));
    ck_assert_ok(fxp_model_log_prob(m, t, &io, xv, &lp));
    const float seed[B] = { (float)r[0], (float)r[1] };
    fxp_params_zero_grad(ps);
    ck_assert_ok(fxp_tape_backward(t, lp, seed));
    fxp_tape_free(t);
    const size_t np = fxp_params_size(ps, FXP_PARAM_TRAINABLE);
    float *theta = fxp_params_data(ps, FXP_PARAM_TRAINABLE);
    float *grad = malloc(np * sizeof *grad);
    memcpy(grad, fxp_params_grad_data(ps), np * sizeof *grad);
    /* numeric */
    double max_num = 0, worst = 0;
    size_t worst_i = 0;
    double *num = malloc(np * sizeof *num);
    for (size_t i = 0; i < np; i++) {
        const float t0 = theta[i], h = 1e-2f;
        float lpp[B], lpm[B];
        theta[i] = t0 + h;
        ck_assert_ok(model_logp(ctx, m, x, B, N, adj, 3, lpp));
        theta[i] = t0 - h;
        ck_assert_ok(model_logp(ctx, m, x, B, N, adj, 3, lpm));
        theta[i] = t0;
        num[i] = (r[0] * ((double)lpp[0] - lpm[0]) + r[1] * ((double)lpp[1] - lpm[1])) / (2.0 * h);
        max_num = fmax(max_num, fabs(num[i]));
    }
    for (size_t i = 0; i < np; i++) {
        double e = fabs(grad[i] - num[i]) / fmax(1e-2 * max_num, fmax(fabs(grad[i]), fabs(num[i])));
        if (e > worst) {
            worst = e;
            worst_i = i;
        }
    }
    ck_assert_msg(max_num > 1e-2, "gradients are ~0");
    ck_assert_msg(worst < 3e-2, "%s: parameter %zu of %zu: analytic %g numeric %g (rel %.3g)",
                  fxp_graph_model_kind_name(kind), worst_i, np, (double)grad[worst_i],
                  num[worst_i], worst);
    free(grad);
    free(num);
    fxp_model_free(m);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}
END_TEST

/* Gradient of log p w.r.t. the node features (fxp_gradcheck). */
typedef struct model_user {
    fxp_model *m;
    fxp_tensor adj;
} model_user;

static int model_fn(fxp_tape *t, fxp_var *const *in, fxp_var **out, void *user)
{
    model_user *u = user;
    fxp_flow_io io = { .training = 0, .adj = &u->adj };
    return fxp_model_log_prob(u->m, t, &io, in[0], out);
}

START_TEST(test_model_input_gradcheck)
{
    fxp_ctx *ctx = test_ctx(1);
    fxp_params *ps;
    ck_assert_ok(fxp_params_new(ctx, &ps));
    model_user u;
    u.m = make_model(ctx, ps, (fxp_graph_model_kind)_i, FXP_BASE_DIAG_NORMAL, FXP_GRAPH_ACT_TANH);
    enum { N = 3 };
    float x[B * N * F], adj[N * N];
    test_randn(x, sizeof x / sizeof *x, 81, 1.0f);
    full_adj(adj, N);
    int xs[3] = { B, N, F };
    fxp_tensor xt = fxp_tensor_wrap(x, 3, xs);
    u.adj = fxp_tensor_wrap(adj, 2, (int[2]){ N, N });
    fxp_tensor *inputs[1] = { &xt };
    ck_assert_gradcheck(ctx, model_fn, &u, 1, inputs, NULL, 1e-2f, 2e-2);
    fxp_model_free(u.m);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}
END_TEST

START_TEST(test_model_errors)
{
    fxp_ctx *ctx = test_ctx(1);
    fxp_params *ps;
    ck_assert_ok(fxp_params_new(ctx, &ps));
    fxp_graph_model_config cfg;
    fxp_rng rng;
    fxp_rng_seed(&rng, 1);
    fxp_model *m = NULL;
    fxp_graph_model_config_default(&cfg, FXP_GRAPH_MODEL_GNF);
    cfg.features = 3;
    ck_assert_fails(fxp_graph_model_new(ctx, ps, &cfg, &rng, &m), FXP_EINVAL, ctx);
    ck_assert_ptr_nonnull(strstr(fxp_ctx_error(ctx), "features"));
    cfg.features = 2;
    cfg.couplings = 0;
    ck_assert_fails(fxp_graph_model_new(ctx, ps, &cfg, &rng, &m), FXP_EINVAL, ctx);
    cfg.couplings = 2;
    cfg.kind = (fxp_graph_model_kind)7;
    ck_assert_fails(fxp_graph_model_new(ctx, ps, &cfg, &rng, &m), FXP_EINVAL, ctx);
    ck_assert_ptr_null(m);
    ck_assert_int_eq(fxp_params_count(ps), 0);
    cfg.kind = FXP_GRAPH_MODEL_GNF;
    cfg.hidden = 4;
    ck_assert_ok(fxp_graph_model_new(ctx, ps, &cfg, &rng, &m));
    fxp_tape *t;
    ck_assert_ok(fxp_tape_new(ctx, &t));
    float x[2 * 3 * 2] = { 0 }, adj[9];
    full_adj(adj, 3);
    int s3[3] = { 2, 3, 2 }, s2[2] = { 6, 2 };
    fxp_tensor xt = fxp_tensor_wrap(x, 3, s3), x2 = fxp_tensor_wrap(x, 2, s2),
               at = fxp_tensor_wrap(adj, 2, (int[2]){ 3, 3 });
    fxp_var *xv, *x2v, *lp;
    ck_assert_ok(fxp_tape_input(t, &xv, &xt, 0));
    ck_assert_ok(fxp_tape_input(t, &x2v, &x2, 0));
    fxp_flow_io none = { .training = 0 }, good = { .training = 0, .adj = &at };
    ck_assert_fails(fxp_model_log_prob(m, t, &none, xv, &lp), FXP_EINVAL, ctx);
    ck_assert_fails(fxp_model_log_prob(m, t, &good, x2v, &lp), FXP_ESHAPE, ctx);
    ck_assert_ok(fxp_model_log_prob(m, t, &good, xv, &lp));
    fxp_tape_free(t);
    fxp_model_free(m);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}
END_TEST

/* Parameter names follow "flow/<i>/<layer>/..." and the base's names. */
START_TEST(test_model_param_names)
{
    fxp_ctx *ctx = test_ctx(1);
    fxp_params *ps;
    ck_assert_ok(fxp_params_new(ctx, &ps));
    fxp_graph_model_config cfg;
    fxp_graph_model_config_default(&cfg, FXP_GRAPH_MODEL_GNF_GCE);
    cfg.couplings = 2;
    cfg.base = FXP_BASE_DIAG_NORMAL;
    fxp_rng rng;
    fxp_rng_seed(&rng, 1);
    fxp_model *m;
    ck_assert_ok(fxp_graph_model_new(ctx, ps, &cfg, &rng, &m));
    ck_assert_int_eq(fxp_flow_seq_length(fxp_model_flow(m)), 6);
    ck_assert_str_eq(fxp_flow_name(fxp_flow_seq_at(fxp_model_flow(m), 1)), "flow/1/gce");
    ck_assert_ptr_nonnull(fxp_params_find(ps, "flow/0/actnorm/log_scale"));
    ck_assert_ptr_nonnull(fxp_params_find(ps, "flow/0/actnorm/initialized"));
    ck_assert_ptr_nonnull(fxp_params_find(ps, "flow/5/coupling/head/w"));
    ck_assert_ptr_nonnull(fxp_params_find(ps, "flow/2/coupling/round/0/0/w"));
    fxp_tensor mean = fxp_param_value(fxp_params_find(ps, "model/base/mean"));
    ck_assert_int_eq(mean.ndim, 3);
    ck_assert_int_eq(mean.shape[1], 1);
    ck_assert_int_eq(mean.shape[2], 2);
    fxp_model_free(m);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}
END_TEST

/* ---- configuration ---------------------------------------------------------------- */

START_TEST(test_config_keys)
{
    for (int k = 0; k < 3; k++) {
        fxp_graph_model_config a, b;
        fxp_graph_model_config_default(&a, (fxp_graph_model_kind)k);
        ck_assert_ok(fxp_graph_model_config_validate(NULL, &a));
        ck_assert_int_eq(a.kind, k);
        /* get -> set round trip reproduces every field */
        memset(&b, 0, sizeof b);
        ck_assert_int_gt(fxp_graph_model_config_n_keys(), 10);
        for (int i = 0; i < fxp_graph_model_config_n_keys(); i++) {
            char buf[64];
            const char *key = fxp_graph_model_config_key(i);
            ck_assert_ptr_nonnull(key);
            ck_assert_ok(fxp_graph_model_config_get(&a, key, buf, sizeof buf));
            ck_assert_ok(fxp_graph_model_config_set(&b, key, buf));
        }
        ck_assert_int_eq(memcmp(&a, &b, sizeof a), 0);
    }
    ck_assert_ptr_null(fxp_graph_model_config_key(-1));
    ck_assert_ptr_null(fxp_graph_model_config_key(fxp_graph_model_config_n_keys()));
    /* doubles keep all their digits through get/set (a checkpoint's lr must
     * be the run's lr), and short values stay short */
    {
        fxp_graph_model_config a, b;
        fxp_graph_model_config_default(&a, FXP_GRAPH_MODEL_GNF);
        b = a;
        a.lr = 0.1 + 1e-15;
        a.lr_decay = 0.8888888888888888;
        a.clip_norm = 1.0 / 3.0;
        a.scale_bound = 1.0f / 3.0f;
        const char *keys[4] = { "lr", "lr_decay", "clip_norm", "scale_bound" };
        for (int i = 0; i < 4; i++) {
            char buf[64];
            ck_assert_ok(fxp_graph_model_config_get(&a, keys[i], buf, sizeof buf));
            ck_assert_ok(fxp_graph_model_config_set(&b, keys[i], buf));
        }
        ck_assert_int_eq(memcmp(&a, &b, sizeof a), 0);
        char buf[64];
        a.lr = 0.003;
        ck_assert_ok(fxp_graph_model_config_get(&a, "lr", buf, sizeof buf));
        ck_assert_str_eq(buf, "0.003");
    }
    /* every key has a one-line meaning; named values are listed in it */
    for (int i = 0; i < fxp_graph_model_config_n_keys(); i++) {
        const char *help = fxp_graph_model_config_key_help(i);
        ck_assert_ptr_nonnull(help);
        ck_assert_int_gt((int)strlen(help), 10);
        ck_assert_ptr_null(strchr(help, '\n'));
    }
    ck_assert_ptr_nonnull(strstr(fxp_graph_model_config_key_help(0), "gnf-gce"));
    ck_assert_ptr_null(fxp_graph_model_config_key_help(-1));
    ck_assert_ptr_null(fxp_graph_model_config_key_help(fxp_graph_model_config_n_keys()));
    fxp_graph_model_config c;
    fxp_graph_model_config_default(&c, FXP_GRAPH_MODEL_COUPLING);
    char buf[32];
    ck_assert_ok(fxp_graph_model_config_set(&c, "kind", "gnf-gce"));
    ck_assert_int_eq(c.kind, FXP_GRAPH_MODEL_GNF_GCE);
    ck_assert_ok(fxp_graph_model_config_set(&c, "lr", "3e-4"));
    ck_assert_double_eq(c.lr, 3e-4);
    ck_assert_ok(fxp_graph_model_config_set(&c, "act", "tanh"));
    ck_assert_ok(fxp_graph_model_config_get(&c, "act", buf, sizeof buf));
    ck_assert_str_eq(buf, "tanh");
    ck_assert_ok(fxp_graph_model_config_set(&c, "base", "diag"));
    ck_assert_int_eq(c.base, FXP_BASE_DIAG_NORMAL);
    ck_assert_ok(fxp_graph_model_config_set(&c, "scale_bound", "2.5"));
    ck_assert_float_eq(c.scale_bound, 2.5f);
    fxp_graph_model_config before;
    memcpy(&before, &c, sizeof c);
    ck_assert_fails(fxp_graph_model_config_set(&c, "nope", "1"), FXP_ENOTFOUND, NULL);
    ck_assert_fails(fxp_graph_model_config_set(&c, "hidden", "12x"), FXP_EINVAL, NULL);
    ck_assert_fails(fxp_graph_model_config_set(&c, "hidden", "2.5"), FXP_EINVAL, NULL);
    ck_assert_fails(fxp_graph_model_config_set(&c, "hidden", "0"), FXP_EINVAL, NULL);
    ck_assert_fails(fxp_graph_model_config_set(&c, "lr", "-1"), FXP_EINVAL, NULL);
    ck_assert_fails(fxp_graph_model_config_set(&c, "kind", "glow"), FXP_EINVAL, NULL);
    ck_assert_fails(fxp_graph_model_config_set(&c, "actnorm", "2"), FXP_EINVAL, NULL);
    ck_assert_fails(fxp_graph_model_config_get(&c, "nope", buf, sizeof buf), FXP_ENOTFOUND, NULL);
    ck_assert_fails(fxp_graph_model_config_get(&c, "kind", buf, 3), FXP_EINVAL, NULL);
    ck_assert_int_eq(memcmp(&before, &c, sizeof c), 0);
    fxp_graph_model_kind kind;
    ck_assert_ok(fxp_graph_model_kind_parse("gnf", &kind));
    ck_assert_int_eq(kind, FXP_GRAPH_MODEL_GNF);
    ck_assert_str_eq(fxp_graph_model_kind_name(FXP_GRAPH_MODEL_COUPLING), "coupling");
    ck_assert_fails(fxp_graph_model_kind_parse("GNF", &kind), FXP_EINVAL, NULL);
    c.hidden = -4;
    ck_assert_fails(fxp_graph_model_config_validate(NULL, &c), FXP_EINVAL, NULL);
    ck_assert_ptr_nonnull(strstr(fxp_last_error(), "hidden"));
}
END_TEST

static Suite *graphflow_suite(void)
{
    Suite *s = suite_create("graphflow");
    TCase *tc = tcase_create("layers");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_layer_roundtrip_logdet, 0, 2);
    tcase_add_test(tc, test_coupling_adjacency_use);
    tcase_add_test(tc, test_actnorm_init);
    tcase_add_test(tc, test_layer_input_gradcheck);
    tcase_add_test(tc, test_layer_errors);
    suite_add_tcase(s, tc);
    tc = tcase_create("models");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_model_flow_roundtrip_logdet, 0, 3);
    tcase_add_loop_test(tc, test_model_permutation_invariance, 0, 3);
    tcase_add_loop_test(tc, test_model_variable_n_and_sample, 0, 3);
    tcase_add_loop_test(tc, test_model_param_gradients, 0, 3);
    tcase_add_loop_test(tc, test_model_input_gradcheck, 0, 3);
    tcase_add_test(tc, test_model_errors);
    tcase_add_test(tc, test_model_param_names);
    tcase_add_test(tc, test_config_keys);
    suite_add_tcase(s, tc);
    return s;
}

FXP_TEST_MAIN(graphflow_suite)
