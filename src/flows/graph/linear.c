/* Invertible per-node linear map of graph features (see layers.h).
 *
 * x [B, N, F]:  z[b, n, :] = x[b, n, :] W,  W [F, F] shared by all nodes, so
 * the Jacobian of one graph is block diagonal with N copies of W^T and
 * logdet[g] = N log|det W|.  Inverse: x = z W^-1.
 */
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "flows/flow_internal.h"
#include "flowexp/expm.h"
#include "flowexp/layers.h"

typedef struct graph_linear {
    fxp_flow base;
    int features;
    fxp_param *weight; /* [F, F] */
} graph_linear;

static int check_input(graph_linear *l, const fxp_var *x)
{
    char sx[64];
    if (x->value.ndim != 3 || x->value.shape[2] != l->features)
        return FXP_ERR(l->base.ctx, FXP_ESHAPE, "%s: x is %s but the layer expects [B,N,%d]",
                       l->base.name, fxp_tensor_shape_str(&x->value, sx, sizeof sx),
                       l->features);
    return FXP_OK;
}

/* logdet[b] = sign * N * log|det W| for every graph b of x [B, N, F]. */
static int linear_logdet(fxp_tape *t, fxp_var *w, const fxp_var *x, float sign,
                         fxp_var **logdet)
{
    fxp_var *lad, *zeros;
    int rc, one = 1;
    FXP_TRY(fxp_logabsdet(t, &lad, w));
    FXP_TRY(fxp_reshape(t, &lad, lad, 1, &one));
    FXP_TRY(fxp_scale(t, &lad, lad, sign * (float)x->value.shape[1]));
    FXP_TRY(fxp__zeros(t, &zeros, 1, x->value.shape));
    FXP_TRY(fxp_add(t, logdet, zeros, lad));
out:
    return rc;
}

static int linear_forward(fxp_flow *f, fxp_tape *t, const fxp_flow_io *io, fxp_var *x,
                          fxp_var **z, fxp_var **logdet)
{
    graph_linear *l = (graph_linear *)f;
    fxp_var *w;
    int rc;
    FXP_TRY(check_input(l, x));
    FXP_TRY(fxp_tape_param(t, &w, l->weight));
    FXP_TRY(fxp_linear(t, z, x, w, NULL));
    FXP_TRY(linear_logdet(t, w, x, 1.0f, logdet));
out:
    return rc;
}

static int linear_inverse(fxp_flow *f, fxp_tape *t, const fxp_flow_io *io, fxp_var *z,
                          fxp_var **x, fxp_var **logdet)
{
    graph_linear *l = (graph_linear *)f;
    fxp_var *w, *winv;
    int rc;
    FXP_TRY(check_input(l, z));
    FXP_TRY(fxp_tape_param(t, &w, l->weight));
    FXP_TRY(fxp_inverse(t, &winv, w));
    FXP_TRY(fxp_linear(t, x, z, winv, NULL));
    FXP_TRY(linear_logdet(t, w, z, -1.0f, logdet));
out:
    return rc;
}

static void linear_destroy(fxp_flow *f) { free(f); }

static const fxp_flow_vtable linear_vtable = { "graph_linear", linear_forward, linear_inverse,
                                               linear_destroy };

int fxp_graph_linear_new(fxp_ctx *ctx, fxp_params *ps, const char *name, int features,
                         fxp_rng *rng, fxp_flow **out)
{
    FXP_API_SCOPE();
    if (!ps || !out) return FXP_ERR(ctx, FXP_EINVAL, "ps or out is NULL");
    if (features < 1 || features > 4096)
        return FXP_ERR(ctx, FXP_EINVAL, "features = %d outside [1, 4096]", features);
    graph_linear *l = calloc(1, sizeof *l);
    int rc;
    if (!l) return FXP_ERR(ctx, FXP_ENOMEM, "cannot allocate a linear layer");
    FXP_TRY(fxp__flow_init(&l->base, &linear_vtable, ctx, name));
    l->features = features;
    char pname[FXP_PARAM_NAME_MAX];
    int shape[2] = { features, features };
    FXP_TRY(fxp__flow_param_name(&l->base, "weight", pname, sizeof pname));
    FXP_TRY(fxp_params_add(ps, pname, FXP_PARAM_TRAINABLE, 2, shape, &l->weight));
    float *w = fxp_param_value(l->weight).data;
    for (int i = 0; i < features; i++) w[i * features + i] = 1.0f;
    *out = &l->base;
    return FXP_OK;
out:
    free(l);
    return rc;
}
