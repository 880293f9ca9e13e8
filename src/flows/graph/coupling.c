/* Affine coupling over the feature axis of graph data (see layers.h).
 *
 * x [B, N, F] is split along the features into halves (x_a, x_b) of F/2
 * each; x_a passes through and conditions an elementwise affine map of x_b:
 *   z_b = x_b * exp(s) + t,   x_b = (z_b - t) * exp(-s),
 *   s = bound * tanh(raw / bound),   logdet[g] = sum_{n, f} s[g, n, f].
 * The conditioner is built from dense layers applied to every node with the
 * same weights plus one of three message kinds (A_hat h, attention over the
 * edges, edge MLPs), all symmetric in the nodes, so the layer is permutation
 * equivariant.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "flows/flow_internal.h"
#include "flowexp/expm.h"
#include "flowexp/layers.h"
#include "flows/graph/graph_internal.h"

/* A dense layer: w [in, out], b [out]. */
typedef struct dense {
    fxp_param *w, *b;
} dense;

typedef struct graph_coupling {
    fxp_flow base;
    fxp_graph_coupling_opts o;
    int half;        /* F / 2 */
    dense *embed;    /* [mlp_layers]: F/2 -> H, then H -> H */
    dense *rounds;   /* [rounds * mlp_layers]: 2H -> H, then H -> H (MP, attention) */
    fxp_param **qkv; /* [rounds * 3] attention projections W_q, W_k, W_v [H, H] */
    dense *edges;    /* [rounds * mlp_layers] edge MLPs: (W_i, b) on h_i, then H -> H */
    fxp_param **src; /* [rounds] W_j [H, H] of the first edge layer, on h_j */
    dense head;      /* H -> 2 * F/2, zero-initialised */
} graph_coupling;

void fxp_graph_coupling_opts_default(fxp_graph_coupling_opts *o)
{
    memset(o, 0, sizeof *o);
    o->features = 2;
    o->swap = 0;
    o->cond = FXP_GRAPH_COND_ATTN;
    o->hidden = 32;
    o->mlp_layers = 2;
    o->rounds = 1;
    o->heads = 4;
    o->scale_bound = 2.0f;
    o->act = FXP_GRAPH_ACT_RELU;
}

/* ---- normalised adjacency ---------------------------------------------------- */

/* Check the adjacency against x [B, N, F]: [N, N] or [B, N, N]. */
static int check_adj(const graph_coupling *c, const fxp_tensor *adj, const fxp_tensor *x)
{
    char sa[64], sx[64];
    const int b = x->shape[0], n = x->shape[1];
    int ok = (adj->ndim == 2 && adj->shape[0] == n && adj->shape[1] == n) ||
             (adj->ndim == 3 && adj->shape[0] == b && adj->shape[1] == n && adj->shape[2] == n);
    if (!ok)
        return FXP_ERR(c->base.ctx, FXP_ESHAPE,
                       "%s: adjacency is %s but x is %s (expected [%d,%d] or [%d,%d,%d])",
                       c->base.name, fxp_tensor_shape_str(adj, sa, sizeof sa),
                       fxp_tensor_shape_str(x, sx, sizeof sx), n, n, b, n, n);
    return FXP_OK;
}

/* A_hat = D^-1/2 A D^-1/2 (fxp_graph_normalize, which also rejects negative
 * or non-finite weights, self-loops and isolated nodes) as a tape variable
 * without gradient, same shape as adj. */
static int normalized_adj(fxp_tape *t, const fxp_tensor *adj, fxp_var **out)
{
    int rc = fxp_tape_var(t, out, adj->ndim, adj->shape);
    if (rc < 0) return rc;
    return fxp_graph_normalize(fxp_tape_ctx(t), adj, &(*out)->value, NULL);
}

/* ---- conditioner -------------------------------------------------------------- */

static int activation(fxp_tape *t, fxp_graph_act act, fxp_var **out, fxp_var *x)
{
    switch (act) {
    case FXP_GRAPH_ACT_TANH: return fxp_tanh(t, out, x);
    case FXP_GRAPH_ACT_SOFTPLUS: return fxp_softplus(t, out, x);
    default: return fxp_relu(t, out, x);
    }
}

