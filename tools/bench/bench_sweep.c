/* Benchmark (not a test): the exponentials over the sweep of issue 10 —
 * convolution exponential forward (6 terms), inverse (13 terms) and
 * forward + backward (6 terms) for C = 3 ... 256 and H = W = 8, 16, 32, 3x3
 * kernels; graph convolution exponential forward (6 terms) for F = 2, 16,
 * 64 and N = 4 ... 64 on complete and random graphs; the raw-buffer
 * functions (which make a context per call) against the context path.
 * tools/bench/peer_sweep.py times the same cases with the PyTorch peer, and
 * tools/bench/compare_sweep.py runs both group by group and prints ratios.
 *
 *   build/tools/bench/bench_sweep [--threads 1,2] [--group NAME] [--quick] [--json FILE]
 *
 * Groups: conv-fwd, conv-inv, conv-fwdbwd, graph-fwd, raw (default: all).
 * The batch of a convolution case is 196608 / (C H W) images, clamped to
 * [1, 64] (64x12x16x16 is the original benchmark's size); graph cases use
 * 128 graphs.  fwd+bwd: gradients of sum(y) with respect to x and the
 * kernel, as the peer computes them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_conv_cases.h"
#include "bench_util.h"
#include "blas/blas.h"
#include "core/internal.h"

#ifdef _OPENMP
#include <omp.h>
#endif

static const int conv_c[] = { 3, 6, 12, 24, 32, 48, 64, 96, 128, 192, 256 };
static const int conv_h[] = { 8, 16, 32 };
static const int graph_f[] = { 2, 16, 64 };
static const int graph_n[] = { 4, 9, 16, 32, 64 };

static int sweep_conv_batch(int c, int h)
{
    const int b = (int)lround(196608.0 / ((double)c * h * h));
    return b < 1 ? 1 : b > 64 ? 64 : b;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_sweep: %s: %s\n", what, fxp_last_error());
    exit(1);
}

static void conv_raw(void *p)
{
    conv_case *c = p;
    if (fxp_conv_exp(c->x.data, c->y, c->k.data, c->b, c->c, c->h, c->w, 3, 3, 6, 0) < 0)
        die("conv raw");
}

typedef struct graph_case {
    fxp_ctx *ctx;
    float *x, *y, *t0, *t1, *adj;
    int b, n, f;
} graph_case;

static void graph_fwd(void *p)
{
    graph_case *g = p;
    if (fxp_graph_conv_exp_ctx(g->ctx, g->x, g->y, g->adj, g->t0, g->t1, g->b, g->n, g->f, 6,
                               0) < 0)
        die("graph fwd");
}

static void graph_raw(void *p)
{
    graph_case *g = p;
    if (fxp_graph_conv_exp(g->x, g->y, g->adj, g->t0, g->t1, g->b, g->n, g->f, 6, 0) < 0)
        die("graph raw");
}

static void randn(float *x, size_t n, uint64_t seed, float std)
{
    fxp_rng r;
    fxp_rng_seed(&r, seed);
    fxp_rng_normal(&r, x, n, 0, std);
}

typedef struct gemm_case {
    fxp_ctx *ctx;
    float *a, *b, *c;
} gemm_case;

static void run_gemm(void *p)
{
    gemm_case *g = p;
    fxp__sgemm(g->ctx, 0, 0, 2048, 2048, 2048, 1, g->a, 2048, g->b, 2048, 0, g->c, 2048);
}

static FILE *js;
static int js_first = 1;

static void report(const char *op, const char *shape, int threads, double med, double best)
{
    printf("%-24s %-14s %4d %10.4f %10.4f\n", op, shape, threads, med * 1e3, best * 1e3);
    fflush(stdout);
    if (js)
        fprintf(js, "%s  {\"op\": \"%s\", \"shape\": \"%s\", \"threads\": %d, \"median_ms\": %.5f, "
                "\"min_ms\": %.5f}", js_first ? "" : ",\n", op, shape, threads, med * 1e3,
                best * 1e3);
    js_first = 0;
}

static void run_conv(fxp_ctx *ctx, int threads, const char *group, double min_time, int min_reps)
{
    const int all = !group, fwd = all || !strcmp(group, "conv-fwd");
    const int inv = all || !strcmp(group, "conv-inv"), fb = all || !strcmp(group, "conv-fwdbwd");
    const int raw = all || !strcmp(group, "raw");
    if (!fwd && !inv && !fb && !raw) return;
    for (size_t hi = 0; hi < sizeof conv_h / sizeof *conv_h; hi++)
        for (size_t ci = 0; ci < sizeof conv_c / sizeof *conv_c; ci++) {
            const int c = conv_c[ci], h = conv_h[hi], b = sweep_conv_batch(c, h);
            /* the raw-buffer path on the small cases, where per-call set-up shows */
            const int do_raw = raw && (size_t)b * c * h * h <= 65536;
            if (!fwd && !inv && !fb && !do_raw) continue;
            conv_case cc = { ctx, NULL, { 0 }, { 0 }, NULL, b, c, h, h };
            const int xs[4] = { b, c, h, h }, ks[4] = { c, c, 3, 3 };
            if (fxp_tensor_alloc(NULL, &cc.x, 4, xs) < 0 ||
                fxp_tensor_alloc(NULL, &cc.k, 4, ks) < 0 ||
                !(cc.y = malloc((size_t)fxp_tensor_numel(&cc.x) * sizeof(float))) ||
                fxp_tape_new(ctx, &cc.tape) < 0)
                die("conv setup");
            randn(cc.x.data, (size_t)fxp_tensor_numel(&cc.x), 4, 1);
            /* the peer's kernel scale: N(0, (0.5/sqrt(9C))^2) */
            randn(cc.k.data, (size_t)fxp_tensor_numel(&cc.k), 5, 0.5f / sqrtf(9.0f * c));
            char shape[40];
            snprintf(shape, sizeof shape, "%dx%dx%dx%d", b, c, h, h);
            double best, med;
            if (fwd) {
                med = bench_median(conv_fwd, &cc, 2, min_reps, min_time, &best);
                report("conv_exp fwd", shape, threads, med, best);
            }
            if (inv) {
                med = bench_median(conv_inv, &cc, 2, min_reps, min_time, &best);
                report("conv_exp inverse", shape, threads, med, best);
            }
            if (fb) {
                med = bench_median(conv_fwdbwd, &cc, 2, min_reps, min_time, &best);
                report("conv_exp fwd+bwd", shape, threads, med, best);
            }
            if (do_raw) {
                med = bench_median(conv_fwd, &cc, 2, min_reps, min_time, &best);
                report("conv_exp fwd ctx", shape, threads, med, best);
                med = bench_median(conv_raw, &cc, 2, min_reps, min_time, &best);
                report("conv_exp fwd raw", shape, threads, med, best);
            }
            fxp_tape_free(cc.tape);
            fxp_tensor_release(&cc.x);
            fxp_tensor_release(&cc.k);
            free(cc.y);
        }
}

