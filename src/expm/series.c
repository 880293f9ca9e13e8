/* The implicit exponential series over a generic linear operator, with and
 * without the tape (see expm.h for the maths and the adjoint recursion). */
#include <math.h>
#include <string.h>

#include "expm/expm_internal.h"

#define CHUNK 16384

fxp_expm_opts fxp_expm_fixed(int terms)
{
    fxp_expm_opts o = { terms, 0.0, 1, terms, 0.0 };
    return o;
}

const fxp_expm_opts *fxp__expm_opts_or_default(const fxp_expm_opts *o)
{
    static const fxp_expm_opts six = { 6, 0.0, 1, 6, 0.0 };
    return o ? o : &six;
}

int fxp__expm_check_opts(fxp_ctx *ctx, const char *func, const fxp_expm_opts *o)
{
    if (o->tol < 0 || !isfinite(o->tol))
        return fxp__err(ctx, FXP_EINVAL, func, "tol = %g must be finite and >= 0", o->tol);
    if (o->tol == 0 && (o->terms < 1 || o->terms > 1000))
        return fxp__err(ctx, FXP_EINVAL, func, "terms = %d outside [1, 1000]", o->terms);
    if (o->tol > 0 && (o->min_terms < 1 || o->max_terms < o->min_terms || o->max_terms > 1000))
        return fxp__err(ctx, FXP_EINVAL, func,
                        "adaptive series needs 1 <= min_terms (%d) <= max_terms (%d) <= 1000",
                        o->min_terms, o->max_terms);
    if (o->norm_bound < 0 || !isfinite(o->norm_bound))
        return fxp__err(ctx, FXP_EINVAL, func, "norm_bound = %g must be finite and >= 0",
                        o->norm_bound);
    return FXP_OK;
}

int fxp__check_finite_buf(fxp_ctx *ctx, const char *func, const char *what, const float *p,
                          int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(p[i]))
            return fxp__err(ctx, FXP_ENUMERIC, func, "%s holds %s at flat index %lld", what,
                            isnan(p[i]) ? "NaN" : "Inf", (long long)i);
    return FXP_OK;
}

/* term[i] = s * m[i]; y[i] += term[i]; returns sum term^2 (fixed chunk order). */
FXP_CLONES double fxp__expm_add_term(fxp_ctx *ctx, int64_t n, float s, const float *m, float *term,
                                    float *y)
{
    const int64_t nchunks = (n + CHUNK - 1) / CHUNK;
    double stack[256], total = 0;
    const int nt = ctx->n_threads;
    for (int64_t c0 = 0; c0 < nchunks; c0 += 256) {
        const int64_t c1 = FXP_MIN(nchunks, c0 + 256);
        FXP_PARALLEL_FOR(nt, n > 32768,
            for (int64_t c = c0; c < c1; c++) {
                double acc[8] = { 0 }; /* eight independent sums: not add-latency bound */
                const int64_t hi = FXP_MIN(n, (c + 1) * CHUNK);
                int64_t i = c * CHUNK;
                for (; i + 8 <= hi; i += 8)
                    for (int l = 0; l < 8; l++) {
                        const float v = s * m[i + l];
                        term[i + l] = v;
                        y[i + l] += v;
                        acc[l] += (double)v * v;
                    }
                for (; i < hi; i++) {
                    const float v = s * m[i];
                    term[i] = v;
                    y[i] += v;
                    acc[0] += (double)v * v;
                }
                stack[c - c0] = ((acc[0] + acc[1]) + (acc[2] + acc[3])) +
                                ((acc[4] + acc[5]) + (acc[6] + acc[7]));
            });
        for (int64_t c = c0; c < c1; c++) total += stack[c - c0];
    }
    return total;
}

/* The remainder bound after term i with norm ni (see expm.h), or -1 when no
 * certificate is available. */
static double remainder_bound(double mu, int i, double ni)
{
    if (mu <= 0) return -1;
    double r = mu / (i + 1);
    return r < 1 ? ni * r / (1 - r) : -1;
}

/* The series.  Terms t_1 .. t_{T-1} are written to saved[1..] when saved is
 * non-NULL (allocated through the tape), else to two scratch buffers used in
 * turn. t_T always lands in scratch. */
