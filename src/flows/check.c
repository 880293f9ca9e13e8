/* fxp_flow_check: round trip and log-determinant of a layer against the
 * brute-force Jacobian (see flow.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "flows/flow_internal.h"

/* log|det A| of a d x d row-major matrix by LU with partial pivoting (A is
 * overwritten); -inf if singular. */
static double lu_logabsdet(double *a, int d)
{
    double s = 0;
    for (int k = 0; k < d; k++) {
        int p = k;
        for (int i = k + 1; i < d; i++)
            if (fabs(a[(size_t)i * d + k]) > fabs(a[(size_t)p * d + k])) p = i;
        if (a[(size_t)p * d + k] == 0) return -INFINITY;
        if (p != k)
            for (int j = 0; j < d; j++) {
                double tmp = a[(size_t)k * d + j];
                a[(size_t)k * d + j] = a[(size_t)p * d + j];
                a[(size_t)p * d + j] = tmp;
            }
        const double piv = a[(size_t)k * d + k];
        s += log(fabs(piv));
        for (int i = k + 1; i < d; i++) {
            const double m = a[(size_t)i * d + k] / piv;
            if (m == 0) continue;
            for (int j = k + 1; j < d; j++) a[(size_t)i * d + j] -= m * a[(size_t)k * d + j];
        }
    }
    return s;
}

/* v's first `rows` rows repeated to n rows (row i is row i % rows), as a new
 * tape variable. */
static int repeat_rows(fxp_tape *t, const fxp_tensor *v, int rows, int n, fxp_var **out)
{
    int shape[FXP_MAX_DIMS];
    memcpy(shape, v->shape, sizeof shape);
    shape[0] = n;
    int rc = fxp_tape_var(t, out, v->ndim, shape);
    if (rc < 0) return rc;
    const size_t row = (size_t)(fxp_tensor_numel(v) / v->shape[0]);
    for (int i = 0; i < n; i++)
        memcpy((*out)->value.data + (size_t)i * row, v->data + (size_t)(i % rows) * row,
               row * sizeof(float));
    return FXP_OK;
}

/* Flattened (z, eps_1..eps_k) of example b: the forward's output followed by
 * the factored-out parts in the order they were appended. */
static void gather_out(const fxp_var *z, const fxp_latents *lat, int b, double *dst)
{
    size_t k = 0;
    const size_t zr = (size_t)(fxp_tensor_numel(&z->value) / z->value.shape[0]);
    for (size_t i = 0; i < zr; i++) dst[k++] = z->value.data[(size_t)b * zr + i];
    for (int l = 0; l < lat->n; l++) {
        const fxp_tensor *e = &lat->z[l]->value;
        const size_t er = (size_t)(fxp_tensor_numel(e) / e->shape[0]);
        for (size_t i = 0; i < er; i++) dst[k++] = e->data[(size_t)b * er + i];
    }
}

static size_t out_dims(const fxp_var *z, const fxp_latents *lat)
{
    size_t d = (size_t)(fxp_tensor_numel(&z->value) / z->value.shape[0]);
    for (int l = 0; l < lat->n; l++)
        d += (size_t)(fxp_tensor_numel(&lat->z[l]->value) / lat->z[l]->value.shape[0]);
    return d;
}

