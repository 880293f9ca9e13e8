/* Data-parallel training over MPI (flowexp/dist.h), run by check-dist.sh
 * under `mpirun -np K` for K = 1, 2, 3.
 *
 * A plain program, not a Check suite: Check forks every test and an MPI
 * process must not fork.  Every rank runs every check in the same order; a
 * failed check prints the rank and line and is counted (exit status 1 on that
 * rank, so mpirun exits non-zero).  An unexpected failure of a collective
 * calls MPI_Abort: the other ranks would otherwise block in the next one.
 *
 *   check-dist            all checks (rank 0 prints one summary line per
 *                         training run, with a hash of the final parameters
 *                         that check-dist.sh compares between two runs)
 *   check-dist --abort    the fault recipe of dist.h: the last rank fails
 *                         outside a collective and calls MPI_Abort while the
 *                         others wait in fxp_dist_grad_mean; mpirun must end
 *                         the whole job with a non-zero status
 */
#include <mpi.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowexp.h"
#include "flowexp/graphflow.h"

static int g_rank, g_size, g_fails;

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (!(cond)) {                                                       \
            g_fails++;                                                       \
            fprintf(stderr, "rank %d: FAIL %s:%d: %s: ", g_rank, __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                    \
            fputc('\n', stderr);                                             \
        }                                                                    \
    } while (0)

/* Must succeed; otherwise end the whole job (peers may be inside a
 * collective). */
