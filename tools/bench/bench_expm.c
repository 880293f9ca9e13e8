/* Benchmark (not a test): the convolution exponential (forward with 6
 * terms, forward + backward, inverse with 13 terms) and the graph
 * convolution exponential (forward + backward, 6 terms), the same cases as
 * the PyTorch peer (tools/bench/peer_torch.py), plus cblas_sgemm at
 * 2048^3 in the same run.  Prints a table and optionally writes JSON for
 * tools/bench/compare_peer.py, which runs this program and the peer in one
 * invocation and prints speed ratios.
 *
 *   build/tools/bench/bench_expm [--threads 1,2] [--quick] [--json FILE] [--algo auto|im2col|direct]
 *
 * fwd+bwd = gradients of sum(output) w.r.t. the input and the kernel
 * (graph: input, theta0, theta1), as the peer computes them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_conv_cases.h"
#include "bench_util.h"
#include "blas/blas.h"
#include "core/internal.h"

static void die(const char *what)
{
    fprintf(stderr, "bench_expm: %s: %s\n", what, fxp_last_error());
    exit(1);
}

typedef struct graph_case {
    fxp_tape *tape;
    fxp_tensor x, t0, t1, ahat;
} graph_case;

static void graph_fwdbwd(void *p)
{
    graph_case *g = p;
    fxp_var *vx, *v0, *v1, *y, *l;
    fxp_tape_reset(g->tape);
    fxp_expm_opts o = fxp_expm_fixed(6);
    if (fxp_tape_input(g->tape, &vx, &g->x, 1) < 0 || fxp_tape_input(g->tape, &v0, &g->t0, 1) < 0 ||
        fxp_tape_input(g->tape, &v1, &g->t1, 1) < 0 ||
        fxp_expm_graph(g->tape, &y, vx, &g->ahat, v0, v1, 0, &o, NULL) < 0 ||
        fxp_sum(g->tape, &l, y, FXP_AXES_ALL, 0) < 0 || fxp_tape_backward(g->tape, l, NULL) < 0)
        die("graph fwd+bwd");
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

static void randn(fxp_tensor *t, int nd, const int *shape, uint64_t seed, float std)
{
    if (fxp_tensor_alloc(NULL, t, nd, shape) < 0) die("alloc");
    fxp_rng r;
    fxp_rng_seed(&r, seed);
    fxp_rng_normal(&r, t->data, (size_t)fxp_tensor_numel(t), 0, std);
}

static FILE *js;
static int js_first = 1;

static void report(const char *op, const char *shape, int terms, int threads, double gflop,
                   double med, double best, double gemm)
{
    printf("%-27s %-14s %5d %4d %10.3f %10.3f %9.1f %7.0f%%\n", op, shape, terms, threads, med * 1e3,
           best * 1e3, gflop / med, 100 * gflop / med / gemm);
    if (js)
        fprintf(js, "%s  {\"op\": \"%s\", \"shape\": \"%s\", \"terms\": %d, \"threads\": %d, "
                "\"median_ms\": %.5f, \"min_ms\": %.5f, \"gflops\": %.3f, \"sgemm_gflops\": %.3f}",
                js_first ? "" : ",\n", op, shape, terms, threads, med * 1e3, best * 1e3,
                gflop / med, gemm);
    js_first = 0;
}

int main(int argc, char **argv)
{
    bench_args args;
    const int bad = bench_parse_args(argc, argv, &args);
    if (bad) return bad;
    const int n_threads = args.n_threads, quick = args.quick, *threads = args.threads;
    const fxp_conv_algo algo = args.algo;
    const char *json = args.json;
    if (json && !(js = fopen(json, "w"))) {
        fprintf(stderr, "bench_expm: cannot write %s\n", json);
        return 1;
    }
    if (js) fprintf(js, "{\"blas\": \"%s\", \"core\": \"%s\", \"results\": [\n", fxp__blas_config(),
                    fxp__blas_corename());
    printf("OpenBLAS: %s (core %s)\n", fxp__blas_config(), fxp__blas_corename());
    printf("conv algorithm: %s\n", bench_algo_name(algo));
    printf("%-27s %-14s %5s %4s %10s %10s %9s %8s\n", "op", "shape", "terms", "thr", "median_ms",
           "min_ms", "GFLOP/s", "%sgemm");
    const double min_time = quick ? 0.2 : 1.0;
    const int min_reps = quick ? 3 : 7;
    const int shapes[4][4] = { { 64, 12, 16, 16 }, { 64, 48, 8, 8 }, { 64, 3, 32, 32 },
                               { 16, 96, 16, 16 } };
    const int nodes[4] = { 4, 9, 16, 64 }, feats[2] = { 2, 64 };
    for (int ti = 0; ti < n_threads; ti++) {
        fxp_ctx *ctx;
        if (fxp_ctx_new(&ctx) < 0 || fxp_ctx_set_threads(ctx, threads[ti]) < 0 ||
            fxp_ctx_set_conv_algo(ctx, algo) < 0) die("context");
        int gs[2] = { 2048, 2048 };
        fxp_tensor ga, gb, gc;
        randn(&ga, 2, gs, 1, 1);
        randn(&gb, 2, gs, 2, 1);
        randn(&gc, 2, gs, 3, 1);
        gemm_case gm = { ctx, ga.data, gb.data, gc.data };
        double best, med = bench_median(run_gemm, &gm, 1, quick ? 2 : 4, min_time, &best);
        const double gemm = 2.0 * 2048 * 2048 * 2048 / med / 1e9;
        report("cblas_sgemm", "2048^3", 0, threads[ti], 2.0 * 2048 * 2048 * 2048 / 1e9, med, best,
               gemm);
        fxp_tensor_release(&ga);
        fxp_tensor_release(&gb);
        fxp_tensor_release(&gc);
        for (int s = 0; s < 4; s++) {
            conv_case c = { ctx, NULL, { 0 }, { 0 }, NULL, shapes[s][0], shapes[s][1], shapes[s][2],
                            shapes[s][3] };
            int ks[4] = { c.c, c.c, 3, 3 };
            /* the peer's kernel scale: N(0, (0.5/sqrt(9C))^2) */
            randn(&c.x, 4, shapes[s], 4, 1);
            randn(&c.k, 4, ks, 5, 0.5f / sqrtf(9.0f * c.c));
            c.y = malloc((size_t)fxp_tensor_numel(&c.x) * sizeof(float));
            if (!c.y || fxp_tape_new(ctx, &c.tape) < 0) die("setup");
            char shape[32];
            snprintf(shape, sizeof shape, "%dx%dx%dx%d", c.b, c.c, c.h, c.w);
            const double conv = 2.0 * c.b * c.h * c.w * c.c * c.c * 9 / 1e9;
            med = bench_median(conv_fwd, &c, 2, min_reps, min_time, &best);
            report("conv_exp fwd", shape, 6, threads[ti], 6 * conv, med, best, gemm);
            med = bench_median(conv_fwdbwd, &c, 2, min_reps, min_time, &best);
            report("conv_exp fwd+bwd", shape, 6, threads[ti], 18 * conv, med, best, gemm);
            med = bench_median(conv_inv, &c, 2, min_reps, min_time, &best);
            report("conv_exp inverse", shape, 13, threads[ti], 13 * conv, med, best, gemm);
            fxp_tape_free(c.tape);
            fxp_tensor_release(&c.x);
            fxp_tensor_release(&c.k);
            free(c.y);
        }
        /* adjacency: the complete graph (as the peer and the MoG data; our
         * O(N F) path) and a random graph with half the edges (the dense
         * BLAS path; the peer's cost does not depend on the pattern) */
        for (int kind = 0; kind < 2; kind++)
        for (int fi = 0; fi < 2; fi++)
            for (int ni = 0; ni < 4; ni++) {
                const int B = 128, N = nodes[ni], Fd = feats[fi];
                graph_case g;
                int xs[3] = { B, N, Fd }, ts[2] = { Fd, Fd }, as[2] = { N, N };
                randn(&g.x, 3, xs, 6, 1);
                randn(&g.t0, 2, ts, 7, 0.5f / sqrtf((float)Fd));
                randn(&g.t1, 2, ts, 8, 0.5f / sqrtf((float)Fd));
                fxp_tensor adj;
                if (fxp_tensor_alloc(NULL, &adj, 2, as) < 0 || fxp_tensor_alloc(NULL, &g.ahat, 2, as) < 0)
                    die("alloc");
                fxp_rng ar;
                fxp_rng_seed(&ar, 9);
                for (int i = 0; i < N; i++)
                    for (int j = 0; j <= i; j++) {
                        float u;
                        fxp_rng_uniform(&ar, &u, 1);
                        /* random: each edge with probability 1/2, plus a path */
                        const float v = i == j ? 0.0f : (!kind || j == i - 1 || u < 0.5f);
                        adj.data[i * N + j] = adj.data[j * N + i] = v;
                    }
                if (fxp_graph_normalize(ctx, &adj, &g.ahat, NULL) < 0 || fxp_tape_new(ctx, &g.tape) < 0)
                    die("graph setup");
                char shape[32];
                snprintf(shape, sizeof shape, "%dx%dx%d", B, N, Fd);
                const double gcl = 2.0 * B * N * Fd * (2.0 * Fd + N) / 1e9;
                med = bench_median(graph_fwdbwd, &g, 3, min_reps, min_time, &best);
                report(kind ? "graph_conv_exp fwd+bwd rnd" : "graph_conv_exp fwd+bwd", shape, 6,
                       threads[ti], 18 * gcl, med, best, gemm);
                fxp_tape_free(g.tape);
                fxp_tensor_release(&g.x);
                fxp_tensor_release(&g.t0);
                fxp_tensor_release(&g.t1);
                fxp_tensor_release(&adj);
                fxp_tensor_release(&g.ahat);
            }
        fxp_ctx_free(ctx);
    }
    if (js) {
        fprintf(js, "\n]}\n");
        fclose(js);
    }
    return 0;
}