int fxp_flow_check(fxp_ctx *ctx, fxp_flow *f, const fxp_flow_io *io, const fxp_tensor *x,
                   float h, fxp_flow_check_result *r)
{
    FXP_API_SCOPE();
    if (!f || !x || !r || !x->data) return FXP_ERR(ctx, FXP_EINVAL, "NULL argument");
    if (x->ndim < 2) return FXP_ERR(ctx, FXP_ESHAPE, "x needs a batch and at least one more dimension");
    const int B = x->shape[0];
    const int64_t D64 = fxp_tensor_numel(x) / B;
    if (D64 > 4096)
        return FXP_ERR(ctx, FXP_EINVAL, "%s: %lld dimensions per example (at most 4096)", f->name,
                       (long long)D64);
    const int D = (int)D64;
    memset(r, 0, sizeof *r);
    r->dims = D;
    fxp_flow_io base = io ? *io : (fxp_flow_io){ 0 };
    base.training = 0;
    base.rng = NULL;
    base.temperature = 1;
    fxp_latents lat = { 0 };
    fxp_tape *t = NULL;
    double *jac = NULL, *plus = NULL, *minus = NULL;
    int rc;
    FXP_TRY(fxp_tape_new(ctx, &t));
    fxp_tape_set_grad_enabled(t, 0);

    /* round trip on the whole batch */
    fxp_var *vx, *z, *ld, *xr, *ldr;
    fxp_flow_io rio = base;
    rio.latents = &lat;
    FXP_TRY(fxp_tape_input(t, &vx, x, 0));
    FXP_TRY(fxp_flow_forward(f, t, &rio, vx, &z, &ld));
    double ld0 = ld->value.data[0];
    for (int l = 0; l < lat.n; l++) ld0 -= lat.log_prob[l]->value.data[0];
    r->logdet = ld0;
    if (out_dims(z, &lat) != (size_t)D) {
        rc = FXP_ERR(ctx, FXP_ESHAPE,
                     "%s: forward gives %zu values per example (output and factored-out parts) "
                     "for %d inputs",
                     f->name, out_dims(z, &lat), D);
        goto out;
    }
    FXP_TRY(fxp_flow_inverse(f, t, &rio, z, &xr, &ldr));
    if (lat.n != 0) {
        rc = FXP_ERR(ctx, FXP_EINTERNAL, "%s: the inverse left %d factored-out parts unused",
                     f->name, lat.n);
        goto out;
    }
    if (!fxp_tensor_same_shape(&xr->value, x)) {
        rc = FXP_ERR(ctx, FXP_ESHAPE, "%s: the inverse does not return x's shape", f->name);
        goto out;
    }
    double xmax = 1, err = 0, lerr = 0;
    for (int64_t i = 0; i < (int64_t)B * D; i++) xmax = fmax(xmax, fabs(x->data[i]));
    for (int64_t i = 0; i < (int64_t)B * D; i++) {
        const double e = fabs((double)xr->value.data[i] - x->data[i]);
        if (!(e <= err)) err = e; /* NaN propagates */
    }
    for (int b = 0; b < B; b++) {
        const double e = fabs((double)ld->value.data[b] + ldr->value.data[b]);
        if (!(e <= lerr)) lerr = e;
    }
    r->roundtrip_err = err / xmax;
    r->logdet_sum_err = lerr;

    /* Jacobian of example 0 from 4D perturbed copies in one batch: copies
     * 4j .. 4j+3 are x_0 + h e_j, x_0 - h e_j, x_0 + h/4 e_j, x_0 - h/4 e_j */
    double rms = 0;
    for (int j = 0; j < D; j++) rms += (double)x->data[j] * x->data[j];
    rms = sqrt(rms / D);
    const double step = (h > 0 ? h : 1e-2) * fmax(1.0, rms);
    const double steps[4] = { step, -step, step / 4, -step / 4 };
    fxp_tape_reset(t);
    lat.n = 0;
    fxp_var *vp, *zp, *ldp;
    FXP_TRY(repeat_rows(t, x, 1, 4 * D, &vp));
    const size_t row = (size_t)D;
    for (int j = 0; j < D; j++)
        for (int k = 0; k < 4; k++)
            vp->value.data[(size_t)(4 * j + k) * row + j] = (float)(x->data[j] + steps[k]);
    fxp_flow_io jio = base;
    jio.latents = &lat;
    fxp_var *ctxv = NULL;
    if (io && io->context) {
        FXP_TRY(repeat_rows(t, &io->context->value, 1, 4 * D, &ctxv));
        jio.context = ctxv;
    }
    fxp_tensor adj_rep = { 0 };
    if (io && io->adj && io->adj->ndim == 3) {
        fxp_var *av;
        FXP_TRY(repeat_rows(t, io->adj, 1, 4 * D, &av));
        adj_rep = av->value;
        jio.adj = &adj_rep;
    }
    FXP_TRY(fxp_flow_forward(f, t, &jio, vp, &zp, &ldp));
    jac = malloc((size_t)D * D * sizeof *jac);
    plus = malloc((size_t)2 * D * sizeof *plus);
    minus = malloc((size_t)2 * D * sizeof *minus);
    if (!jac || !plus || !minus) {
        rc = FXP_ERR(ctx, FXP_ENOMEM, "cannot allocate a %dx%d Jacobian", D, D);
        goto out;
    }
    double jmax = 0;
    int kinks = 0;
    for (int j = 0; j < D; j++) {
        /* the steps float actually took */
        const float *pj = vp->value.data + (size_t)(4 * j) * row + j;
        const double h1 = (double)pj[0] - (double)pj[row], h2 = (double)pj[2 * row] - (double)pj[3 * row];
        gather_out(zp, &lat, 4 * j, plus);
        gather_out(zp, &lat, 4 * j + 1, minus);
        gather_out(zp, &lat, 4 * j + 2, plus + D);
        gather_out(zp, &lat, 4 * j + 3, minus + D);
        double dmax = 0, cmax = 0;
        for (int i = 0; i < D; i++) {
            const double a = (plus[i] - minus[i]) / h1, b = (plus[D + i] - minus[D + i]) / h2;
            dmax = fmax(dmax, fabs(a - b));
            cmax = fmax(cmax, fabs(b));
        }
        /* smooth: the two differences agree to O(h^2) and Richardson's
         * (16 J(h/4) - J(h)) / 15 removes that term; otherwise a kink (e.g. a
         * ReLU) lies within h of x_0 and the smaller step is the better guess */
        const int smooth = dmax <= 1e-2 * fmax(cmax, 1e-6);
        kinks += !smooth;
        for (int i = 0; i < D; i++) {
            const double a = (plus[i] - minus[i]) / h1, b = (plus[D + i] - minus[D + i]) / h2;
            const double v = smooth ? (16 * b - a) / 15 : b;
            jac[(size_t)i * D + j] = v;
            jmax = fmax(jmax, fabs(v));
        }
    }
    r->kink_columns = kinks;
    r->jacobian_max = jmax;
    r->logdet_brute = lu_logabsdet(jac, D);
    r->logdet_err = fabs(r->logdet - r->logdet_brute);
    if (isnan(r->logdet_err)) r->logdet_err = INFINITY;
    rc = FXP_OK;
out:
    free(jac);
    free(plus);
    free(minus);
    fxp_tape_free(t);
    return rc;
}
