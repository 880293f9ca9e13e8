/* The LipSwish activation and its derivative as tape ops (residual.h). */
#include <math.h>

#include "ops/ops_internal.h"

#define LIPSWISH_DIV 1.1
#define CHUNK 16384 /* beta-gradient partial sums: fixed chunks, summed in order */

typedef struct swish_saved {
    int derivative;
} swish_saved;

static inline double sigmoid(double z) { return 1.0 / (1.0 + exp(-z)); }

/* For y = x sigma(s x) / 1.1:
 *   dy/dx  = (sigma + z q) / 1.1,                   z = s x, q = sigma (1 - sigma)
 *   dy/ds  = x^2 q / 1.1
 * and for y' = dy/dx:
 *   dy'/dx = (2 s q + s z q (1 - 2 sigma)) / 1.1
 *   dy'/ds = (2 x q + z x q (1 - 2 sigma)) / 1.1
 * with ds/dbeta = sigmoid(beta).  Writes d/dx into gx (added) and returns
 * the chunk's sum of g d/ds. */
static double chunk_backward(int deriv, double s, const float *x, const float *g, float *gx,
                             int64_t from, int64_t to)
{
    double acc = 0;
    for (int64_t i = from; i < to; i++) {
        const double xi = x[i], z = s * xi, sg = sigmoid(z), q = sg * (1 - sg);
        double dx, ds;
        if (!deriv) {
            dx = sg + z * q;
            ds = xi * xi * q;
        } else {
            const double r = 1 - 2 * sg;
            dx = 2 * s * q + s * z * q * r;
            ds = 2 * xi * q + z * xi * q * r;
        }
        if (gx) gx[i] += (float)(g[i] * dx / LIPSWISH_DIV);
        acc += g[i] * ds / LIPSWISH_DIV;
    }
    return acc;
}

static int swish_backward(fxp_tape *t, const fxp_node *n)
{
    const swish_saved *sv = n->saved;
    fxp_var *x = n->in[0], *beta = n->in[1];
    const double b = beta->value.data[0];
    const double s = b > 20 ? b : log1p(exp(b));
    const int64_t total = fxp_tensor_numel(&x->value), nchunks = (total + CHUNK - 1) / CHUNK;
    fxp_ctx *ctx = fxp__tctx(t);
    const int nt = ctx->n_threads;
    double *part = fxp_tape_alloc(t, (size_t)nchunks * sizeof *part);
    if (!part) return FXP_ENOMEM;
    const float *xv = x->value.data, *g = n->out->grad;
    float *gx = x->grad;
    const int deriv = sv->derivative;
    FXP_PARALLEL_FOR(nt, total > FXP_PAR_THRESHOLD,
        for (int64_t c = 0; c < nchunks; c++)
            part[c] = chunk_backward(deriv, s, xv, g, gx, c * CHUNK,
                                     FXP_MIN(total, (c + 1) * CHUNK)););
    if (beta->grad) {
        double acc = 0;
        for (int64_t c = 0; c < nchunks; c++) acc += part[c];
        beta->grad[0] += (float)(acc * sigmoid(b));
    }
    return FXP_OK;
}

int fxp_lipswish(fxp_tape *t, fxp_var **out, fxp_var *x, fxp_var *beta, int derivative)
{
    FXP_API_SCOPE();
    fxp_var *in[2] = { x, beta };
    int rc = fxp__ops_check_vars(t, __func__, 2, in);
    if (rc < 0) return rc;
    fxp_ctx *ctx = fxp__tctx(t);
    if (!out) return FXP_ERR(ctx, FXP_EINVAL, "out is NULL");
    char s1[64];
    if (fxp_tensor_numel(&beta->value) != 1)
        return FXP_ERR(ctx, FXP_ESHAPE, "beta %s must hold one value",
                       fxp__vshape(beta, s1, sizeof s1));
    fxp_var *y;
    if ((rc = fxp_tape_var(t, &y, x->value.ndim, x->value.shape)) < 0) return rc;
    const double b = beta->value.data[0];
    const double s = b > 20 ? b : log1p(exp(b)); /* softplus */
    const int64_t total = fxp_tensor_numel(&x->value);
    const float *xv = x->value.data;
    float *yv = y->value.data;
    const int nt = ctx->n_threads;
    if (!derivative) {
        FXP_PARALLEL_FOR(nt, total > FXP_PAR_THRESHOLD,
            for (int64_t i = 0; i < total; i++) {
                const double xi = xv[i];
                yv[i] = (float)(xi * sigmoid(s * xi) / LIPSWISH_DIV);
            });
    } else {
        FXP_PARALLEL_FOR(nt, total > FXP_PAR_THRESHOLD,
            for (int64_t i = 0; i < total; i++) {
                const double z = s * xv[i], sg = sigmoid(z);
                yv[i] = (float)((sg + z * sg * (1 - sg)) / LIPSWISH_DIV);
            });
    }
    if (fxp_tape_needs_grad(t, 2, in)) {
        swish_saved *sv = fxp_tape_alloc(t, sizeof *sv);
        if (!sv) return FXP_ENOMEM;
        sv->derivative = derivative != 0;
        if ((rc = fxp_tape_record(t, "fxp_lipswish", swish_backward, y, 2, in, sv)) < 0)
            return rc;
    }
    *out = y;
    return FXP_OK;
}
