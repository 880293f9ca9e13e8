/* Activation normalisation for graph data (see layers.h).
 *
 * x [B, N, F]:  z = (x + bias) * exp(log_scale),  bias, log_scale [1, 1, F]
 * shared by all nodes and graphs, so the Jacobian of one graph is diagonal
 * with N copies of exp(log_scale) and logdet[g] = N * sum_f log_scale_f.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "flows/flow_internal.h"
#include "flowexp/layers.h"

typedef struct graph_actnorm {
    fxp_flow base;
    int features;
    fxp_param *bias, *log_scale; /* [1, 1, F] */
    fxp_param *initialized;      /* state [1]: 1 once the data-dependent init ran */
} graph_actnorm;

static int check_input(graph_actnorm *a, const fxp_var *x)
{
    char sx[64];
    if (x->value.ndim != 3 || x->value.shape[2] != a->features)
        return FXP_ERR(a->base.ctx, FXP_ESHAPE, "%s: x is %s but the layer expects [B,N,%d]",
                       a->base.name, fxp_tensor_shape_str(&x->value, sx, sizeof sx),
                       a->features);
    return FXP_OK;
}

/* bias = -mean_f, log_scale = -log(std_f + 1e-6) over the B*N rows of x. */
static void data_init(graph_actnorm *a, const fxp_tensor *x)
{
    const int f_count = a->features;
    const int64_t rows = fxp_tensor_numel(x) / f_count;
    float *bias = fxp_param_value(a->bias).data, *ls = fxp_param_value(a->log_scale).data;
    for (int f = 0; f < f_count; f++) {
        double s = 0, s2 = 0;
        for (int64_t r = 0; r < rows; r++) s += x->data[r * f_count + f];
        const double mean = s / (double)rows;
        for (int64_t r = 0; r < rows; r++) {
            double d = x->data[r * f_count + f] - mean;
            s2 += d * d;
        }
        bias[f] = (float)-mean;
        ls[f] = (float)-log(sqrt(s2 / (double)rows) + 1e-6);
    }
    fxp_param_value(a->initialized).data[0] = 1.0f;
}

/* logdet[b] = sign * N * sum_f log_scale_f for every graph b; x [B, N, F]. */
static int actnorm_logdet(fxp_tape *t, fxp_var *ls, const fxp_var *x, float sign,
                          fxp_var **logdet)
{
    fxp_var *sum, *zeros;
    int rc, one = 1;
    FXP_TRY(fxp_sum(t, &sum, ls, FXP_AXES_ALL, 1));
    FXP_TRY(fxp_reshape(t, &sum, sum, 1, &one));
    FXP_TRY(fxp_scale(t, &sum, sum, sign * (float)x->value.shape[1]));
    FXP_TRY(fxp__zeros(t, &zeros, 1, x->value.shape));
    FXP_TRY(fxp_add(t, logdet, zeros, sum));
out:
    return rc;
}

static int actnorm_forward(fxp_flow *f, fxp_tape *t, const fxp_flow_io *io, fxp_var *x,
                           fxp_var **z, fxp_var **logdet)
{
    graph_actnorm *a = (graph_actnorm *)f;
    fxp_var *b, *ls, *e, *y;
    int rc;
    FXP_TRY(check_input(a, x));
    if (io->training && fxp_param_value(a->initialized).data[0] == 0.0f)
        data_init(a, &x->value);
    FXP_TRY(fxp_tape_param(t, &b, a->bias));
    FXP_TRY(fxp_tape_param(t, &ls, a->log_scale));
    FXP_TRY(fxp_add(t, &y, x, b));
    FXP_TRY(fxp_exp(t, &e, ls));
    FXP_TRY(fxp_mul(t, z, y, e));
    FXP_TRY(actnorm_logdet(t, ls, x, 1.0f, logdet));
out:
    return rc;
}

static int actnorm_inverse(fxp_flow *f, fxp_tape *t, const fxp_flow_io *io, fxp_var *z,
                           fxp_var **x, fxp_var **logdet)
{
    graph_actnorm *a = (graph_actnorm *)f;
    fxp_var *b, *ls, *neg, *e, *y;
    int rc;
    FXP_TRY(check_input(a, z));
    FXP_TRY(fxp_tape_param(t, &b, a->bias));
    FXP_TRY(fxp_tape_param(t, &ls, a->log_scale));
    FXP_TRY(fxp_scale(t, &neg, ls, -1.0f));
    FXP_TRY(fxp_exp(t, &e, neg));
    FXP_TRY(fxp_mul(t, &y, z, e));
    FXP_TRY(fxp_sub(t, x, y, b));
    FXP_TRY(actnorm_logdet(t, ls, z, -1.0f, logdet));
out:
    return rc;
}

static void actnorm_destroy(fxp_flow *f) { free(f); }

static const fxp_flow_vtable actnorm_vtable = { "graph_actnorm", actnorm_forward,
                                                actnorm_inverse, actnorm_destroy };

int fxp_graph_actnorm_new(fxp_ctx *ctx, fxp_params *ps, const char *name, int features,
                          fxp_flow **out)
{
    FXP_API_SCOPE();
    if (!ps || !out) return FXP_ERR(ctx, FXP_EINVAL, "ps or out is NULL");
    if (features < 1) return FXP_ERR(ctx, FXP_EINVAL, "features = %d must be >= 1", features);
    graph_actnorm *a = calloc(1, sizeof *a);
    if (!a) return FXP_ERR(ctx, FXP_ENOMEM, "cannot allocate an actnorm layer");
    int rc = fxp__flow_init(&a->base, &actnorm_vtable, ctx, name);
    if (rc < 0) {
        free(a);
        return rc;
    }
    a->features = features;
    char pname[FXP_PARAM_NAME_MAX];
    int shape[3] = { 1, 1, features }, one = 1;
    FXP_TRY(fxp__flow_param_name(&a->base, "bias", pname, sizeof pname));
    FXP_TRY(fxp_params_add(ps, pname, FXP_PARAM_TRAINABLE, 3, shape, &a->bias));
    FXP_TRY(fxp__flow_param_name(&a->base, "log_scale", pname, sizeof pname));
    FXP_TRY(fxp_params_add(ps, pname, FXP_PARAM_TRAINABLE, 3, shape, &a->log_scale));
    FXP_TRY(fxp__flow_param_name(&a->base, "initialized", pname, sizeof pname));
    FXP_TRY(fxp_params_add(ps, pname, FXP_PARAM_STATE, 1, &one, &a->initialized));
    *out = &a->base;
    return FXP_OK;
out:
    free(a);
    return rc;
}