/* out = act(x w + b) for x [B, N, in]. */
static int dense_act(graph_coupling *c, fxp_tape *t, const dense *d, fxp_var *x, fxp_var **out)
{
    fxp_var *w, *b, *y;
    int rc;
    FXP_TRY(fxp_tape_param(t, &w, d->w));
    FXP_TRY(fxp_tape_param(t, &b, d->b));
    FXP_TRY(fxp_linear(t, &y, x, w, b));
    FXP_TRY(activation(t, c->o.act, out, y));
out:
    return rc;
}

/* Edge-MLP messages of round r: for h [B, N, H],
 *   e_ij = MLP_edge(h_i, h_j) = act(... act(h_i W_i + h_j W_j + b) ...)  [B, N, N, H]
 *   msg_i = sum_j A_hat_ij e_ij                                          [B, N, H]
 * built from broadcasting ops: [B, N, 1, H] + [B, 1, N, H]. */
static int edge_messages(graph_coupling *c, fxp_tape *t, int r, fxp_var *h, fxp_var *ahat,
                         fxp_var **msg)
{
    const int nl = c->o.mlp_layers, hid = c->o.hidden;
    const int b_count = h->value.shape[0], n = h->value.shape[1];
    fxp_var *w, *b, *ei, *ej, *e, *a;
    int rc;
    const int si[4] = { b_count, n, 1, hid }, sj[4] = { b_count, 1, n, hid };
    FXP_TRY(fxp_tape_param(t, &w, c->edges[r * nl].w));
    FXP_TRY(fxp_tape_param(t, &b, c->edges[r * nl].b));
    FXP_TRY(fxp_linear(t, &ei, h, w, b));
    FXP_TRY(fxp_reshape(t, &ei, ei, 4, si));
    FXP_TRY(fxp_tape_param(t, &w, c->src[r]));
    FXP_TRY(fxp_linear(t, &ej, h, w, NULL));
    FXP_TRY(fxp_reshape(t, &ej, ej, 4, sj));
    FXP_TRY(fxp_add(t, &e, ei, ej));
    FXP_TRY(activation(t, c->o.act, &e, e));
    for (int i = 1; i < nl; i++) FXP_TRY(dense_act(c, t, &c->edges[r * nl + i], e, &e));
    /* A_hat [N, N] or [B, N, N] -> [.., N, N, 1] to weight the edges */
    int as[4];
    const int ad = ahat->value.ndim;
    for (int k = 0; k < ad; k++) as[k] = ahat->value.shape[k];
    as[ad] = 1;
    FXP_TRY(fxp_reshape(t, &a, ahat, ad + 1, as));
    FXP_TRY(fxp_mul(t, &e, e, a));
    FXP_TRY(fxp_sum(t, msg, e, FXP_AXIS(2), 0));
out:
    return rc;
}

/* (s, shift) [B, N, F/2] from the conditioning half xa [B, N, F/2]. */
static int conditioner(graph_coupling *c, fxp_tape *t, const fxp_flow_io *io, fxp_var *xa,
                       fxp_var **s, fxp_var **shift)
{
    const fxp_graph_coupling_opts *o = &c->o;
    fxp_var *h = xa, *ahat = NULL, *w, *b, *raw, *raw_s;
    int rc;
    for (int i = 0; i < o->mlp_layers; i++) FXP_TRY(dense_act(c, t, &c->embed[i], h, &h));
    if (o->cond != FXP_GRAPH_COND_MLP) FXP_TRY(normalized_adj(t, io->adj, &ahat));
    if (o->cond != FXP_GRAPH_COND_MLP) {
        for (int r = 0; r < o->rounds; r++) {
            /* h <- h + MLP_r([h, msg]), msg = A_hat h or attention */
            fxp_var *msg, *u;
            if (o->cond == FXP_GRAPH_COND_MP) {
                FXP_TRY(fxp_adj_matmul(t, &msg, ahat, h));
            } else if (o->cond == FXP_GRAPH_COND_EDGE) {
                FXP_TRY(edge_messages(c, t, r, h, ahat, &msg));
            } else {
                fxp_var *wp, *qkv[3];
                for (int i = 0; i < 3; i++) {
                    FXP_TRY(fxp_tape_param(t, &wp, c->qkv[r * 3 + i]));
                    FXP_TRY(fxp_linear(t, &qkv[i], h, wp, NULL));
                }
                FXP_TRY(fxp__graph_attention(t, &msg, qkv[0], qkv[1], qkv[2], io->adj, o->heads));
            }
            FXP_TRY(fxp_concat(t, &u, h, msg, 2));
            for (int i = 0; i < o->mlp_layers; i++)
                FXP_TRY(dense_act(c, t, &c->rounds[r * o->mlp_layers + i], u, &u));
            FXP_TRY(fxp_add(t, &h, h, u));
        }
    }
    FXP_TRY(fxp_tape_param(t, &w, c->head.w));
    FXP_TRY(fxp_tape_param(t, &b, c->head.b));
    FXP_TRY(fxp_linear(t, &raw, h, w, b));
    FXP_TRY(fxp_split(t, &raw_s, shift, raw, 2, c->half));
    /* s = bound * tanh(raw / bound) */
    FXP_TRY(fxp_scale(t, &raw_s, raw_s, 1.0f / o->scale_bound));
    FXP_TRY(fxp_tanh(t, &raw_s, raw_s));
    FXP_TRY(fxp_scale(t, s, raw_s, o->scale_bound));
out:
    return rc;
}