static int series(fxp_ctx *ctx, fxp_tape *tape, const fxp_linop *op, const float *x, float *y,
                  float sign, const fxp_expm_opts *o, fxp_expm_info *info, float ***saved_out,
                  double *xnorm_out)
{
    const int64_t n = op->size;
    const int adaptive = o->tol > 0;
    const int tmax = adaptive ? o->max_terms : o->terms;
    int rc = FXP_OK;
    fxp__arena_mark mark = fxp__scratch_save(ctx);
    float *buf[2];
    buf[0] = fxp__scratch_alloc(ctx, (size_t)n * sizeof(float));
    buf[1] = tape ? buf[0] : fxp__scratch_alloc(ctx, (size_t)n * sizeof(float));
    float **saved = NULL;
    if (!buf[0] || !buf[1]) {
        rc = FXP_ENOMEM;
        goto out;
    }
    if (tape) {
        saved = fxp_tape_alloc(tape, (size_t)(tmax + 1) * sizeof *saved);
        if (!saved) {
            rc = FXP_ENOMEM;
            goto out;
        }
        saved[0] = (float *)x; /* read only */
    }
    const double xnorm = sqrt(fxp__sumsq(ctx, x, n));
    if (y != x) memcpy(y, x, (size_t)n * sizeof(float));
    const float *prev = x;
    const double mu = o->norm_bound > 0 ? o->norm_bound : op->norm_bound;
    double ni = xnorm, bound = -1;
    int T = 0;
    for (int i = 1; i <= tmax; i++) {
        float *dst = buf[i & 1];
        if (tape && i < tmax) { /* may become t_{T-1}: keep it on the tape */
            dst = fxp_tape_alloc(tape, (size_t)n * sizeof(float));
            if (!dst) {
                rc = FXP_ENOMEM;
                goto out;
            }
        }
        /* t_i = (sign / i) M prev into dst, y += t_i: fused by the operator,
         * or its product and then one elementwise pass */
        if (op->apply_term) {
            double ss = 0;
            if ((rc = op->apply_term(op->self, ctx, prev, dst, sign / (float)i, y, &ss)) < 0)
                goto out;
            ni = sqrt(ss);
        } else {
            if ((rc = op->apply(op->self, ctx, prev, dst)) < 0) goto out;
            ni = sqrt(fxp__expm_add_term(ctx, n, sign / (float)i, dst, dst, y));
        }
        if (!isfinite(ni)) {
            rc = fxp__err(ctx, FXP_ENUMERIC, "fxp_expm", "series term %d is not finite", i);
            goto out;
        }
        if (saved) saved[i] = dst;
        prev = dst;
        T = i;
        bound = remainder_bound(mu, i, ni);
        if (adaptive && i >= o->min_terms) {
            double est = bound >= 0 ? bound : ni;
            if (est <= o->tol * xnorm) break;
            if (i == tmax) {
                rc = fxp__err(ctx, FXP_ECONVERGE, "fxp_expm",
                              "series not below tol %g after %d terms (last term norm %g, "
                              "input norm %g)", o->tol, i, ni, xnorm);
                goto out;
            }
        }
    }
    if (info) {
        info->terms = T;
        info->last_norm = ni;
        info->error_bound = bound;
    }
    if (saved_out) *saved_out = saved;
    if (xnorm_out) *xnorm_out = xnorm;
out:
    fxp__scratch_restore(ctx, mark);
    return rc;
}

double fxp_expm_linop_logdet(fxp_ctx *ctx, const fxp_linop *op, int negate)
{
    FXP_API_SCOPE();
    if (!op || !op->trace) {
        FXP_ERR(ctx, FXP_EINVAL, "operator %s", op ? "has no trace callback" : "is NULL");
        return NAN;
    }
    const double tr = op->trace(op->self);
    return negate ? -tr : tr;
}

int fxp_expm_linop_apply(fxp_ctx *ctx, const fxp_linop *op, const float *x, float *y,
                         int negate, const fxp_expm_opts *opts, fxp_expm_info *info)
{
    FXP_API_SCOPE();
    if (!ctx || !op || !op->apply || !x || !y || op->size < 1)
        return FXP_ERR(ctx, FXP_EINVAL, "NULL argument or empty operator");
    if (!(op->norm_bound >= 0) || !isfinite(op->norm_bound))
        return FXP_ERR(ctx, FXP_EINVAL, "operator norm_bound = %g must be finite and >= 0",
                       op->norm_bound);
    opts = fxp__expm_opts_or_default(opts);
    int rc = fxp__expm_check_opts(ctx, __func__, opts);
    if (rc < 0) return rc;
    return series(ctx, NULL, op, x, y, negate ? -1.0f : 1.0f, opts, info, NULL, NULL);
}

int fxp__expm_raw_converged(fxp_ctx *ctx, const char *func, int terms, double last_norm,
                            double xnorm)
{
    if (last_norm <= FXP_EXPM_RAW_TOL * xnorm) return FXP_OK;
    return fxp__err(ctx, FXP_ECONVERGE, func, "the series has not converged after %d terms: the "
                    "last term's norm %.3g is %.3g times the input's (at most %g allowed); the "
                    "map's norm is too large for %d terms (scale it down or use more terms)",
                    terms, last_norm, last_norm / xnorm, FXP_EXPM_RAW_TOL, terms);
}

int fxp__expm_raw(fxp_ctx *ctx, const fxp_linop *op, const float *x, float *y, int negate,
                  int terms)
{
    const fxp_expm_opts o = fxp_expm_fixed(terms);
    fxp_expm_info info;
    double xnorm = 0;
    int rc = series(ctx, NULL, op, x, y, negate ? -1.0f : 1.0f, &o, &info, NULL, &xnorm);
    if (rc < 0) return rc;
    return fxp__expm_raw_converged(ctx, __func__, terms, info.last_norm, xnorm);
}

typedef struct linop_saved {
    fxp_linop op;
    float sign;
    int terms;
    int consumed; /* set by the backward, which overwrites t[1..] */
    float **t;    /* t[0] = x (never written), t[1..terms-1] on the tape */
} linop_saved;

