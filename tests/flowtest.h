/* Checks every flow layer's tests share: fxp_flow_check with tolerances, and
 * gradients of a scalar of (z, logdet) with respect to the input and to the
 * trainable parameters against central differences, in either direction. */
#ifndef FXP_FLOWTEST_H
#define FXP_FLOWTEST_H

#include "testutil.h"

/* Round trip, cancelling logdets and logdet vs the brute-force Jacobian. The
 * logdet must also be away from 0 when `nontrivial` (so the test can fail). */
static inline void flowtest_check(fxp_ctx *ctx, fxp_flow *f, const fxp_flow_io *io,
                                  const fxp_tensor *x, double tol_logdet, int nontrivial)
{
    fxp_flow_check_result r;
    ck_assert_ok(fxp_flow_check(ctx, f, io, x, 0, &r));
    ck_assert_msg(r.roundtrip_err < 1e-4, "%s: round trip error %g", fxp_flow_name(f),
                  r.roundtrip_err);
    ck_assert_msg(r.logdet_sum_err < 1e-3 * fmax(1.0, fabs(r.logdet)),
                  "%s: forward and inverse logdets differ by %g", fxp_flow_name(f),
                  r.logdet_sum_err);
    ck_assert_msg(r.logdet_err < tol_logdet, "%s: logdet %.6f, brute-force Jacobian %.6f",
                  fxp_flow_name(f), r.logdet, r.logdet_brute);
    if (nontrivial)
        ck_assert_msg(fabs(r.logdet) > 0.05, "%s: logdet %g too close to 0 to test",
                      fxp_flow_name(f), r.logdet);
}

/* L = sum_i r_i out_i + sum_b logdet_b of the forward (or inverse), r fixed. */
static inline int flowtest_loss(fxp_tape *t, fxp_flow *f, const fxp_flow_io *io, fxp_var *x,
                                int inverse, fxp_var **loss)
{
    fxp_var *z, *ld, *r, *s, *l;
    int rc = inverse ? fxp_flow_inverse(f, t, io, x, &z, &ld) : fxp_flow_forward(f, t, io, x, &z, &ld);
    if (rc < 0) return rc;
    if ((rc = fxp_tape_var(t, &r, z->value.ndim, z->value.shape)) < 0) return rc;
    test_randn(r->value.data, (size_t)fxp_tensor_numel(&r->value), 4242, 1);
    if ((rc = fxp_mul(t, &s, z, r)) < 0) return rc;
    if ((rc = fxp_sum(t, &s, s, FXP_AXES_ALL, 0)) < 0) return rc;
    if ((rc = fxp_sum(t, &l, ld, FXP_AXES_ALL, 0)) < 0) return rc;
    return fxp_add(t, loss, s, l);
}

static inline double flowtest_eval(fxp_ctx *ctx, fxp_flow *f, const fxp_flow_io *io,
                                   const fxp_tensor *x, int inverse, fxp_params *ps, int backward,
                                   float *gx)
{
    fxp_tape *t;
    ck_assert_ok(fxp_tape_new(ctx, &t));
    fxp_tape_set_grad_enabled(t, backward);
    fxp_var *vx, *l;
    /* the same draws on every evaluation (split priors' inverse) */
    fxp_flow_io io2 = io ? *io : (fxp_flow_io){ 0 };
    fxp_rng rng;
    if (io2.rng) {
        rng = *io2.rng;
        io2.rng = &rng;
    }
    ck_assert_ok(fxp_tape_input(t, &vx, x, backward && gx));
    ck_assert_ok(flowtest_loss(t, f, &io2, vx, inverse, &l));
    const double v = l->value.data[0];
    if (backward) {
        fxp_params_zero_grad(ps);
        ck_assert_ok(fxp_tape_backward(t, l, NULL));
        if (gx) {
            const int64_t n = fxp_tensor_numel(x);
            for (int64_t i = 0; i < n; i++) gx[i] = vx->grad ? vx->grad[i] : 0.0f;
        }
    }
    fxp_tape_free(t);
    return v;
}

/* Central difference of the loss in one float (a parameter or an input
 * element) against the analytic value g: the error relative to
 * max(|numeric|, |g|, floor).  A ReLU kink inside [v - h, v + h] spoils a
 * difference; the step is then retried at h/4, h/16, h/64 and the best kept. */
