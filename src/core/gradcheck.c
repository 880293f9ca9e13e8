/* Finite-difference gradient checker (see fxp_gradcheck in tape.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

/* Run fn on fresh input variables; return L = sum_i r_i out_i in double. If
 * grads is non-NULL, also back-propagate and copy each checked input's
 * gradient into grads[k]. */
static int evaluate(fxp_tape *t, fxp_gradcheck_fn fn, void *user, int n_in,
                    fxp_tensor *const *inputs, const int *wrt, const float *r, int64_t n_out,
                    float **grads, double *loss)
{
    int rc;
    fxp_var *in[16], *out = NULL;
    fxp_tape_reset(t);
    fxp_tape_set_grad_enabled(t, grads != NULL);
    for (int k = 0; k < n_in; k++)
        FXP_TRY(fxp_tape_input(t, &in[k], inputs[k], grads && (!wrt || wrt[k])));
    FXP_TRY(fn(t, in, &out, user));
    if (!out) return FXP_ERR(fxp_tape_ctx(t), FXP_EINVAL, "function produced no output");
    if (fxp_tensor_numel(&out->value) != n_out)
        return FXP_ERR(fxp_tape_ctx(t), FXP_ESTATE, "output size changed between evaluations");
    double l = 0;
    for (int64_t i = 0; i < n_out; i++) l += (double)r[i] * out->value.data[i];
    *loss = l;
    if (grads) {
        FXP_TRY(fxp_tape_backward(t, out, r));
        for (int k = 0; k < n_in; k++) {
            if (!grads[k]) continue;
            size_t bytes = (size_t)fxp_tensor_numel(inputs[k]) * sizeof(float);
            if (in[k]->grad) memcpy(grads[k], in[k]->grad, bytes);
            else memset(grads[k], 0, bytes); /* output does not depend on it */
        }
    }
out:
    return rc;
}

int fxp_gradcheck(fxp_ctx *ctx, fxp_gradcheck_fn fn, void *user, int n_in,
                  fxp_tensor *const *inputs, const int *wrt, float eps,
                  fxp_gradcheck_result *result)
{
    FXP_API_SCOPE();
    if (!ctx || !fn || !inputs || !result || n_in < 1 || n_in > 16)
        return FXP_ERR(ctx, FXP_EINVAL, "bad arguments (n_in = %d, must be 1..16)", n_in);
    memset(result, 0, sizeof *result);
    int rc;
    fxp_tape *t = NULL;
    float *r = NULL, *grads[16] = { 0 };
    double *numeric = NULL;
    int64_t n_out = 0;

    FXP_TRY(fxp_tape_new(ctx, &t));
    /* First run, no grad, only to learn the output size. */
    {
        fxp_var *in[16], *out = NULL;
        fxp_tape_set_grad_enabled(t, 0);
        for (int k = 0; k < n_in; k++) FXP_TRY(fxp_tape_input(t, &in[k], inputs[k], 0));
        FXP_TRY(fn(t, in, &out, user));
        if (!out) {
            rc = FXP_ERR(ctx, FXP_EINVAL, "function produced no output");
            goto out;
        }
        n_out = fxp_tensor_numel(&out->value);
    }
    r = malloc((size_t)n_out * sizeof *r);
    if (!r) {
        rc = FXP_ERR(ctx, FXP_ENOMEM, "cannot allocate %lld floats", (long long)n_out);
        goto out;
    }
    fxp_rng rng;
    fxp_rng_seed(&rng, 0x6772616463686bull);
    fxp_rng_normal(&rng, r, (size_t)n_out, 0.0f, 1.0f);
    for (int k = 0; k < n_in; k++) {
        if (wrt && !wrt[k]) continue;
        grads[k] = malloc((size_t)fxp_tensor_numel(inputs[k]) * sizeof(float));
        if (!grads[k]) {
            rc = FXP_ERR(ctx, FXP_ENOMEM, "cannot allocate gradient copies");
            goto out;
        }
    }
    double l0;
    FXP_TRY(evaluate(t, fn, user, n_in, inputs, wrt, r, n_out, grads, &l0));

    /* Numeric gradients, then the error against the floor computed from them. */
    int64_t total = 0;
    for (int k = 0; k < n_in; k++)
        if (grads[k]) total += fxp_tensor_numel(inputs[k]);
    numeric = malloc((size_t)FXP_MAX(total, 1) * sizeof *numeric);
    if (!numeric) {
        rc = FXP_ERR(ctx, FXP_ENOMEM, "cannot allocate %lld doubles", (long long)total);
        goto out;
    }
    double max_num = 0;
    int64_t pos = 0;
    for (int k = 0; k < n_in; k++) {
        if (!grads[k]) continue;
        float *x = inputs[k]->data;
        for (int64_t i = 0; i < fxp_tensor_numel(inputs[k]); i++) {
            const float x0 = x[i];
            const float h = eps > 0 ? eps : 1e-2f * fmaxf(1.0f, fabsf(x0));
            double lp, lm;
            x[i] = x0 + h;
            const float hp = x[i] - x0; /* the step actually taken in float */
            rc = evaluate(t, fn, user, n_in, inputs, wrt, r, n_out, NULL, &lp);
            x[i] = x0 - h;
            const float hm = x0 - x[i];
            if (rc >= 0) rc = evaluate(t, fn, user, n_in, inputs, wrt, r, n_out, NULL, &lm);
            x[i] = x0;
            if (rc < 0) goto out;
            numeric[pos] = (lp - lm) / ((double)hp + (double)hm);
            max_num = fmax(max_num, fabs(numeric[pos]));
            pos++;
        }
    }
    const double floor_ = 1e-3 * max_num + 1e-6;
    pos = 0;
    result->worst_input = -1;
    for (int k = 0; k < n_in; k++) {
        if (!grads[k]) continue;
        for (int64_t i = 0; i < fxp_tensor_numel(inputs[k]); i++, pos++) {
            double a = grads[k][i], nm = numeric[pos];
            double abs_err = fabs(a - nm);
            double rel = abs_err / fmax(floor_, fmax(fabs(a), fabs(nm)));
            if (!isfinite(a)) rel = abs_err = INFINITY;
            result->max_abs_err = fmax(result->max_abs_err, abs_err);
            if (rel > result->max_rel_err || result->worst_input < 0) {
                result->max_rel_err = rel;
                result->worst_input = k;
                result->worst_index = i;
                result->worst_analytic = a;
                result->worst_numeric = nm;
            }
        }
    }
    rc = FXP_OK;
out:
    for (int k = 0; k < n_in; k++) free(grads[k]);
    free(numeric);
    free(r);
    fxp_tape_free(t);
    return rc;
}