/* Validate x (and the adjacency when the conditioner needs it). */
static int check_input(graph_coupling *c, const fxp_flow_io *io, const fxp_var *x)
{
    char sx[64];
    if (x->value.ndim != 3 || x->value.shape[2] != c->o.features)
        return FXP_ERR(c->base.ctx, FXP_ESHAPE, "%s: x is %s but the layer expects [B,N,%d]",
                       c->base.name, fxp_tensor_shape_str(&x->value, sx, sizeof sx),
                       c->o.features);
    if (c->o.cond != FXP_GRAPH_COND_MLP) {
        if (!io->adj)
            return FXP_ERR(c->base.ctx, FXP_EINVAL,
                           "%s: message passing needs an adjacency (io->adj is NULL)",
                           c->base.name);
        return check_adj(c, io->adj, &x->value);
    }
    return FXP_OK;
}

/* Split x into (conditioning, transformed) halves according to swap. */
static int split_halves(graph_coupling *c, fxp_tape *t, fxp_var *x, fxp_var **xa, fxp_var **xb)
{
    return c->o.swap ? fxp_split(t, xb, xa, x, 2, c->half) : fxp_split(t, xa, xb, x, 2, c->half);
}

static int join_halves(graph_coupling *c, fxp_tape *t, fxp_var *xa, fxp_var *xb, fxp_var **out)
{
    return c->o.swap ? fxp_concat(t, out, xb, xa, 2) : fxp_concat(t, out, xa, xb, 2);
}

/* z_b = x_b exp(s) + t; logdet = sum s. */
static int coupling_forward(fxp_flow *f, fxp_tape *t, const fxp_flow_io *io, fxp_var *x,
                            fxp_var **z, fxp_var **logdet)
{
    graph_coupling *c = (graph_coupling *)f;
    fxp_var *xa, *xb, *s, *shift, *e, *zb;
    int rc;
    FXP_TRY(check_input(c, io, x));
    FXP_TRY(split_halves(c, t, x, &xa, &xb));
    FXP_TRY(conditioner(c, t, io, xa, &s, &shift));
    FXP_TRY(fxp_exp(t, &e, s));
    FXP_TRY(fxp_mul(t, &zb, xb, e));
    FXP_TRY(fxp_add(t, &zb, zb, shift));
    FXP_TRY(join_halves(c, t, xa, zb, z));
    FXP_TRY(fxp_sum(t, logdet, s, FXP_AXES_FROM(1), 0));
out:
    return rc;
}

/* x_b = (z_b - t) exp(-s); logdet = -sum s. */
static int coupling_inverse(fxp_flow *f, fxp_tape *t, const fxp_flow_io *io, fxp_var *z,
                            fxp_var **x, fxp_var **logdet)
{
    graph_coupling *c = (graph_coupling *)f;
    fxp_var *za, *zb, *s, *shift, *neg_s, *e, *xb, *sum_s;
    int rc;
    FXP_TRY(check_input(c, io, z));
    FXP_TRY(split_halves(c, t, z, &za, &zb));
    FXP_TRY(conditioner(c, t, io, za, &s, &shift));
    FXP_TRY(fxp_scale(t, &neg_s, s, -1.0f));
    FXP_TRY(fxp_exp(t, &e, neg_s));
    FXP_TRY(fxp_sub(t, &xb, zb, shift));
    FXP_TRY(fxp_mul(t, &xb, xb, e));
    FXP_TRY(join_halves(c, t, za, xb, x));
    FXP_TRY(fxp_sum(t, &sum_s, neg_s, FXP_AXES_FROM(1), 0));
    *logdet = sum_s;
out:
    return rc;
}

