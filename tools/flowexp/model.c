/* Model construction and evaluation shared by the flowexp subcommands. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tool.h"

int tool_model_build(fxp_ctx *ctx, const fxp_graph_model_config *cfg, unsigned long long seed,
                     tool_model *m)
{
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    fxp_rng rng;
    fxp_rng_seed(&rng, seed);
    int rc = fxp_params_new(ctx, &m->ps);
    if (rc < 0) return rc;
    rc = fxp_graph_model_new(ctx, m->ps, cfg, &rng, &m->model);
    if (rc < 0) {
        fxp_params_free(m->ps);
        m->ps = NULL;
    }
    return rc;
}

void tool_model_free(tool_model *m)
{
    fxp_model_free(m->model);
    fxp_params_free(m->ps);
    memset(m, 0, sizeof *m);
}

int tool_complete_graph(fxp_ctx *ctx, int n, fxp_tensor *adj)
{
    int shape[2] = { n, n };
    int rc = fxp_tensor_alloc(ctx, adj, 2, shape);
    if (rc < 0) return rc;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) adj->data[(size_t)i * n + j] = i != j;
    return FXP_OK;
}

int tool_nll_per_node(fxp_tape *t, tool_model *m, const fxp_tensor *x, const fxp_tensor *adj,
                      int batch, double *nll)
{
    fxp_ctx *ctx = fxp_tape_ctx(t);
    const int n = x->shape[0], nodes = x->shape[1];
    double total = 0;
    int rc = FXP_OK;
    fxp_flow_io io = { .training = 0, .adj = adj };
    for (int start = 0; start < n && rc >= 0; start += batch) {
        fxp_tensor view;
        fxp_var *vx, *lp;
        fxp_tape_reset(t);
        rc = fxp_tensor_slice0(ctx, x, &view, start, n - start < batch ? n - start : batch);
        if (rc >= 0) rc = fxp_tape_input(t, &vx, &view, 0);
        if (rc >= 0) rc = fxp_model_log_prob(m->model, t, &io, vx, &lp);
        if (rc >= 0)
            for (int i = 0; i < view.shape[0]; i++) total -= lp->value.data[i];
    }
    fxp_tape_reset(t);
    if (rc < 0) return rc;
    *nll = total / ((double)n * nodes);
    return isfinite(*nll) ? FXP_OK : tool_fail(FXP_ENUMERIC, "the NLL is not finite");
}

int tool_eval_tape(fxp_ctx *ctx, fxp_tape **t)
{
    int rc = fxp_tape_new(ctx, t);
    if (rc >= 0) fxp_tape_set_grad_enabled(*t, 0);
    return rc;
}

int tool_eval_batch(int nodes) { return nodes >= 1024 ? 1 : 1024 / (nodes > 0 ? nodes : 1); }