static inline double flowtest_diff(fxp_ctx *ctx, fxp_flow *f, const fxp_flow_io *io,
                                   const fxp_tensor *x, int inverse, fxp_params *ps, float *v,
                                   float h, double g, double floor, double *num_out)
{
    double best = INFINITY;
    const float v0 = *v;
    for (int k = 0; k < 4 && best > 0.01; k++, h /= 4) {
        const float hh = h * fmaxf(1.0f, fabsf(v0));
        *v = v0 + hh;
        const double lp = flowtest_eval(ctx, f, io, x, inverse, ps, 0, NULL);
        *v = v0 - hh;
        const double lm = flowtest_eval(ctx, f, io, x, inverse, ps, 0, NULL);
        *v = v0;
        const double num = (lp - lm) / ((double)(v0 + hh) - (double)(v0 - hh));
        const double e = fabs(num - g) / fmax(floor, fmax(fabs(num), fabs(g)));
        if (e < best) {
            best = e;
            *num_out = num;
        }
    }
    return best;
}

/* Gradients w.r.t. at most max_checks trainable parameters (every one if
 * there are fewer; else a fixed pseudo-random subset) and every input
 * element, against central differences with step h (relative), the error
 * relative to max(|numeric|, |analytic|, 1e-2 * largest).  Networks with
 * many ReLUs put kinks near some elements at every step size, so a few
 * elements may miss: the check fails if more than 5% of the parameters (or
 * of the inputs) checked, and at least two, exceed tol.  A wrong backward
 * breaks whole tensors, far more than that. */
static inline void flowtest_grads(fxp_ctx *ctx, fxp_flow *f, const fxp_flow_io *io, fxp_tensor *x,
                                  int inverse, fxp_params *ps, int max_checks, float h, double tol)
{
    const size_t np = fxp_params_size(ps, FXP_PARAM_TRAINABLE);
    const int64_t nx = fxp_tensor_numel(x);
    float *gx = malloc((size_t)nx * sizeof *gx), *gp = malloc((np ? np : 1) * sizeof *gp);
    flowtest_eval(ctx, f, io, x, inverse, ps, 1, gx);
    memcpy(gp, fxp_params_grad_data(ps), np * sizeof *gp);
    double scale = 1e-3, worst = 0, worst_num = 0, worst_ana = 0;
    size_t worst_i = 0, misses = 0;
    for (size_t i = 0; i < np; i++) scale = fmax(scale, fabs(gp[i]));
    for (int64_t i = 0; i < nx; i++) scale = fmax(scale, fabs(gx[i]));
    float *w = fxp_params_data(ps, FXP_PARAM_TRAINABLE);
    const size_t checks = np < (size_t)max_checks ? np : (size_t)max_checks;
    fxp_rng r;
    fxp_rng_seed(&r, 77);
    for (size_t k = 0; k < checks; k++) {
        const size_t i = checks == np ? k : (size_t)fxp_rng_below(&r, np);
        double num;
        const double e = flowtest_diff(ctx, f, io, x, inverse, ps, &w[i], h, gp[i],
                                       1e-2 * scale, &num);
        misses += e >= tol;
        if (e > worst) {
            worst = e;
            worst_i = i;
            worst_num = num;
            worst_ana = gp[i];
        }
    }
    ck_assert_msg(misses < 2 || misses * 20 <= checks,
                  "%s %s: %zu of %zu parameter gradients off; worst %zu error %g (numeric %g, "
                  "analytic %g)",
                  fxp_flow_name(f), inverse ? "inverse" : "forward", misses, checks, worst_i, worst,
                  worst_num, worst_ana);
    worst = 0;
    worst_num = worst_ana = 0;
    misses = 0;
    for (int64_t i = 0; i < nx; i++) {
        double num;
        const double e = flowtest_diff(ctx, f, io, x, inverse, ps, &x->data[i], h, gx[i],
                                       1e-2 * scale, &num);
        misses += e >= tol;
        if (e > worst) {
            worst = e;
            worst_i = (size_t)i;
            worst_num = num;
            worst_ana = gx[i];
        }
    }
    ck_assert_msg(misses < 2 || misses * 20 <= (size_t)nx,
                  "%s %s: %zu of %lld input gradients off; worst %zu error %g (numeric %g, "
                  "analytic %g)",
                  fxp_flow_name(f), inverse ? "inverse" : "forward", misses, (long long)nx,
                  worst_i, worst, worst_num, worst_ana);
    free(gx);
    free(gp);
}

/* Perturb every trainable parameter by N(0, std^2) (leave zero-initialised
 * heads non-zero so that layers are not the identity). */
static inline void flowtest_perturb(fxp_params *ps, uint64_t seed, float std)
{
    const size_t n = fxp_params_size(ps, FXP_PARAM_TRAINABLE);
    float *w = fxp_params_data(ps, FXP_PARAM_TRAINABLE), *e = malloc(n * sizeof *e);
    test_randn(e, n, seed, std);
    for (size_t i = 0; i < n; i++) w[i] += e[i];
    free(e);
}

#endif