static void run_graph(fxp_ctx *ctx, int threads, const char *group, double min_time, int min_reps)
{
    const int fwd = !group || !strcmp(group, "graph-fwd"), raw = !group || !strcmp(group, "raw");
    if (!fwd && !raw) return;
    for (size_t fi = 0; fi < sizeof graph_f / sizeof *graph_f; fi++)
        for (size_t ni = 0; ni < sizeof graph_n / sizeof *graph_n; ni++)
            for (int kind = 0; kind < 2; kind++) { /* complete, random (half the edges + a path) */
                const int B = 128, N = graph_n[ni], F = graph_f[fi];
                if (!fwd && (kind || F != 2)) continue; /* raw: the small cases */
                graph_case g = { ctx, NULL, NULL, NULL, NULL, NULL, B, N, F };
                const size_t nx = (size_t)B * N * F;
                g.x = malloc(nx * sizeof(float));
                g.y = malloc(nx * sizeof(float));
                g.t0 = malloc((size_t)F * F * sizeof(float));
                g.t1 = malloc((size_t)F * F * sizeof(float));
                g.adj = malloc((size_t)N * N * sizeof(float));
                if (!g.x || !g.y || !g.t0 || !g.t1 || !g.adj) die("graph setup");
                randn(g.x, nx, 6, 1);
                randn(g.t0, (size_t)F * F, 7, 0.5f / sqrtf((float)F));
                randn(g.t1, (size_t)F * F, 8, 0.5f / sqrtf((float)F));
                fxp_rng ar;
                fxp_rng_seed(&ar, 9);
                for (int i = 0; i < N; i++)
                    for (int j = 0; j <= i; j++) {
                        float u;
                        fxp_rng_uniform(&ar, &u, 1);
                        const float v = i == j ? 0.0f : (!kind || j == i - 1 || u < 0.5f);
                        g.adj[i * N + j] = g.adj[j * N + i] = v;
                    }
                char shape[40];
                snprintf(shape, sizeof shape, "%dx%dx%d", B, N, F);
                double best, med;
                if (fwd) {
                    med = bench_median(graph_fwd, &g, 3, min_reps, min_time, &best);
                    report(kind ? "graph_conv_exp fwd rnd" : "graph_conv_exp fwd", shape, threads,
                           med, best);
                }
                if (raw && !kind && F == 2) {
                    med = bench_median(graph_fwd, &g, 3, min_reps, min_time, &best);
                    report("graph_conv_exp fwd ctx", shape, threads, med, best);
                    med = bench_median(graph_raw, &g, 3, min_reps, min_time, &best);
                    report("graph_conv_exp fwd raw", shape, threads, med, best);
                }
                free(g.x);
                free(g.y);
                free(g.t0);
                free(g.t1);
                free(g.adj);
            }
}

