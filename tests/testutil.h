/* Shared helpers for the Check suites.  Each tests/check-<area>.c defines a
 * suite and ends with FXP_TEST_MAIN(its_suite).  Check forks every test:
 * nothing in main() may start OpenMP or BLAS threads. */
#ifndef FXP_TESTUTIL_H
#define FXP_TESTUTIL_H

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowexp.h"

#define FXP_TEST_MAIN(make_suite)                                            \
    int main(void)                                                           \
    {                                                                        \
        SRunner *sr = srunner_create(make_suite());                          \
        srunner_run_all(sr, CK_NORMAL);                                      \
        int failed = srunner_ntests_failed(sr);                              \
        srunner_free(sr);                                                    \
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;                         \
    }

/* expr must succeed; on failure show the status and the message. */
#define ck_assert_ok(expr)                                                   \
    do {                                                                     \
        int rc_ = (expr);                                                    \
        ck_assert_msg(rc_ == FXP_OK, "%s -> %s: %s", #expr,                  \
                      fxp_status_name(rc_), fxp_last_error());               \
    } while (0)

/* expr must fail with `code` and leave a non-empty message both in the
 * thread's last error and (if ctx is non-NULL) in the context. */
#define ck_assert_fails(expr, code, ctx)                                     \
    do {                                                                     \
        fxp_ctx *ctx_ = (ctx);                                               \
        if (ctx_) fxp_ctx_clear_error(ctx_);                                 \
        int rc_ = (expr);                                                    \
        ck_assert_msg(rc_ == (code), "%s -> %s, expected %s (%s)", #expr,    \
                      fxp_status_name(rc_), fxp_status_name(code),           \
                      fxp_last_error());                                     \
        ck_assert_msg(fxp_last_error()[0] != '\0', "%s: empty message", #expr); \
        if (ctx_)                                                            \
            ck_assert_msg(fxp_ctx_error(ctx_)[0] != '\0' &&                  \
                              fxp_ctx_status(ctx_) == (code),                \
                          "%s: context holds no error", #expr);              \
    } while (0)

static inline fxp_ctx *test_ctx(int threads)
{
    fxp_ctx *ctx = NULL;
    ck_assert_ok(fxp_ctx_new(&ctx));
    ck_assert_ok(fxp_ctx_set_threads(ctx, threads));
    return ctx;
}

/* Deterministic N(0, std^2) fill from a seed. */
static inline void test_randn(float *x, size_t n, uint64_t seed, float std)
{
    fxp_rng r;
    fxp_rng_seed(&r, seed);
    fxp_rng_normal(&r, x, n, 0.0f, std);
}

/* max_i |a_i - b_i| / max(1e-6, max_i |b_i|): error relative to the scale of
 * the reference b. */
static inline double test_rel_err(const float *a, const float *b, size_t n)
{
    double num = 0, den = 1e-6;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= num)) num = d; /* NaN propagates */
        if (fabs((double)b[i]) > den) den = fabs((double)b[i]);
    }
    return num / den;
}

/* Gradient-check helper: fails the test if the relative error exceeds tol. */
#define ck_assert_gradcheck(ctx, fn, user, n, inputs, wrt, eps, tol)         \
    do {                                                                     \
        fxp_gradcheck_result gr_;                                            \
        ck_assert_ok(fxp_gradcheck((ctx), (fn), (user), (n), (inputs), (wrt), (eps), &gr_)); \
        ck_assert_msg(gr_.max_rel_err < (tol),                               \
                      "gradcheck %s: rel err %.3g (input %d index %lld: analytic %.6g numeric %.6g)", \
                      #fn, gr_.max_rel_err, gr_.worst_input, (long long)gr_.worst_index, \
                      gr_.worst_analytic, gr_.worst_numeric);                \
    } while (0)

#endif