static void coupling_destroy(fxp_flow *f)
{
    graph_coupling *c = (graph_coupling *)f;
    free(c->embed);
    free(c->rounds);
    free(c->qkv);
    free(c->edges);
    free(c->src);
    free(c);
}

static const fxp_flow_vtable coupling_vtable = { "graph_coupling", coupling_forward,
                                                 coupling_inverse, coupling_destroy };

/* ---- construction ------------------------------------------------------------- */

/* Register "<layer>/<leaf>/{w,b}" with w [in, out] ~ N(0, gain^2 / in) (gain
 * 0: zeros) and b = 0. */
static int add_dense(graph_coupling *c, fxp_params *ps, const char *leaf, int in, int out,
                     float gain, fxp_rng *rng, dense *d)
{
    char name[FXP_PARAM_NAME_MAX], sub[96];
    int rc, wshape[2] = { in, out };
    snprintf(sub, sizeof sub, "%s/w", leaf);
    FXP_TRY(fxp__flow_param_name(&c->base, sub, name, sizeof name));
    FXP_TRY(fxp_params_add(ps, name, FXP_PARAM_TRAINABLE, 2, wshape, &d->w));
    if (gain > 0) {
        fxp_tensor w = fxp_param_value(d->w);
        fxp_rng_normal(rng, w.data, (size_t)in * out, 0.0f, gain / sqrtf((float)in));
    }
    snprintf(sub, sizeof sub, "%s/b", leaf);
    FXP_TRY(fxp__flow_param_name(&c->base, sub, name, sizeof name));
    FXP_TRY(fxp_params_add(ps, name, FXP_PARAM_TRAINABLE, 1, &out, &d->b));
out:
    return rc;
}

static int check_opts(fxp_ctx *ctx, const fxp_graph_coupling_opts *o)
{
    if (o->features < 2 || o->features % 2)
        return FXP_ERR(ctx, FXP_EINVAL, "features = %d must be even and >= 2", o->features);
    if (o->cond != FXP_GRAPH_COND_MLP && o->cond != FXP_GRAPH_COND_MP &&
        o->cond != FXP_GRAPH_COND_ATTN && o->cond != FXP_GRAPH_COND_EDGE)
        return FXP_ERR(ctx, FXP_EINVAL, "unknown conditioner %d", (int)o->cond);
    if (o->act != FXP_GRAPH_ACT_RELU && o->act != FXP_GRAPH_ACT_TANH &&
        o->act != FXP_GRAPH_ACT_SOFTPLUS)
        return FXP_ERR(ctx, FXP_EINVAL, "unknown activation %d", (int)o->act);
    if (o->hidden < 1 || o->mlp_layers < 1)
        return FXP_ERR(ctx, FXP_EINVAL, "hidden = %d and mlp_layers = %d must be >= 1",
                       o->hidden, o->mlp_layers);
    if (o->cond != FXP_GRAPH_COND_MLP && o->rounds < 1)
        return FXP_ERR(ctx, FXP_EINVAL, "rounds = %d must be >= 1 for message passing",
                       o->rounds);
    if (o->cond == FXP_GRAPH_COND_ATTN && (o->heads < 1 || o->hidden % o->heads))
        return FXP_ERR(ctx, FXP_EINVAL, "heads = %d must be >= 1 and divide hidden = %d",
                       o->heads, o->hidden);
    if (!(o->scale_bound > 0.0f) || !(o->scale_bound < 1e6f))
        return FXP_ERR(ctx, FXP_EINVAL, "scale_bound = %g must be finite and > 0",
                       (double)o->scale_bound);
    return FXP_OK;
}