int main(int argc, char **argv)
{
    const char *group = NULL;
    char *rest[16];
    int nrest = 0;
    for (int i = 0; i < argc; i++) { /* --group is ours; the rest is bench_util's */
        if (!strcmp(argv[i], "--group") && i + 1 < argc) {
            group = argv[++i];
            if (strcmp(group, "conv-fwd") && strcmp(group, "conv-inv") &&
                strcmp(group, "conv-fwdbwd") && strcmp(group, "graph-fwd") &&
                strcmp(group, "raw")) {
                fprintf(stderr, "bench_sweep: unknown group %s (conv-fwd, conv-inv, conv-fwdbwd, "
                        "graph-fwd, raw)\n", group);
                return 2;
            }
        } else if (nrest < 16) {
            rest[nrest++] = argv[i];
        }
    }
    bench_args args;
    const int bad = bench_parse_args(nrest, rest, &args);
    if (bad) return bad;
    if (args.json && !(js = fopen(args.json, "w"))) {
        fprintf(stderr, "bench_sweep: cannot write %s\n", args.json);
        return 1;
    }
    if (js) fprintf(js, "{\"results\": [\n");
    printf("%-24s %-14s %4s %10s %10s\n", "op", "shape", "thr", "median_ms", "min_ms");
    const double min_time = args.quick ? 0.1 : 0.3;
    const int min_reps = args.quick ? 3 : 5;
    for (int ti = 0; ti < args.n_threads; ti++) {
#ifdef _OPENMP
        /* the raw-buffer functions use omp_get_max_threads() threads: keep both paths alike */
        omp_set_num_threads(args.threads[ti]);
#endif
        fxp_ctx *ctx;
        if (fxp_ctx_new(&ctx) < 0 || fxp_ctx_set_threads(ctx, args.threads[ti]) < 0 ||
            fxp_ctx_set_conv_algo(ctx, args.algo) < 0)
            die("context");
        if (!group || !strcmp(group, "conv-fwd")) { /* the GFLOP/s reference of the same run */
            float *m = malloc((size_t)3 * 2048 * 2048 * sizeof(float));
            if (!m) die("sgemm buffers");
            randn(m, (size_t)3 * 2048 * 2048, 1, 1);
            gemm_case gm = { ctx, m, m + 2048 * 2048, m + 2 * 2048 * 2048 };
            double best, med = bench_median(run_gemm, &gm, 1, args.quick ? 2 : 4, min_time, &best);
            report("cblas_sgemm", "2048^3", args.threads[ti], med, best);
            free(m);
        }
        run_conv(ctx, args.threads[ti], group, min_time, min_reps);
        run_graph(ctx, args.threads[ti], group, min_time, min_reps);
        fxp_ctx_free(ctx);
    }
    if (js) {
        fprintf(js, "\n]}\n");
        fclose(js);
    }
    return 0;
}