#define OK(expr)                                                             \
    do {                                                                     \
        int rc_ = (expr);                                                    \
        if (rc_ != FXP_OK) {                                                 \
            fprintf(stderr, "rank %d: FATAL %s:%d: %s -> %s: %s\n", g_rank, __FILE__, __LINE__, \
                    #expr, fxp_status_name(rc_), fxp_last_error());          \
            MPI_Abort(MPI_COMM_WORLD, 1);                                    \
        }                                                                    \
    } while (0)

/* Must fail with `code` and leave a message in the thread's last error and,
 * if ctx is not NULL, in the context. */
#define FAILS(expr, code, ctx)                                               \
    do {                                                                     \
        fxp_ctx *c_ = (ctx);                                                 \
        if (c_) fxp_ctx_clear_error(c_);                                     \
        int rc_ = (expr);                                                    \
        CHECK(rc_ == (code), "%s -> %s, expected %s (%s)", #expr, fxp_status_name(rc_), \
              fxp_status_name(code), fxp_last_error());                      \
        CHECK(fxp_last_error()[0] != '\0', "%s: empty message", #expr);      \
        if (c_)                                                              \
            CHECK(fxp_ctx_status(c_) == (code) && fxp_ctx_error(c_)[0] != '\0', \
                  "%s: the context holds no error", #expr);                  \
    } while (0)

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* x_r: rank r's test vector, a pure function of (r, n, seed), scaled by
 * 10^(r mod 3) with occasional large entries, and every 11th entry 1e30 on
 * rank 0, -1e30 on rank 1 and 1 on the others, whose sum in rank order is
 * K - 2 but 0 in reverse order: the order of the summation shows in the
 * result (float terms summed in double are otherwise mostly exact). */
static void rank_vector(int r, size_t n, uint64_t seed, float *x)
{
    fxp_rng rng;
    fxp_rng_seed(&rng, seed * 1000 + (uint64_t)r);
    fxp_rng_normal(&rng, x, n, 0.0f, 1.0f);
    const float scale[3] = { 1.0f, 10.0f, 100.0f };
    for (size_t i = 0; i < n; i++) {
        x[i] *= scale[r % 3];
        if (i % 7 == 3) x[i] *= 3e4f;
        if (i % 11 == 5) x[i] = r == 0 ? 1e30f : r == 1 ? -1e30f : 1.0f;
    }
}

/* ---- before MPI_Init and pure helpers ------------------------------------ */

static void test_shard(void)
{
    int64_t off, cnt, total = 0;
    const int64_t want[3][2] = { { 0, 3 }, { 3, 2 }, { 5, 2 } };
    for (int r = 0; r < 3; r++) {
        fxp_dist_shard(7, 3, r, &off, &cnt);
        CHECK(off == want[r][0] && cnt == want[r][1], "shard(7, 3, %d) = [%lld, +%lld)", r,
              (long long)off, (long long)cnt);
        total += cnt;
    }
    CHECK(total == 7, "shards of 7 cover %lld", (long long)total);
    fxp_dist_shard(2, 3, 2, &off, &cnt);
    CHECK(off == 2 && cnt == 0, "shard(2, 3, 2) = [%lld, +%lld)", (long long)off, (long long)cnt);
    fxp_dist_shard(5, 2, 2, &off, &cnt);
    CHECK(off == 0 && cnt == 0, "a rank outside the size gets nothing");
    fxp_dist_shard(-1, 2, 0, &off, &cnt);
    CHECK(off == 0 && cnt == 0, "a negative n gives nothing");
}

/* ---- argument and state errors, MPI errors, agreement -------------------- */

static void test_errors(fxp_ctx *ctx, fxp_dist *d)
{
    const int K = g_size, last = K - 1;
    fxp_dist *d2 = (fxp_dist *)1;
    MPI_Comm world = MPI_COMM_WORLD, null_comm = MPI_COMM_NULL;
    FAILS(fxp_dist_new(ctx, NULL, &d2), FXP_EINVAL, ctx);
    CHECK(d2 == NULL, "*out is cleared on failure");
    FAILS(fxp_dist_new(NULL, &world, &d2), FXP_EINVAL, NULL);
    FAILS(fxp_dist_new(ctx, &world, NULL), FXP_EINVAL, ctx);
    FAILS(fxp_dist_new(ctx, &null_comm, &d2), FXP_EINVAL, ctx);
    CHECK(fxp_dist_rank(NULL) == 0 && fxp_dist_size(NULL) == 1, "NULL handle: rank 0 of 1");
    CHECK(fxp_dist_rank(d) == g_rank && fxp_dist_size(d) == K, "rank %d of %d", fxp_dist_rank(d),
          fxp_dist_size(d));

    fxp_params *ps, *ps2;
    fxp_param *p;
    OK(fxp_params_new(ctx, &ps));
    OK(fxp_params_add(ps, "w", FXP_PARAM_TRAINABLE, 1, (int[]){ 5 }, &p));
    /* local argument errors: every rank fails alike, nothing is exchanged */
    FAILS(fxp_dist_grad_mean(NULL, ps), FXP_EINVAL, NULL);
    FAILS(fxp_dist_grad_mean(d, NULL), FXP_EINVAL, ctx);
    FAILS(fxp_dist_grad_mean(d, ps), FXP_ESTATE, ctx); /* layout never checked */
    FAILS(fxp_dist_bcast_params(d, ps, K), FXP_EINVAL, ctx);
    FAILS(fxp_dist_bcast_params(d, ps, -1), FXP_EINVAL, ctx);
    int buf[4] = { 0 };
    FAILS(fxp_dist_bcast(d, buf, 4, (fxp_dist_type)99, 0), FXP_EINVAL, ctx);
    FAILS(fxp_dist_bcast(d, NULL, 4, FXP_DIST_INT, 0), FXP_EINVAL, ctx);
    FAILS(fxp_dist_bcast(d, buf, 4, FXP_DIST_INT, K), FXP_EINVAL, ctx);
    FAILS(fxp_dist_sum(d, NULL, 2), FXP_EINVAL, ctx);
    FAILS(fxp_dist_params_identical(d, ps, NULL), FXP_EINVAL, ctx);
    OK(fxp_dist_bcast(d, NULL, 0, FXP_DIST_INT, 0)); /* nothing to send is fine */

    /* errors found in exchanged data: every rank returns the same status */
    FAILS(fxp_dist_grad_weighted(d, ps, g_rank == last ? -1 : 2), FXP_EINVAL, ctx);
    FAILS(fxp_dist_grad_weighted(d, ps, 0), FXP_EINVAL, ctx); /* C = 0 */
    OK(fxp_params_new(ctx, &ps2));
    OK(fxp_params_add(ps2, "w", FXP_PARAM_TRAINABLE, 1, (int[]){ 5 }, &p));
    if (K > 1) {
        if (g_rank == last) OK(fxp_params_add(ps2, "extra", FXP_PARAM_STATE, 1, (int[]){ 1 }, &p));
        FAILS(fxp_dist_bcast_params(d, ps2, 0), FXP_EMISMATCH, ctx);
        CHECK(strstr(fxp_last_error(), "differ") != NULL, "message: %s", fxp_last_error());
        int same = -1;
        FAILS(fxp_dist_params_identical(d, ps2, &same), FXP_EMISMATCH, ctx);
        CHECK(same == 0, "identical = %d after a layout mismatch", same);
        if (g_rank == last)
            OK(fxp_params_add(ps2, "more", FXP_PARAM_TRAINABLE, 1, (int[]){ 2 }, &p));
        FAILS(fxp_dist_grad_weighted(d, ps2, 1), FXP_EMISMATCH, ctx);
    }
    /* same names, different shapes but equal sizes: caught by the layout hash */
    fxp_params *ps3;
    OK(fxp_params_new(ctx, &ps3));
    OK(fxp_params_add(ps3, "w", FXP_PARAM_TRAINABLE, 2,
                      g_rank == last && K > 1 ? (int[]){ 3, 2 } : (int[]){ 2, 3 }, &p));
    if (K > 1) FAILS(fxp_dist_bcast_params(d, ps3, 0), FXP_EMISMATCH, ctx);
    else OK(fxp_dist_bcast_params(d, ps3, 0));

    /* agreement on a failure */
    int failed = -2;
    OK(fxp_dist_agree(d, 0, &failed));
    CHECK(failed == -1, "no failure, failed_rank %d", failed);
    OK(fxp_dist_agree(d, g_rank == last ? FXP_EIO : 0, &failed));
    CHECK(failed == last, "rank %d failed, failed_rank %d", last, failed);
    FAILS(fxp_dist_agree(d, 0, NULL), FXP_EINVAL, ctx);

    /* An MPI error comes back as FXP_EIO with MPI's message: on a
     * sub-communicator of ranks 0 and 1, rank 0 broadcasts 64 ints and rank 1
     * expects 4 (MPI_ERR_TRUNCATE on rank 1). */
    if (K >= 2) {
        MPI_Comm sub;
        MPI_Comm_split(MPI_COMM_WORLD, g_rank < 2 ? 0 : MPI_UNDEFINED, g_rank, &sub);
        if (sub != MPI_COMM_NULL) {
            fxp_dist *ds;
            OK(fxp_dist_new_comm(ctx, sub, &ds));
            int big[64];
            for (int i = 0; i < 64; i++) big[i] = i;
            if (g_rank == 0) {
                OK(fxp_dist_bcast(ds, big, 64, FXP_DIST_INT, 0));
            } else {
                FAILS(fxp_dist_bcast(ds, big, 4, FXP_DIST_INT, 0), FXP_EIO, ctx);
                CHECK(strstr(fxp_last_error(), "MPI_Bcast") && strstr(fxp_last_error(), "TRUNCATE"),
                      "message: %s", fxp_last_error());
            }
            fxp_dist_free(ds);
            MPI_Comm_free(&sub);
        }
    }
    fxp_params_free(ps);
    fxp_params_free(ps2);
    fxp_params_free(ps3);
    MPI_Barrier(MPI_COMM_WORLD);
}

/* ---- the reductions against their documented formula ---------------------- */

/* Every rank's gradient block is rank_vector(rank); the result must equal,
 * bit for bit, the formula of dist.h evaluated here from all ranks' vectors
 * (which every rank can generate), with weights c_r (NULL: mean). */
static void expect_formula(size_t n, uint64_t seed, const int64_t *c, float *want, float *tmp)
{
    const int K = g_size;
    double total = 0;
    for (int r = 0; r < K; r++) total += c ? (double)c[r] : 1.0;
    double *acc = calloc(n, sizeof *acc);
    int *started = calloc(n, sizeof *started);
    for (int r = 0; r < K; r++) {
        const double w = c ? (double)c[r] : 1.0;
        if (w == 0) continue;
        rank_vector(r, n, seed, tmp);
        for (size_t i = 0; i < n; i++) {
            const double t = w * (double)tmp[i];
            acc[i] = started[i] ? acc[i] + t : t;
            started[i] = 1;
        }
    }
    for (size_t i = 0; i < n; i++) want[i] = (float)(acc[i] * (1.0 / total));
    free(acc);
    free(started);
}

static void test_reduce(fxp_ctx *ctx, fxp_dist *d, size_t n, uint64_t seed)
{
    const int K = g_size;
    fxp_params *ps;
    fxp_param *p;
    OK(fxp_params_new(ctx, &ps));
    OK(fxp_params_add(ps, "g", FXP_PARAM_TRAINABLE, 1, (int[]){ (int)n }, &p));
    OK(fxp_dist_bcast_params(d, ps, 0));
    float *g = fxp_params_grad_data(ps), *want = malloc(n * sizeof *want),
          *tmp = malloc(n * sizeof *tmp);

    /* mean */
    rank_vector(g_rank, n, seed, g);
    OK(fxp_dist_grad_mean(d, ps));
    expect_formula(n, seed, NULL, want, tmp);
    CHECK(memcmp(g, want, n * sizeof *g) == 0, "n = %zu: the mean differs from the formula", n);
    /* against the exact mean: the only error is the final rounding to float */
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        long double s = 0;
        for (int r = 0; r < K; r++) {
            rank_vector(r, i + 1, seed, tmp); /* prefix of the same stream */
            s += tmp[i];
        }
        const double e = fabs((double)(s / K) - g[i]) / fmax(1e-30, fabs((double)(s / K)));
        if (e > worst) worst = e;
        if (i >= 40) break; /* the prefix trick is O(n^2): a sample suffices */
    }
    CHECK(worst < 1e-6, "relative error of the mean %.3g", worst);

    /* the thread count of the combining loop does not change a bit */
    fxp_ctx_set_threads(ctx, 2);
    rank_vector(g_rank, n, seed, g);
    OK(fxp_dist_grad_mean(d, ps));
    CHECK(memcmp(g, want, n * sizeof *g) == 0, "n = %zu: 2 threads changed the mean", n);
    fxp_ctx_set_threads(ctx, 1);

    /* weighted, rank 1 with count 0 and a NaN gradient that must be ignored */
    int64_t c[64];
    for (int r = 0; r < K; r++) c[r] = r == 1 ? 0 : 2 * r + 3;
    rank_vector(g_rank, n, seed, g);
    if (g_rank == 1) g[0] = NAN;
    OK(fxp_dist_grad_weighted(d, ps, c[g_rank]));
    expect_formula(n, seed, c, want, tmp);
    CHECK(memcmp(g, want, n * sizeof *g) == 0, "n = %zu: the weighted mean differs from the "
          "formula", n);
    CHECK(isfinite(g[0]), "a zero-count rank's NaN leaked into the result");

    /* a NaN on a counted rank reaches every rank */
    rank_vector(g_rank, n, seed, g);
    if (g_rank == K - 1) g[n - 1] = NAN;
    OK(fxp_dist_grad_mean(d, ps));
    CHECK(isnan(g[n - 1]), "NaN did not propagate");

    free(want);
    free(tmp);
    fxp_params_free(ps);
}

static void test_sum_and_bcast(fxp_ctx *ctx, fxp_dist *d)
{
    const int K = g_size, root = K - 1;
    /* left to right in rank order: 1e16 - 1e16 + 1 + ... = K - 2, but 0 in
     * reverse order */
    double x[3] = { g_rank == 0 ? 1e16 : g_rank == 1 ? -1e16 : 1.0, g_rank + 0.1, -0.0 };
    OK(fxp_dist_sum(d, x, 3));
    double want[3] = { 0, 0, -0.0 };
    for (int r = 0; r < K; r++) {
        const double v0 = r == 0 ? 1e16 : r == 1 ? -1e16 : 1.0, v1 = r + 0.1;
        want[0] = r ? want[0] + v0 : v0;
        want[1] = r ? want[1] + v1 : v1;
    }
    CHECK(memcmp(x, want, sizeof x) == 0, "sum {%.17g, %.17g, %g}, want {%.17g, %.17g, %g}",
          x[0], x[1], x[2], want[0], want[1], want[2]);
    CHECK(signbit(x[2]), "-0 + -0 must stay -0");

    int iv[5];
    double dv[3];
    fxp_rng rng;
    char text[32];
    for (int i = 0; i < 5; i++) iv[i] = g_rank == root ? 10 * i + 1 : -7;
    for (int i = 0; i < 3; i++) dv[i] = g_rank == root ? 0.1 * i : NAN;
    fxp_rng_seed(&rng, (uint64_t)g_rank);
    if (g_rank == root) fxp_rng_u64(&rng);
    snprintf(text, sizeof text, "from rank %d", g_rank);
    OK(fxp_dist_bcast(d, iv, 5, FXP_DIST_INT, root));
    OK(fxp_dist_bcast(d, dv, 3, FXP_DIST_DOUBLE, root));
    OK(fxp_dist_bcast(d, &rng, 2, FXP_DIST_UINT64, root));
    OK(fxp_dist_bcast(d, text, sizeof text, FXP_DIST_BYTE, root));
    int good = 1;
    for (int i = 0; i < 5; i++) good &= iv[i] == 10 * i + 1;
    for (int i = 0; i < 3; i++) good &= dv[i] == 0.1 * i;
    good &= rng.seed == (uint64_t)root && rng.counter == 1;
    char want_text[32];
    snprintf(want_text, sizeof want_text, "from rank %d", root);
    good &= strcmp(text, want_text) == 0;
    CHECK(good, "broadcast values differ from root %d's", root);
    (void)ctx;
}

/* ---- data-parallel training against one process --------------------------- */

enum { DATA_N = 64, VALID_N = 20, STEPS = 12 };

typedef struct run {
    fxp_params *ps;
    fxp_model *m;
    fxp_optim *opt;
    fxp_tape *t;
} run;

static void run_new(fxp_ctx *ctx, run *r, uint64_t seed, double eps)
{
    fxp_graph_model_config cfg;
    fxp_graph_model_config_default(&cfg, FXP_GRAPH_MODEL_GNF_GCE);
    cfg.features = 2;
    cfg.couplings = 2;
    cfg.hidden = 8;
    cfg.mlp_layers = 2;
    cfg.rounds = 1;
    cfg.actnorm = 1;
    cfg.linear = 1;
    cfg.base = FXP_BASE_DIAG_NORMAL;
    fxp_rng rng;
    fxp_rng_seed(&rng, seed);
    OK(fxp_params_new(ctx, &r->ps));
    OK(fxp_graph_model_new(ctx, r->ps, &cfg, &rng, &r->m));
    fxp_optim_config oc;
    fxp_optim_config_default(&oc, FXP_OPTIM_ADAM);
    oc.lr = 5e-3;
    oc.clip_norm = 5.0;
    oc.eps = eps;
    OK(fxp_optim_new(ctx, r->ps, &oc, &r->opt));
    OK(fxp_tape_new(ctx, &r->t));
}

static void run_free(run *r)
{
    fxp_tape_free(r->t);
    fxp_optim_free(r->opt);
    fxp_model_free(r->m);
    fxp_params_free(r->ps);
}

/* Rows [off, off + n) of global batch `step` (B rows of the data, wrapping)
 * into x [n, 4, 2]. */
static void batch_rows(const float *data, int B, int step, int64_t off, int64_t n, float *x)
{
    const size_t row = 4 * 2;
    for (int64_t j = 0; j < n; j++)
        memcpy(x + (size_t)j * row, data + (size_t)((step * B + off + j) % DATA_N) * row,
               row * sizeof(float));
}

/* Sum over the n graphs of -log p(x)/N (nats per node), in double; with
 * gradients of the mean (loss -mean log p / N) if train. */
static double forward(run *r, const fxp_tensor *adj, float *x, int64_t n, int train)
{
    if (n == 0) return 0;
    fxp_tape_reset(r->t);
    fxp_tape_set_grad_enabled(r->t, train);
    int shape[3] = { (int)n, 4, 2 };
    fxp_tensor xt = fxp_tensor_wrap(x, 3, shape);
    fxp_flow_io io = { .training = train, .adj = adj };
    fxp_var *vx, *lp, *loss;
    OK(fxp_tape_input(r->t, &vx, &xt, 0));
    OK(fxp_model_log_prob(r->m, r->t, &io, vx, &lp));
    double s = 0;
    for (int64_t b = 0; b < n; b++) s -= lp->value.data[b] / 4.0;
    if (train) {
        OK(fxp_mean(r->t, &loss, lp, FXP_AXES_ALL, 0));
        OK(fxp_scale(r->t, &loss, loss, -1.0f / 4));
        OK(fxp_tape_backward(r->t, loss, NULL));
    }
    return s;
}

/* The data-dependent initialisation (actnorm) on the global first batch: a
 * training forward without gradients. */
static void init_forward(run *r, const fxp_tensor *adj, const float *data, int B, float *x)
{
    batch_rows(data, B, 0, 0, B, x);
    fxp_tape_reset(r->t);
    fxp_tape_set_grad_enabled(r->t, 0);
    int shape[3] = { B, 4, 2 };
    fxp_tensor xt = fxp_tensor_wrap(x, 3, shape);
    fxp_flow_io io = { .training = 1, .adj = adj };
    fxp_var *vx, *lp;
    OK(fxp_tape_input(r->t, &vx, &xt, 0));
    OK(fxp_model_log_prob(r->m, r->t, &io, vx, &lp));
}

static double max_abs_diff(const float *a, const float *b, size_t n, double *scale)
{
    double m = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        const double e = fabs((double)a[i] - (double)b[i]);
        if (!(e <= m)) m = e;
        if (fabs((double)b[i]) > s) s = fabs((double)b[i]);
    }
    *scale = s;
    return m;
}

/* Train STEPS steps of Adam (epsilon eps) on K ranks with global batch B
 * (each rank its shard, weighted or plain mean), checking after every step
 * that all ranks hold the same bits, while rank 0 trains one process on the
 * same global batches, seed and thread count.  Compared: the gradient of
 * step 1 (same parameters on both sides, so only the summation order
 * differs), the losses, and the parameters after STEPS steps if `strict`.
 *
 * Why not always the parameters: Adam's step lr m/(sqrt(v) + eps) is
 * invariant to the gradient's scale, so a component whose gradient is pure
 * rounding noise (zero in exact arithmetic: a cancelling sum, or the first
 * steps behind a zero-initialised layer) moves by about +-lr whichever sign
 * the noise has.  With the default eps = 1e-8 the K-rank and one-process
 * runs part by ~lr in such components after a few steps (0.004-0.01 here,
 * lr 5e-3), which is the optimizer's sensitivity, not the reduction's; with
 * eps = 1e-3 the step is Lipschitz in the gradient for small components and
 * the two runs stay within float rounding. */
static void test_train(fxp_ctx *ctx, fxp_dist *d, int B, int weighted, double eps, int strict)
{
    const int K = g_size;
    const uint64_t seed = 5;
    float *data = malloc(sizeof(float) * DATA_N * 8), *valid = malloc(sizeof(float) * VALID_N * 8),
          *x = malloc(sizeof(float) * (size_t)(B > VALID_N ? B : VALID_N) * 8);
    fxp_rng rng;
    fxp_rng_seed(&rng, 11);
    OK(fxp_mog_sample(ctx, FXP_MOG4, &rng, DATA_N, data));
    OK(fxp_mog_sample(ctx, FXP_MOG4, &rng, VALID_N, valid));
    fxp_tensor adj;
    OK(fxp_graph_complete_adjacency(ctx, 4, &adj));

    /* every rank builds the model from its own seed; rank 0 initialises on
     * the global batch, and the broadcast makes all ranks equal */
    run dr;
    run_new(ctx, &dr, seed + (uint64_t)g_rank, eps);
    if (g_rank == 0) init_forward(&dr, &adj, data, B, x);
    int same = -1;
    OK(fxp_dist_params_identical(d, dr.ps, &same));
    CHECK(same == (K == 1), "before the broadcast: identical = %d with %d ranks", same, K);
    OK(fxp_dist_bcast_params(d, dr.ps, 0));
    OK(fxp_dist_params_identical(d, dr.ps, &same));
    CHECK(same == 1, "after the broadcast: identical = %d", same);

    /* rank 0 also trains one process on the same seed, initialisation,
     * global batches and thread count, step by step beside the ranks */
    run ref;
    if (g_rank == 0) {
        run_new(ctx, &ref, seed, eps);
        init_forward(&ref, &adj, data, B, x);
    }
    float *xr = malloc(sizeof(float) * (size_t)B * 8);
    int64_t off, n;
    fxp_dist_shard(B, K, g_rank, &off, &n);
    double loss_diff = 0, grad_diff = 0, grad_scale = 0;
    int all_same = 1;
    for (int s = 0; s < STEPS; s++) {
        batch_rows(data, B, s, off, n, x);
        fxp_params_zero_grad(dr.ps);
        double sums[2] = { forward(&dr, &adj, x, n, 1), (double)n };
        if (weighted) OK(fxp_dist_grad_weighted(d, dr.ps, n));
        else OK(fxp_dist_grad_mean(d, dr.ps));
        OK(fxp_dist_sum(d, sums, 2));
        CHECK(sums[1] == B, "the counts add up to %g, not %d", sums[1], B);
        if (g_rank == 0) {
            batch_rows(data, B, s, 0, B, xr);
            fxp_params_zero_grad(ref.ps);
            const double l = forward(&ref, &adj, xr, B, 1) / B;
            loss_diff = fmax(loss_diff, fabs(l - sums[0] / sums[1]));
            if (s == 0) /* the same parameters: only the reduction differs */
                grad_diff = max_abs_diff(fxp_params_grad_data(dr.ps), fxp_params_grad_data(ref.ps),
                                         fxp_params_size(ref.ps, FXP_PARAM_TRAINABLE), &grad_scale);
            OK(fxp_optim_step(ref.opt, NULL));
        }
        OK(fxp_optim_step(dr.opt, NULL));
        OK(fxp_dist_params_identical(d, dr.ps, &same));
        all_same &= same;
        CHECK(same == 1, "step %d: the ranks' parameters differ", s + 1);
    }

    /* evaluation sums: each rank its shard of the validation set */
    fxp_dist_shard(VALID_N, K, g_rank, &off, &n);
    batch_rows(valid, VALID_N, 0, off, n, x);
    double ev[2] = { forward(&dr, &adj, x, n, 0), (double)n };
    OK(fxp_dist_sum(d, ev, 2));

    if (g_rank == 0) {
        /* the same evaluation in one batch on this rank's model */
        batch_rows(valid, VALID_N, 0, 0, VALID_N, x);
        const double ev1 = forward(&dr, &adj, x, VALID_N, 0) / VALID_N, evk = ev[0] / ev[1];
        CHECK(ev[1] == VALID_N && fabs(ev1 - evk) <= 1e-5 * fabs(ev1),
              "evaluation over %d ranks %.9g, in one batch %.9g", K, evk, ev1);

        const size_t nt = fxp_params_size(ref.ps, FXP_PARAM_TRAINABLE),
                     ns = fxp_params_size(ref.ps, FXP_PARAM_STATE);
        double scale, scale_s;
        const double dt = max_abs_diff(fxp_params_data(dr.ps, FXP_PARAM_TRAINABLE),
                                       fxp_params_data(ref.ps, FXP_PARAM_TRAINABLE), nt, &scale);
        const double ds = max_abs_diff(fxp_params_data(dr.ps, FXP_PARAM_STATE),
                                       fxp_params_data(ref.ps, FXP_PARAM_STATE), ns, &scale_s);
        const int bitwise =
            !memcmp(fxp_params_data(dr.ps, FXP_PARAM_TRAINABLE),
                    fxp_params_data(ref.ps, FXP_PARAM_TRAINABLE), nt * sizeof(float)) &&
            !memcmp(fxp_params_data(dr.ps, FXP_PARAM_STATE),
                    fxp_params_data(ref.ps, FXP_PARAM_STATE), ns * sizeof(float));
        /* One process sums the batch in its kernels' order, K ranks in shards
         * and then across ranks: float rounding, ~1e-7 of the gradient's
         * scale (measured 1e-6 at most); after 12 steps with eps = 1e-3 the
         * parameters, state and losses differ by ~2e-7 (measured).  K = 1
         * runs the very same arithmetic: bit-identical. */
        if (K == 1) CHECK(bitwise, "one rank differs from one process: %.3g", dt);
        CHECK(grad_diff <= 1e-5 * grad_scale, "K = %d vs one process, step 1: gradients differ "
              "by %.3g (scale %.3g)", K, grad_diff, grad_scale);
        if (strict)
            CHECK(dt <= 1e-5 * fmax(1, scale) && ds <= 1e-5 * fmax(1, scale_s) &&
                      loss_diff <= 1e-5,
                  "K = %d vs one process: params %.3g (scale %.3g), state %.3g, loss %.3g", K,
                  dt, scale, ds, loss_diff);
        uint64_t h = fnv1a(0xcbf29ce484222325ull, fxp_params_data(dr.ps, FXP_PARAM_TRAINABLE),
                           nt * sizeof(float));
        h = fnv1a(h, fxp_params_data(dr.ps, FXP_PARAM_STATE), ns * sizeof(float));
        printf("K=%d B=%d %s eps=%g: %d steps, %zu+%zu floats, ranks bit-identical after every "
               "step: %s; vs one process: step-1 gradient %.3g (max |g| %.3g), after %d steps "
               "params %.3g (max |param| %.3g), state %.3g, loss %.3g%s; params fnv64 %016llx\n",
               K, B, weighted ? "weighted" : "mean", eps, STEPS, nt, ns, all_same ? "yes" : "NO",
               grad_diff, grad_scale, STEPS, dt, scale, ds, loss_diff,
               bitwise ? " (bit-identical)" : "", (unsigned long long)h);
        fflush(stdout);
    }
    if (g_rank == 0) run_free(&ref);
    run_free(&dr);
    free(xr);
    fxp_tensor_release(&adj);
    free(data);
    free(valid);
    free(x);
    MPI_Barrier(MPI_COMM_WORLD);
}

int main(int argc, char **argv)
{
    fxp_ctx *ctx;
    if (fxp_ctx_new(&ctx) < 0 || fxp_ctx_set_threads(ctx, 1) < 0) {
        fprintf(stderr, "check-dist: %s\n", fxp_last_error());
        return 1;
    }
    if (!fxp_dist_available()) {
        fprintf(stderr, "check-dist: libflowexp was built without MPI\n");
        return 77;
    }
    test_shard();
    fxp_dist *d = NULL;
    FAILS(fxp_dist_new_comm(ctx, MPI_COMM_WORLD, &d), FXP_ESTATE, ctx); /* before MPI_Init */

    int provided;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    OK(fxp_dist_new_comm(ctx, MPI_COMM_WORLD, &d));

    if (argc > 1 && !strcmp(argv[1], "--abort")) {
        fxp_params *ps;
        fxp_param *p;
        OK(fxp_params_new(ctx, &ps));
        OK(fxp_params_add(ps, "w", FXP_PARAM_TRAINABLE, 1, (int[]){ 1000 }, &p));
        OK(fxp_dist_bcast_params(d, ps, 0));
        if (g_rank == g_size - 1) {
            fprintf(stderr, "rank %d: simulated failure outside a collective, calling MPI_Abort\n",
                    g_rank);
            MPI_Abort(MPI_COMM_WORLD, 3);
        }
        fxp_dist_grad_mean(d, ps); /* blocks until mpirun ends the job */
        fprintf(stderr, "rank %d: fxp_dist_grad_mean returned without the failed rank\n", g_rank);
        MPI_Finalize();
        return 1;
    }
    test_errors(ctx, d);
    test_reduce(ctx, d, 7, 1);       /* allgather path */
    test_reduce(ctx, d, 300007, 2);  /* reduce-scatter + allgather path, 2 threads tried */
    test_sum_and_bcast(ctx, d);
    test_train(ctx, d, 6, 0, 1e-3, 1); /* K divides B: plain mean */
    test_train(ctx, d, 7, 1, 1e-3, 1); /* uneven shards: weighted */
    test_train(ctx, d, 7, 1, 1e-8, 0); /* Adam's default eps: reported */

    fxp_dist_free(d);
    int total = 0;
    MPI_Allreduce(&g_fails, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (g_rank == 0) printf("check-dist: %d rank(s), %d failed check(s)\n", g_size, total);
    MPI_Finalize();
    FAILS(fxp_dist_new_comm(ctx, MPI_COMM_WORLD, &d), FXP_ESTATE, ctx); /* after MPI_Finalize */
    fxp_ctx_free(ctx);
    return g_fails ? 1 : 0;
}
