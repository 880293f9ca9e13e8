/* Benchmark (not a test): GFLOP/s of the 3x3 convolution kernels, forward
 * and backward (data + weight), beside cblas_sgemm at 2048^3 measured in the
 * same run, at the requested thread counts.  --algo picks the kernels as
 * fxp_ctx_set_conv_algo does (auto: the library's choice; im2col: im2col +
 * GEMM; direct: the direct kernels).
 *
 *   build/tools/bench/bench_conv [--threads 1,2] [--quick] [--json FILE]
 *                                [--algo auto|im2col|direct]
 *
 * FLOPs: 2*B*H*W*C*C*9 per 3x3 convolution; backward counts 2 of them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "blas/blas.h"
#include "ops/conv2d.h"

typedef struct conv_case {
    fxp_ctx *ctx;
    fxp__conv_shape s;
    float *x, *w, *y, *dy, *dx, *dw;
} conv_case;

static void run_fwd(void *p)
{
    conv_case *c = p;
    fxp__conv2d_forward(c->ctx, &c->s, c->y, c->x, c->w, NULL, 1, 0);
}

static void run_bwd(void *p)
{
    conv_case *c = p;
    fxp__conv2d_backward_data(c->ctx, &c->s, c->dx, c->dy, c->w, 1, 0);
    fxp__conv2d_backward_weight(c->ctx, &c->s, c->dw, c->dy, c->x, 1);
}

typedef struct gemm_case {
    fxp_ctx *ctx;
    float *a, *b, *c;
    int n;
} gemm_case;

static void run_gemm(void *p)
{
    gemm_case *g = p;
    fxp__sgemm(g->ctx, 0, 0, g->n, g->n, g->n, 1, g->a, g->n, g->b, g->n, 0, g->c, g->n);
}

static float *randn(size_t n, uint64_t seed)
{
    float *p = malloc(n * sizeof(float));
    if (!p) {
        fprintf(stderr, "bench_conv: out of memory\n");
        exit(1);
    }
    fxp_rng r;
    fxp_rng_seed(&r, seed);
    fxp_rng_normal(&r, p, n, 0, 1);
    return p;
}

int main(int argc, char **argv)
{
    bench_args args;
    const int bad = bench_parse_args(argc, argv, &args);
    if (bad) return bad;
    const int n_threads = args.n_threads, quick = args.quick, *threads = args.threads;
    const fxp_conv_algo algo = args.algo;
    const char *json = args.json;
    const int shapes[4][4] = { { 64, 12, 16, 16 }, { 64, 48, 8, 8 }, { 64, 3, 32, 32 },
                               { 16, 96, 16, 16 } };
    const double min_time = quick ? 0.2 : 1.0;
    const int min_reps = quick ? 3 : 7;
    FILE *js = json ? fopen(json, "w") : NULL;
    if (json && !js) {
        fprintf(stderr, "bench_conv: cannot write %s\n", json);
        return 1;
    }
    printf("OpenBLAS: %s (core %s)\n", fxp__blas_config(), fxp__blas_corename());
    printf("conv algorithm: %s\n", bench_algo_name(algo));
    FILE *la = fopen("/proc/loadavg", "r");
    double load1 = -1;
    if (la) {
        if (fscanf(la, "%lf", &load1) == 1)
            printf("load average (1 min) at start: %.2f on a shared machine\n", load1);
        fclose(la);
    }
    if (js)
        fprintf(js, "{\"blas\": \"%s\", \"core\": \"%s\", \"load1\": %.2f, \"results\": [\n",
                fxp__blas_config(), fxp__blas_corename(), load1);
    printf("%-18s %4s %10s %9s %9s %10s %9s %9s\n", "shape B,C,H,W", "thr", "fwd ms", "GFLOP/s",
           "%sgemm", "bwd ms", "GFLOP/s", "%sgemm");
    int first = 1;
    for (int k = 0; k < n_threads; k++) {
        fxp_ctx *ctx;
        if (fxp_ctx_new(&ctx) < 0 || fxp_ctx_set_threads(ctx, threads[k]) < 0 ||
            fxp_ctx_set_conv_algo(ctx, algo) < 0) {
            fprintf(stderr, "bench_conv: %s\n", fxp_last_error());
            return 1;
        }
        gemm_case g = { ctx, randn(2048 * 2048, 1), randn(2048 * 2048, 2),
                        randn(2048 * 2048, 3), 2048 };
        double best, med = bench_median(run_gemm, &g, 1, quick ? 2 : 4, min_time, &best);
        const double gemm_gf = 2.0 * 2048 * 2048 * 2048 / med / 1e9;
        printf("cblas_sgemm 2048^3  %4d %10.3f %9.1f\n", threads[k], med * 1e3, gemm_gf);
        free(g.a);
        free(g.b);
        free(g.c);
        for (int sh = 0; sh < 4; sh++) {
            const int B = shapes[sh][0], C = shapes[sh][1], H = shapes[sh][2], W = shapes[sh][3];
            conv_case c = { ctx, { B, C, H, W, C, 3, 3, FXP_PAD_ZERO }, NULL, NULL, NULL, NULL,
                            NULL, NULL };
            size_t nx = (size_t)B * C * H * W, nw = (size_t)C * C * 9;
            c.x = randn(nx, 4);
            c.dy = randn(nx, 5);
            c.w = randn(nw, 6);
            c.y = randn(nx, 7);
            c.dx = randn(nx, 8);
            c.dw = randn(nw, 9);
            const double flops = 2.0 * B * H * W * C * C * 9;
            double tf = bench_median(run_fwd, &c, 2, min_reps, min_time, &best);
            double tb = bench_median(run_bwd, &c, 2, min_reps, min_time, &best);
            double gf = flops / tf / 1e9, gb = 2 * flops / tb / 1e9;
            printf("%3d,%3d,%3d,%3d    %4d %10.3f %9.1f %8.0f%% %10.3f %9.1f %8.0f%%\n", B, C, H,
                   W, threads[k], tf * 1e3, gf, 100 * gf / gemm_gf, tb * 1e3, gb,
                   100 * gb / gemm_gf);
            if (js)
                fprintf(js,
                        "%s {\"shape\": [%d,%d,%d,%d], \"threads\": %d, \"sgemm_gflops\": %.2f, "
                        "\"fwd_ms\": %.4f, \"fwd_gflops\": %.2f, \"bwd_ms\": %.4f, "
                        "\"bwd_gflops\": %.2f, \"fwd_vs_sgemm\": %.3f, \"bwd_vs_sgemm\": %.3f}",
                        first ? "" : ",\n", B, C, H, W, threads[k], gemm_gf, tf * 1e3, gf,
                        tb * 1e3, gb, gf / gemm_gf, gb / gemm_gf);
            first = 0;
            free(c.x); free(c.dy); free(c.w); free(c.y); free(c.dx); free(c.dw);
        }
        fxp_ctx_free(ctx);
    }
    if (js) {
        fprintf(js, "\n]}\n");
        fclose(js);
    }
    return 0;
}
