/* Benchmark (not a test): median times of the mixing layers (mixing.h) per
 * kind, shape and thread count: forward and inverse without gradients
 * (evaluation mode), and a training step (a training forward with
 * gradients and the backward of sum(z) + sum(logdet)); plus the emerging
 * layer's square autoregressive solve on its own (one of the two in an
 * emerging inverse).
 *
 *   build/tools/bench/bench_mixing [--threads 1,2] [--batch 100]
 *       [--shape C,H,W]... [--kinds 1x1,emerging,...] [--quick] [--json FILE]
 *       [--dump DIR]
 *
 * Defaults: the Table-1 shapes 12,16,16 and 24,8,8 (after the first and
 * second squeeze of a 3x32x32 image), batch 100, every kind.  --dump DIR
 * writes, per shape, the inputs and our result of one square
 * autoregressive solve as raw little-endian float32 files
 *   DIR/sar_<C>x<H>x<W>_b<B>.{z,k,b,x}.f32
 * (z [B,C,H,W], k the masked kernel [C,C,2,2] as the authors pass it, b [C],
 * x = A^-1 (z - b)) for tools/bench/compare_emerging.py, which runs the
 * authors' Cython inverse on the same numbers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "flows/mixing/mixing_internal.h"

typedef struct layer_case {
    fxp_ctx *ctx;
    fxp_tape *t;
    fxp_flow *f;
    fxp_params *ps;
    fxp_tensor x, z; /* input, and forward output (the inverse's input) */
    int failed;
} layer_case;

static void fail(layer_case *c)
{
    if (!c->failed) fprintf(stderr, "bench_mixing: %s\n", fxp_last_error());
    c->failed = 1;
}

static void run_fwd(void *p)
{
    layer_case *c = p;
    fxp_var *x, *z, *ld;
    fxp_tape_reset(c->t);
    fxp_tape_set_grad_enabled(c->t, 0);
    if (fxp_tape_input(c->t, &x, &c->x, 0) < 0 ||
        fxp_flow_forward(c->f, c->t, NULL, x, &z, &ld) < 0)
        fail(c);
}

static void run_inv(void *p)
{
    layer_case *c = p;
    fxp_var *z, *x, *ld;
    fxp_tape_reset(c->t);
    fxp_tape_set_grad_enabled(c->t, 0);
    if (fxp_tape_input(c->t, &z, &c->z, 0) < 0 ||
        fxp_flow_inverse(c->f, c->t, NULL, z, &x, &ld) < 0)
        fail(c);
}

static void run_train(void *p)
{
    layer_case *c = p;
    fxp_var *x, *z, *ld, *s, *l;
    const fxp_flow_io io = { .training = 1 };
    fxp_tape_reset(c->t);
    fxp_tape_set_grad_enabled(c->t, 1);
    fxp_params_zero_grad(c->ps);
    if (fxp_tape_input(c->t, &x, &c->x, 0) < 0 ||
        fxp_flow_forward(c->f, c->t, &io, x, &z, &ld) < 0 ||
        fxp_sum(c->t, &s, z, FXP_AXES_ALL, 0) < 0 || fxp_sum(c->t, &l, ld, FXP_AXES_ALL, 0) < 0 ||
        fxp_add(c->t, &l, l, s) < 0 || fxp_tape_backward(c->t, l, NULL) < 0)
        fail(c);
}

typedef struct sar_case {
    fxp_ctx *ctx;
    int b, c, h, w;
    float *k3, *z, *bias, *x;
    int failed;
} sar_case;

static void run_sar(void *p)
{
    sar_case *s = p;
    if (fxp__square_ar_solve_raw(s->ctx, 0, 0, s->b, s->c, s->h, s->w, s->k3, s->z, s->bias,
                                 s->x) < 0 &&
        !s->failed) {
        fprintf(stderr, "bench_mixing: %s\n", fxp_last_error());
        s->failed = 1;
    }
}