/* Adjoint recursion: a_T = g, a_{i-1} = g + (s/i) M^T a_i, dx += a_0,
 * dtheta += (s/i) d<a_i, M t_{i-1}>/dtheta.  Memory: one scratch buffer for
 * a; M^T a_i is written over t_i, which is dead once step i+1 is done (so the
 * node can be back-propagated once; a second backward is refused). */
static int linop_backward(fxp_tape *tape, const fxp_node *node)
{
    linop_saved *sv = node->saved;
    fxp_ctx *ctx = fxp_tape_ctx(tape);
    if (sv->consumed)
        return FXP_ERR(ctx, FXP_ESTATE, "the exponential's saved terms were used by an earlier "
                       "backward through this tape; rebuild the tape to differentiate again");
    sv->consumed = 1;
    const int64_t n = sv->op.size;
    const float *g = node->out->grad;
    fxp_var *x = node->in[0];
    int params_need = 0;
    for (int k = 1; k < node->n_in; k++) params_need |= node->in[k]->grad != NULL;
    int rc = FXP_OK;
    fxp__arena_mark mark = fxp__scratch_save(ctx);
    float *a = fxp__scratch_alloc(ctx, (size_t)n * sizeof(float));
    if (!a) {
        rc = FXP_ENOMEM;
        goto out;
    }
    const int nt = ctx->n_threads;
    const float *ai = g; /* a_T = g */
    for (int i = sv->terms; i >= 1; i--) {
        const float s = sv->sign / (float)i;
        if (params_need && sv->op.param_grad &&
            (rc = sv->op.param_grad(sv->op.self, ctx, sv->t[i - 1], ai, s)) < 0)
            goto out;
        if (i == 1 && !x->grad) break;
        /* tmp = M^T a_i lands in a when a_i is g, else over the dead t_i */
        float *tmp = i == sv->terms ? a : sv->t[i];
        if ((rc = sv->op.apply_t(sv->op.self, ctx, ai, tmp)) < 0) goto out;
        FXP_PARALLEL_FOR(nt, n > 32768,
            for (int64_t k = 0; k < n; k++) a[k] = g[k] + s * tmp[k];);
        ai = a;
    }
    if (x->grad)
        for (int64_t k = 0; k < n; k++) x->grad[k] += ai[k];
out:
    fxp__scratch_restore(ctx, mark);
    return rc;
}

int fxp_expm_linop(fxp_tape *t, fxp_var **out, fxp_var *x, const fxp_linop *op, int negate,
                   int n_params, fxp_var *const *params, const fxp_expm_opts *opts,
                   fxp_expm_info *info)
{
    FXP_API_SCOPE();
    if (!t) return FXP_ERR(NULL, FXP_EINVAL, "tape is NULL");
    fxp_ctx *ctx = fxp_tape_ctx(t);
    if (!out || !x || !op || !op->apply || !op->apply_t)
        return FXP_ERR(ctx, FXP_EINVAL, "NULL argument or incomplete operator");
    if (!(op->norm_bound >= 0) || !isfinite(op->norm_bound))
        return FXP_ERR(ctx, FXP_EINVAL, "operator norm_bound = %g must be finite and >= 0",
                       op->norm_bound);
    if (n_params < 0 || n_params > FXP_NODE_MAX_IN - 1 || (n_params && !params))
        return FXP_ERR(ctx, FXP_EINVAL, "n_params = %d outside [0, %d]", n_params,
                       FXP_NODE_MAX_IN - 1);
    if (op->size != fxp_tensor_numel(&x->value))
        return FXP_ERR(ctx, FXP_ESHAPE, "operator acts on %lld floats, x holds %lld",
                       (long long)op->size, (long long)fxp_tensor_numel(&x->value));
    opts = fxp__expm_opts_or_default(opts);
    int rc = fxp__expm_check_opts(ctx, __func__, opts);
    if (rc < 0) return rc;
    fxp_var *in[FXP_NODE_MAX_IN];
    in[0] = x;
    for (int k = 0; k < n_params; k++) in[k + 1] = params[k];
    const int need = fxp_tape_needs_grad(t, n_params + 1, in);
    fxp_var *y;
    if ((rc = fxp_tape_var(t, &y, x->value.ndim, x->value.shape)) < 0) return rc;
    fxp_expm_info local;
    float **terms = NULL;
    if ((rc = series(ctx, need ? t : NULL, op, x->value.data, y->value.data,
                     negate ? -1.0f : 1.0f, opts, &local, &terms, NULL)) < 0)
        return rc;
    if (info) *info = local;
    if (need) {
        linop_saved *sv = fxp_tape_alloc(t, sizeof *sv);
        if (!sv) return FXP_ENOMEM;
        sv->op = *op;
        sv->sign = negate ? -1.0f : 1.0f;
        sv->terms = local.terms;
        sv->consumed = 0;
        sv->t = terms;
        if ((rc = fxp_tape_record(t, "fxp_expm", linop_backward, y, n_params + 1, in, sv)) < 0)
            return rc;
    }
    *out = y;
    return FXP_OK;
}