int fxp_graph_coupling_new(fxp_ctx *ctx, fxp_params *ps, const char *name,
                           const fxp_graph_coupling_opts *opts, fxp_rng *rng, fxp_flow **out)
{
    FXP_API_SCOPE();
    if (!ps || !opts || !rng || !out)
        return FXP_ERR(ctx, FXP_EINVAL, "ps, opts, rng or out is NULL");
    int rc = check_opts(ctx, opts);
    if (rc < 0) return rc;
    graph_coupling *c = calloc(1, sizeof *c);
    if (!c) return FXP_ERR(ctx, FXP_ENOMEM, "cannot allocate a coupling layer");
    if ((rc = fxp__flow_init(&c->base, &coupling_vtable, ctx, name)) < 0) {
        free(c);
        return rc;
    }
    c->o = *opts;
    c->o.swap = opts->swap != 0;
    if (c->o.cond == FXP_GRAPH_COND_MLP) c->o.rounds = 0;
    c->half = opts->features / 2;
    const int h = opts->hidden, nl = opts->mlp_layers;
    const float gain = opts->act == FXP_GRAPH_ACT_RELU ? sqrtf(2.0f) : 1.0f;
    char leaf[64];
    c->embed = calloc((size_t)nl, sizeof *c->embed);
    c->rounds = calloc((size_t)FXP_MAX(c->o.rounds * nl, 1), sizeof *c->rounds);
    c->qkv = calloc((size_t)FXP_MAX(c->o.rounds * 3, 1), sizeof *c->qkv);
    c->edges = calloc((size_t)FXP_MAX(c->o.rounds * nl, 1), sizeof *c->edges);
    c->src = calloc((size_t)FXP_MAX(c->o.rounds, 1), sizeof *c->src);
    if (!c->embed || !c->rounds || !c->qkv || !c->edges || !c->src) {
        rc = FXP_ERR(ctx, FXP_ENOMEM, "cannot allocate %s", name);
        goto out;
    }
    for (int i = 0; i < nl; i++) {
        snprintf(leaf, sizeof leaf, "embed/%d", i);
        FXP_TRY(add_dense(c, ps, leaf, i ? h : c->half, h, gain, rng, &c->embed[i]));
    }
    for (int r = 0; r < c->o.rounds; r++) {
        static const char *const qkv_names[3] = { "q", "k", "v" };
        for (int i = 0; c->o.cond == FXP_GRAPH_COND_ATTN && i < 3; i++) {
            char pname[FXP_PARAM_NAME_MAX];
            int shape[2] = { h, h };
            snprintf(leaf, sizeof leaf, "round/%d/%s", r, qkv_names[i]);
            FXP_TRY(fxp__flow_param_name(&c->base, leaf, pname, sizeof pname));
            FXP_TRY(fxp_params_add(ps, pname, FXP_PARAM_TRAINABLE, 2, shape, &c->qkv[r * 3 + i]));
            fxp_tensor w = fxp_param_value(c->qkv[r * 3 + i]);
            fxp_rng_normal(rng, w.data, (size_t)h * h, 0.0f, 1.0f / sqrtf((float)h));
        }
        for (int i = 0; c->o.cond == FXP_GRAPH_COND_EDGE && i < nl; i++) {
            snprintf(leaf, sizeof leaf, "round/%d/edge/%d", r, i);
            FXP_TRY(add_dense(c, ps, leaf, h, h, gain, rng, &c->edges[r * nl + i]));
            if (i == 0) {
                char pname[FXP_PARAM_NAME_MAX];
                int shape[2] = { h, h };
                snprintf(leaf, sizeof leaf, "round/%d/edge/src", r);
                FXP_TRY(fxp__flow_param_name(&c->base, leaf, pname, sizeof pname));
                FXP_TRY(fxp_params_add(ps, pname, FXP_PARAM_TRAINABLE, 2, shape, &c->src[r]));
                fxp_tensor w = fxp_param_value(c->src[r]);
                fxp_rng_normal(rng, w.data, (size_t)h * h, 0.0f, gain / sqrtf((float)(2 * h)));
                /* the pair layer has fan-in 2H: rescale W_i to match */
                fxp_tensor wi = fxp_param_value(c->edges[r * nl].w);
                for (int64_t k = 0; k < (int64_t)h * h; k++) wi.data[k] *= sqrtf(0.5f);
            }
        }
        for (int i = 0; i < nl; i++) {
            snprintf(leaf, sizeof leaf, "round/%d/%d", r, i);
            FXP_TRY(add_dense(c, ps, leaf, i ? h : 2 * h, h, gain, rng, &c->rounds[r * nl + i]));
        }
    }
    FXP_TRY(add_dense(c, ps, "head", h, 2 * c->half, 0.0f, rng, &c->head));
    *out = &c->base;
    return FXP_OK;
out:
    coupling_destroy(&c->base);
    return rc;
}