static float *randn(size_t n, uint64_t seed, float std)
{
    float *p = malloc(n * sizeof(float));
    if (!p) {
        fprintf(stderr, "bench_mixing: out of memory\n");
        exit(1);
    }
    fxp_rng r;
    fxp_rng_seed(&r, seed);
    fxp_rng_normal(&r, p, n, 0, std);
    return p;
}

static int write_f32(const char *dir, const char *stem, const char *ext, const float *v, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.%s.f32", dir, stem, ext);
    FILE *fp = fopen(path, "wb");
    if (!fp || fwrite(v, sizeof(float), n, fp) != n || fclose(fp) != 0) {
        fprintf(stderr, "bench_mixing: cannot write %s\n", path);
        return -1;
    }
    return 0;
}

static void usage(const char *prog)
{
    fprintf(stderr,
            "usage: %s [--threads 1,2] [--batch B] [--shape C,H,W]... [--kinds k1,k2,...] "
            "[--quick] [--json FILE] [--dump DIR]\n"
            "kinds: 1x1 lu householder emerging woodbury convexp convexp-circular\n",
            prog);
}

int main(int argc, char **argv)
{
    int threads[8] = { 1, 2 }, n_threads = 2, batch = 100, shapes[16][3], n_shapes = 0, quick = 0;
    int use_kind[FXP_MIXING_KINDS];
    const char *json = NULL, *dump = NULL;
    for (int k = 0; k < FXP_MIXING_KINDS; k++) use_kind[k] = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--quick")) {
            quick = 1;
        } else if (!strcmp(a, "--threads") && v) {
            n_threads = 0;
            char buf[256];
            snprintf(buf, sizeof buf, "%s", v);
            for (char *tok = strtok(buf, ","); tok && n_threads < 8; tok = strtok(NULL, ",")) {
                threads[n_threads] = atoi(tok);
                if (threads[n_threads] < 1 || threads[n_threads] > 256) {
                    fprintf(stderr, "%s: bad thread count %s\n", argv[0], tok);
                    return 2;
                }
                n_threads++;
            }
            i++;
        } else if (!strcmp(a, "--batch") && v) {
            batch = atoi(v);
            if (batch < 1 || batch > 100000) {
                fprintf(stderr, "%s: --batch %s must be in 1..100000\n", argv[0], v);
                return 2;
            }
            i++;
        } else if (!strcmp(a, "--shape") && v) {
            int *s = shapes[n_shapes];
            if (n_shapes == 16 || sscanf(v, "%d,%d,%d", &s[0], &s[1], &s[2]) != 3 || s[0] < 1 ||
                s[0] > 4096 || s[1] < 1 || s[2] < 1 || s[1] * s[2] > 1 << 20) {
                fprintf(stderr, "%s: --shape %s must be C,H,W (at most 16 shapes)\n", argv[0], v);
                return 2;
            }
            n_shapes++;
            i++;
        } else if (!strcmp(a, "--kinds") && v) {
            char buf[256];
            snprintf(buf, sizeof buf, "%s", v);
            for (int k = 0; k < FXP_MIXING_KINDS; k++) use_kind[k] = 0;
            for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
                fxp_mixing_kind kind;
                if (fxp_mixing_kind_parse(tok, &kind) < 0) {
                    fprintf(stderr, "%s: %s\n", argv[0], fxp_last_error());
                    return 2;
                }
                use_kind[kind] = 1;
            }
            i++;
        } else if (!strcmp(a, "--json") && v) {
            json = v;
            i++;
        } else if (!strcmp(a, "--dump") && v) {
            dump = v;
            i++;
        } else {
            usage(argv[0]);
            return 2;
        }
    }
    if (n_threads < 1) {
        usage(argv[0]);
        return 2;
    }
    if (!n_shapes) {
        const int def[2][3] = { { 12, 16, 16 }, { 24, 8, 8 } };
        memcpy(shapes, def, sizeof def);
        n_shapes = 2;
    }
    const double min_time = quick ? 0.2 : 1.0;
    const int min_reps = quick ? 3 : 9;
    FILE *js = json ? fopen(json, "w") : NULL;
    if (json && !js) {
        fprintf(stderr, "bench_mixing: cannot write %s\n", json);
        return 1;
    }
    double load1 = -1;
    FILE *la = fopen("/proc/loadavg", "r");
    if (la) {
        if (fscanf(la, "%lf", &load1) == 1)
            printf("load average (1 min) at start: %.2f on a shared machine\n", load1);
        fclose(la);
    }
    if (js) fprintf(js, "{\"batch\": %d, \"load1\": %.2f, \"layers\": [\n", batch, load1);
    printf("batch %d; median ms of forward / inverse (no gradients) / training step\n", batch);
    printf("%-17s %-10s %4s %10s %10s %10s %8s\n", "kind", "C,H,W", "thr", "fwd ms", "inv ms",
           "train ms", "inv/fwd");
    int first = 1, status = 0;
    for (int ti = 0; ti < n_threads; ti++)
        for (int si = 0; si < n_shapes; si++)
            for (int k = 0; k < FXP_MIXING_KINDS; k++) {
                if (!use_kind[k]) continue;
                const int C = shapes[si][0], H = shapes[si][1], W = shapes[si][2];
                const int shape[4] = { batch, C, H, W };
                const size_t n = (size_t)batch * C * H * W;
                layer_case c = { 0 };
                fxp_mixing_opts o;
                fxp_rng rng;
                fxp_rng_seed(&rng, 1);
                fxp_mixing_opts_default(&o, C, H, W);
                fxp_var *vx, *vz, *ld;
                if (fxp_ctx_new(&c.ctx) < 0 || fxp_ctx_set_threads(c.ctx, threads[ti]) < 0 ||
                    fxp_tape_new(c.ctx, &c.t) < 0 || fxp_params_new(c.ctx, &c.ps) < 0 ||
                    fxp_mixing_new(c.ctx, c.ps, "mix", (fxp_mixing_kind)k, &o, &rng, &c.f) < 0) {
                    fprintf(stderr, "bench_mixing: %s\n", fxp_last_error());
                    return 1;
                }
                c.x = fxp_tensor_wrap(randn(n, 2, 1), 4, shape);
                c.z = fxp_tensor_wrap(malloc(n * sizeof(float)), 4, shape);
                fxp_tape_set_grad_enabled(c.t, 0);
                if (!c.z.data || fxp_tape_input(c.t, &vx, &c.x, 0) < 0 ||
                    fxp_flow_forward(c.f, c.t, NULL, vx, &vz, &ld) < 0) {
                    fprintf(stderr, "bench_mixing: %s\n", fxp_last_error());
                    return 1;
                }
                memcpy(c.z.data, vz->value.data, n * sizeof(float));
                double best;
                const double tf = bench_median(run_fwd, &c, 2, min_reps, min_time, &best);
                const double ti_ = bench_median(run_inv, &c, 2, min_reps, min_time, &best);
                const double tt = bench_median(run_train, &c, 2, min_reps, min_time, &best);
                if (c.failed) status = 1;
                char sh[32];
                snprintf(sh, sizeof sh, "%d,%d,%d", C, H, W);
                printf("%-17s %-10s %4d %10.3f %10.3f %10.3f %8.2f\n",
                       fxp_mixing_kind_name((fxp_mixing_kind)k), sh, threads[ti], tf * 1e3,
                       ti_ * 1e3, tt * 1e3, ti_ / tf);
                fflush(stdout);
                if (js)
                    fprintf(js,
                            "%s {\"kind\": \"%s\", \"shape\": [%d,%d,%d], \"threads\": %d, "
                            "\"fwd_ms\": %.4f, \"inv_ms\": %.4f, \"train_ms\": %.4f}",
                            first ? "" : ",\n", fxp_mixing_kind_name((fxp_mixing_kind)k), C, H, W,
                            threads[ti], tf * 1e3, ti_ * 1e3, tt * 1e3);
                first = 0;
                free(c.x.data);
                free(c.z.data);
                fxp_flow_free(c.f);
                fxp_params_free(c.ps);
                fxp_tape_free(c.t);
                fxp_ctx_free(c.ctx);
            }
    /* the square autoregressive solve alone */
    if (js) fprintf(js, "\n], \"sar_solve\": [\n");
    if (use_kind[FXP_MIXING_EMERGING])
        printf("\nsquare autoregressive solve x = A^-1 (z - b) alone (an emerging inverse runs "
               "two)\n%-10s %4s %10s\n", "C,H,W", "thr", "solve ms");
    first = 1;
    for (int ti = 0; ti < n_threads && use_kind[FXP_MIXING_EMERGING]; ti++)
        for (int si = 0; si < n_shapes; si++) {
            const int C = shapes[si][0], H = shapes[si][1], W = shapes[si][2];
            const size_t n = (size_t)batch * C * H * W;
            sar_case s = { NULL, batch, C, H, W, NULL, NULL, NULL, NULL, 0 };
            if (fxp_ctx_new(&s.ctx) < 0 || fxp_ctx_set_threads(s.ctx, threads[ti]) < 0) {
                fprintf(stderr, "bench_mixing: %s\n", fxp_last_error());
                return 1;
            }
            /* the authors' initialisation: N(0,1)/sqrt(4C^2) + I at the centre, masked */
            float *k2 = randn((size_t)4 * C * C, 3, 1.0f / (2.0f * (float)C));
            s.k3 = calloc((size_t)9 * C * C, sizeof(float));
            s.z = randn(n, 4, 1);
            s.bias = randn((size_t)C, 5, 0.1f);
            s.x = malloc(n * sizeof(float));
            if (!s.k3 || !s.x) {
                fprintf(stderr, "bench_mixing: out of memory\n");
                return 1;
            }
            for (int oc = 0; oc < C; oc++)
                for (int ic = 0; ic < C; ic++)
                    for (int a = 0; a < 2; a++)
                        for (int d = 0; d < 2; d++) {
                            float *kv = &k2[((oc * C + ic) * 2 + a) * 2 + d];
                            if (a == 1 && d == 1 && ic == oc) *kv += 1.0f;
                            if (a == 1 && d == 1 && ic > oc) *kv = 0.0f; /* the mask */
                            s.k3[((oc * C + ic) * 3 + a) * 3 + d] = *kv;
                        }
            double best;
            const double ts = bench_median(run_sar, &s, 2, min_reps, min_time, &best);
            if (s.failed) status = 1;
            char sh[32];
            snprintf(sh, sizeof sh, "%d,%d,%d", C, H, W);
            printf("%-10s %4d %10.3f\n", sh, threads[ti], ts * 1e3);
            if (js)
                fprintf(js, "%s {\"shape\": [%d,%d,%d], \"threads\": %d, \"solve_ms\": %.4f}",
                        first ? "" : ",\n", C, H, W, threads[ti], ts * 1e3);
            first = 0;
            if (dump && ti == 0) {
                char stem[128];
                snprintf(stem, sizeof stem, "sar_%dx%dx%d_b%d", C, H, W, batch);
                if (write_f32(dump, stem, "z", s.z, n) < 0 ||
                    write_f32(dump, stem, "k", k2, (size_t)4 * C * C) < 0 ||
                    write_f32(dump, stem, "b", s.bias, (size_t)C) < 0 ||
                    write_f32(dump, stem, "x", s.x, n) < 0)
                    status = 1;
            }
            free(k2);
            free(s.k3);
            free(s.z);
            free(s.bias);
            free(s.x);
            fxp_ctx_free(s.ctx);
        }
    if (js) {
        fprintf(js, "\n]}\n");
        fclose(js);
    }
    return status;
}
