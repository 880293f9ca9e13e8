/* The Table-4 graph models: baseline coupling flow, GNF, GNF + graph
 * convolution exponential (see graphflow.h).
 *
 * Defaults (fxp_graph_model_config_default) were chosen with short training
 * runs on MoG-4/9/16 and MoG-Ring (see the report of the graph-model work).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "flows/flow_internal.h"
#include "flowexp/graphflow.h"

/* ---- configuration ------------------------------------------------------------ */

void fxp_graph_model_config_default(fxp_graph_model_config *cfg, fxp_graph_model_kind kind)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->kind = kind;
    cfg->features = 2;
    cfg->couplings = 12;
    cfg->hidden = 48;
    cfg->mlp_layers = 3;
    cfg->rounds = 1;
    cfg->messages = FXP_GRAPH_COND_ATTN;
    cfg->heads = 4;
    cfg->scale_bound = 2.0f;
    cfg->act = FXP_GRAPH_ACT_RELU;
    cfg->actnorm = 1;
    cfg->linear = 0;
    cfg->gce_terms_train = 6;
    cfg->gce_terms_eval = 12;
    cfg->gce_coeff0 = 1.0f;
    cfg->gce_coeff1 = 1.0f;
    cfg->gce_max_degree = 0;
    cfg->base = FXP_BASE_STANDARD_NORMAL;
    cfg->batch = 32;
    cfg->train_steps = 6000;
    cfg->lr = 3e-3;
    cfg->lr_decay = 0.85;
    cfg->decay_every = 300;
    cfg->warmup = 2;
    cfg->clip_norm = 0.0;
}

static const char *const kind_names[] = { "coupling", "gnf", "gnf-gce" };
static const char *const act_names[] = { "relu", "tanh", "softplus" };
static const char *const base_names[] = { "normal", "diag" };
/* message kinds by fxp_graph_cond value (FXP_GRAPH_COND_MLP is not one) */
static const char *const msg_names[] = { "", "mean", "attention", "edge" };

const char *fxp_graph_model_kind_name(fxp_graph_model_kind kind)
{
    return (unsigned)kind < 3 ? kind_names[kind] : "";
}

/* Index of name in names[n], or -1. */
static int lookup(const char *const *names, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0) return i;
    return -1;
}

int fxp_graph_model_kind_parse(const char *name, fxp_graph_model_kind *kind)
{
    int i = name ? lookup(kind_names, 3, name) : -1;
    if (i < 0 || !kind)
        return FXP_ERR(NULL, FXP_EINVAL, "unknown graph model kind \"%s\" (coupling, gnf, gnf-gce)",
                       name ? name : "(null)");
    *kind = (fxp_graph_model_kind)i;
    return FXP_OK;
}

/* One key of the configuration: where it lives, how it is parsed, and what
 * it means (fxp_graph_model_config_key_help). */
typedef enum { T_INT, T_FLOAT, T_DOUBLE, T_KIND, T_ACT, T_BASE, T_MSG } key_type;
typedef struct key_info {
    const char *key;
    key_type type;
    size_t offset;
    double lo, hi; /* valid range of numbers (inclusive) */
    const char *help;
} key_info;

