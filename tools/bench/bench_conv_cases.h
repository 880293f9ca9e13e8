/* The convolution-exponential cases timed by bench_expm and bench_sweep
 * (not a public header): forward with 6 terms and inverse with 13 through a
 * context, and forward + backward (6 terms) on a tape, whose gradients of
 * sum(y) with respect to x and the kernel are what the peer computes.  A
 * failure ends the program with the library's message. */
#ifndef FLOWEXP_BENCH_CONV_CASES_H
#define FLOWEXP_BENCH_CONV_CASES_H

#include <stdio.h>
#include <stdlib.h>

#include "core/internal.h"

typedef struct conv_case {
    fxp_ctx *ctx;
    fxp_tape *tape;
    fxp_tensor x, k; /* [b, c, h, w] and [c, c, 3, 3] */
    float *y;        /* b c h w floats */
    int b, c, h, w;
} conv_case;

static inline void bench_fail(const char *what)
{
    fprintf(stderr, "bench: %s: %s\n", what, fxp_last_error());
    exit(1);
}

static inline void conv_fwd(void *p)
{
    conv_case *c = p;
    if (fxp_conv_exp_ctx(c->ctx, c->x.data, c->y, c->k.data, c->b, c->c, c->h, c->w, 3, 3, 6, 0) < 0)
        bench_fail("conv fwd");
}

static inline void conv_inv(void *p)
{
    conv_case *c = p;
    if (fxp_conv_exp_ctx(c->ctx, c->x.data, c->y, c->k.data, c->b, c->c, c->h, c->w, 3, 3, 13, 1) < 0)
        bench_fail("conv inverse");
}

static inline void conv_fwdbwd(void *p)
{
    conv_case *c = p;
    fxp_var *vx, *vk, *y, *l;
    fxp_tape_reset(c->tape);
    fxp_expm_opts o = fxp_expm_fixed(6);
    if (fxp_tape_input(c->tape, &vx, &c->x, 1) < 0 || fxp_tape_input(c->tape, &vk, &c->k, 1) < 0 ||
        fxp_expm_conv(c->tape, &y, vx, vk, FXP_PAD_ZERO, 0, &o, NULL) < 0 ||
        fxp_sum(c->tape, &l, y, FXP_AXES_ALL, 0) < 0 || fxp_tape_backward(c->tape, l, NULL) < 0)
        bench_fail("conv fwd+bwd");
}

#endif