#define KEY(name, type, lo, hi, help) \
    { #name, type, offsetof(fxp_graph_model_config, name), lo, hi, help }
static const key_info keys[] = {
    KEY(kind, T_KIND, 0, 2, "model kind: coupling | gnf | gnf-gce"),
    KEY(features, T_INT, 2, 1 << 16, "features per node F (even: couplings split them in halves)"),
    KEY(couplings, T_INT, 1, 4096, "coupling layers; consecutive ones transform alternate halves"),
    KEY(hidden, T_INT, 1, 1 << 16, "width of the conditioner networks"),
    KEY(mlp_layers, T_INT, 1, 64, "dense layers per conditioner MLP"),
    KEY(rounds, T_INT, 1, 64, "message-passing rounds per conditioner (gnf, gnf-gce)"),
    KEY(messages, T_MSG, 1, 3, "conditioner messages (gnf, gnf-gce): mean | attention | edge"),
    KEY(heads, T_INT, 1, 1 << 16, "attention heads (messages = attention; must divide hidden)"),
    KEY(scale_bound, T_FLOAT, 1e-3, 1e3, "bound of the coupling's log-scale (soft, tanh)"),
    KEY(act, T_ACT, 0, 2, "activation in the MLPs: relu | tanh | softplus"),
    KEY(actnorm, T_INT, 0, 1, "1: actnorm (data-initialised scale and shift) before each coupling"),
    KEY(linear, T_INT, 0, 1, "1: a learned per-node F x F linear map before each coupling"),
    KEY(gce_terms_train, T_INT, 1, 1000, "series terms of the graph convolution exponential in training (gnf-gce)"),
    KEY(gce_terms_eval, T_INT, 1, 1000, "series terms in evaluation and sampling (gnf-gce)"),
    KEY(gce_coeff0, T_FLOAT, 1e-6, 1e3, "spectral bound ||theta0||_2 <= gce_coeff0 / max degree (gnf-gce)"),
    KEY(gce_coeff1, T_FLOAT, 1e-6, 1e3, "spectral bound ||theta1||_2 <= gce_coeff1 (gnf-gce)"),
    KEY(gce_max_degree, T_INT, 0, 1 << 24, "degree in the theta0 bound: 0 = each graph's own maximum, >= 1 fixed"),
    KEY(base, T_BASE, 0, 1, "base density per node: normal (standard) | diag (learned mean and scale per feature)"),
    KEY(batch, T_INT, 1, 1 << 24, "graphs per training step"),
    KEY(train_steps, T_INT, 0, 1 << 30, "optimizer steps of a training run"),
    KEY(lr, T_DOUBLE, 1e-12, 10, "Adam learning rate"),
    KEY(lr_decay, T_DOUBLE, 1e-6, 1, "learning-rate factor applied every decay_every steps (1: constant)"),
    KEY(decay_every, T_INT, 1, 1 << 30, "steps per learning-rate decay (the schedule's unit)"),
    KEY(warmup, T_INT, 0, 1 << 30, "linear learning-rate warm-up over this many units of decay_every steps (0: none)"),
    KEY(clip_norm, T_DOUBLE, 0, 1e12, "clip the gradient's L2 norm to this value (0: no clipping)"),
};
#undef KEY
enum { N_KEYS = (int)(sizeof keys / sizeof keys[0]) };

int fxp_graph_model_config_n_keys(void) { return N_KEYS; }

const char *fxp_graph_model_config_key(int i) { return i >= 0 && i < N_KEYS ? keys[i].key : NULL; }

const char *fxp_graph_model_config_key_help(int i)
{
    return i >= 0 && i < N_KEYS ? keys[i].help : NULL;
}

static const key_info *find_key(const char *key)
{
    for (int i = 0; key && i < N_KEYS; i++)
        if (strcmp(keys[i].key, key) == 0) return &keys[i];
    return NULL;
}

/* The value of field k of cfg as a double (enums as their index). */
static double field_number(const fxp_graph_model_config *cfg, const key_info *k)
{
    const char *p = (const char *)cfg + k->offset;
    switch (k->type) {
    case T_FLOAT: return *(const float *)p;
    case T_DOUBLE: return *(const double *)p;
    case T_KIND: return (double)*(const fxp_graph_model_kind *)p;
    case T_ACT: return (double)*(const fxp_graph_act *)p;
    case T_BASE: return (double)*(const fxp_base_kind *)p;
    case T_MSG: return (double)*(const fxp_graph_cond *)p;
    default: return *(const int *)p;
    }
}

int fxp_graph_model_config_set(fxp_graph_model_config *cfg, const char *key, const char *value)
{
    if (!cfg || !key || !value) return FXP_ERR(NULL, FXP_EINVAL, "cfg, key or value is NULL");
    const key_info *k = find_key(key);
    if (!k) return FXP_ERR(NULL, FXP_ENOTFOUND, "unknown graph model key \"%s\"", key);
    char *p = (char *)cfg + k->offset;
    double v;
    if (k->type != T_INT && k->type != T_FLOAT && k->type != T_DOUBLE) {
        const char *const *names = k->type == T_KIND  ? kind_names
                                   : k->type == T_ACT ? act_names
                                   : k->type == T_MSG ? msg_names
                                                      : base_names;
        int i = lookup(names, (int)k->hi + 1, value);
        if (i < (int)k->lo)
            return FXP_ERR(NULL, FXP_EINVAL, "%s: unknown value \"%s\"", key, value);
        if (k->type == T_KIND) *(fxp_graph_model_kind *)p = (fxp_graph_model_kind)i;
        else if (k->type == T_ACT) *(fxp_graph_act *)p = (fxp_graph_act)i;
        else if (k->type == T_MSG) *(fxp_graph_cond *)p = (fxp_graph_cond)i;
        else *(fxp_base_kind *)p = (fxp_base_kind)i;
        return FXP_OK;
    }
    char *end;
    errno = 0;
    v = strtod(value, &end);
    if (end == value || *end != '\0' || errno == ERANGE)
        return FXP_ERR(NULL, FXP_EINVAL, "%s: \"%s\" is not a number", key, value);
    if (!(v >= k->lo && v <= k->hi))
        return FXP_ERR(NULL, FXP_EINVAL, "%s = %s outside [%g, %g]", key, value, k->lo, k->hi);
    if (k->type == T_INT) {
        if (v != (double)(int)v)
            return FXP_ERR(NULL, FXP_EINVAL, "%s = %s is not an integer", key, value);
        *(int *)p = (int)v;
    } else if (k->type == T_FLOAT) {
        *(float *)p = (float)v;
    } else {
        *(double *)p = v;
    }
    return FXP_OK;
}

int fxp_graph_model_config_get(const fxp_graph_model_config *cfg, const char *key, char *buf,
                               size_t size)
{
    if (!cfg || !buf || size == 0) return FXP_ERR(NULL, FXP_EINVAL, "cfg or buf is NULL");
    buf[0] = '\0';
    const key_info *k = find_key(key);
    if (!k) return FXP_ERR(NULL, FXP_ENOTFOUND, "unknown graph model key \"%s\"", key);
    const double v = field_number(cfg, k);
    int n;
    switch (k->type) {
    case T_KIND: n = snprintf(buf, size, "%s", fxp_graph_model_kind_name(cfg->kind)); break;
    case T_ACT:
        n = snprintf(buf, size, "%s", (unsigned)cfg->act < 3 ? act_names[cfg->act] : "");
        break;
    case T_BASE:
        n = snprintf(buf, size, "%s", (unsigned)cfg->base < 2 ? base_names[cfg->base] : "");
        break;
    case T_MSG: n = snprintf(buf, size, "%s", v >= 1 && v <= 3 ? msg_names[(int)v] : ""); break;
    case T_INT: n = snprintf(buf, size, "%d", (int)v); break;
    default: {
        /* the shortest text that reads back as the same value: float fields
         * need at most 9 digits, double fields (lr, lr_decay, clip_norm) 17 */
        const int max = k->type == T_FLOAT ? 9 : 17;
        for (int digits = k->type == T_FLOAT ? 6 : 15;; digits++) {
            n = snprintf(buf, size, "%.*g", digits, v);
            const double back = strtod(buf, NULL);
            if (digits == max || (k->type == T_FLOAT ? (float)back == (float)v : back == v)) break;
        }
        break;
    }
    }
    if (n < 0 || (size_t)n >= size)
        return FXP_ERR(NULL, FXP_EINVAL, "%s: value does not fit %zu bytes", key, size);
    return FXP_OK;
}

int fxp_graph_model_config_validate(fxp_ctx *ctx, const fxp_graph_model_config *cfg)
{
    if (!cfg) return FXP_ERR(ctx, FXP_EINVAL, "cfg is NULL");
    for (int i = 0; i < N_KEYS; i++) {
        const double v = field_number(cfg, &keys[i]);
        if (!(v >= keys[i].lo && v <= keys[i].hi))
            return FXP_ERR(ctx, FXP_EINVAL, "%s = %g outside [%g, %g]", keys[i].key, v,
                           keys[i].lo, keys[i].hi);
    }
    if (cfg->messages == FXP_GRAPH_COND_ATTN && cfg->hidden % cfg->heads)
        return FXP_ERR(ctx, FXP_EINVAL, "heads = %d does not divide hidden = %d", cfg->heads,
                       cfg->hidden);
    if (cfg->features % 2)
        return FXP_ERR(ctx, FXP_EINVAL, "features = %d must be even (coupling halves)",
                       cfg->features);
    return FXP_OK;
}

/* ---- construction ------------------------------------------------------------- */

/* Append a layer built by the caller under the name "flow/<index>/<leaf>". */
static int layer_name(char *buf, size_t size, int index, const char *leaf)
{
    int n = snprintf(buf, size, "flow/%d/%s", index, leaf);
    return n < 0 || (size_t)n >= size ? FXP_ERR(NULL, FXP_EINVAL, "layer name too long") : FXP_OK;
}

/* The graph convolution exponential of layers.h for the "gnf-gce" kind. */
static int new_gce(fxp_ctx *ctx, fxp_params *ps, const char *name,
                   const fxp_graph_model_config *cfg, fxp_rng *rng, fxp_flow **out)
{
    fxp_graph_conv_exp_opts o;
    fxp_graph_conv_exp_opts_default(&o);
    o.features = cfg->features;
    o.terms_train = cfg->gce_terms_train;
    o.terms_eval = cfg->gce_terms_eval;
    o.coeff0 = cfg->gce_coeff0;
    o.coeff1 = cfg->gce_coeff1;
    o.max_degree = cfg->gce_max_degree;
    return fxp_graph_conv_exp_new(ctx, ps, name, &o, rng, out);
}

int fxp_graph_model_new(fxp_ctx *ctx, fxp_params *ps, const fxp_graph_model_config *cfg,
                        fxp_rng *rng, fxp_model **out)
{
    if (!ps || !cfg || !rng || !out) return FXP_ERR(ctx, FXP_EINVAL, "NULL argument");
    int rc = fxp_graph_model_config_validate(ctx, cfg);
    if (rc < 0) return rc;
    fxp_flow *seq = NULL, *layer;
    char name[FXP_PARAM_NAME_MAX];
    int index = 0;
    FXP_TRY(fxp_flow_seq_new(ctx, "flow", &seq));
    fxp_graph_coupling_opts co;
    fxp_graph_coupling_opts_default(&co);
    co.features = cfg->features;
    co.cond = cfg->kind == FXP_GRAPH_MODEL_COUPLING ? FXP_GRAPH_COND_MLP : cfg->messages;
    co.heads = cfg->heads;
    co.hidden = cfg->hidden;
    co.mlp_layers = cfg->mlp_layers;
    co.rounds = cfg->rounds;
    co.scale_bound = cfg->scale_bound;
    co.act = cfg->act;
    for (int c = 0; c < cfg->couplings; c++) {
        if (cfg->actnorm) {
            FXP_TRY(layer_name(name, sizeof name, index++, "actnorm"));
            FXP_TRY(fxp_graph_actnorm_new(ctx, ps, name, cfg->features, &layer));
            FXP_TRY(fxp_flow_seq_append(seq, layer));
        }
        if (cfg->linear) {
            FXP_TRY(layer_name(name, sizeof name, index++, "linear"));
            FXP_TRY(fxp_graph_linear_new(ctx, ps, name, cfg->features, rng, &layer));
            FXP_TRY(fxp_flow_seq_append(seq, layer));
        }
        if (cfg->kind == FXP_GRAPH_MODEL_GNF_GCE) {
            FXP_TRY(layer_name(name, sizeof name, index++, "gce"));
            FXP_TRY(new_gce(ctx, ps, name, cfg, rng, &layer));
            FXP_TRY(fxp_flow_seq_append(seq, layer));
        }
        FXP_TRY(layer_name(name, sizeof name, index++, "coupling"));
        co.swap = c % 2;
        FXP_TRY(fxp_graph_coupling_new(ctx, ps, name, &co, rng, &layer));
        FXP_TRY(fxp_flow_seq_append(seq, layer));
    }
    const int param_shape[2] = { 1, cfg->features };
    rc = fxp_model_new(ctx, ps, "model", seq, cfg->base, 2, param_shape, out);
    seq = NULL; /* owned by the model, also on failure */
out:
    fxp_flow_free(seq);
    return rc;
}
