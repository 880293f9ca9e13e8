/* Model construction and evaluation shared by the flowexp subcommands. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "args.h"
#include "tool.h"
#include "dist.h"

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
    /* under MPI every rank takes its shard of the graphs; the sums are combined */
    int64_t off, cnt;
    tool_shard(n, &off, &cnt);
    for (int start = (int)off; start < off + cnt && rc >= 0; start += batch) {
        fxp_tensor view;
        fxp_var *vx, *lp;
        const int end = (int)(off + cnt);
        fxp_tape_reset(t);
        rc = fxp_tensor_slice0(ctx, x, &view, start, end - start < batch ? end - start : batch);
        if (rc >= 0) rc = fxp_tape_input(t, &vx, &view, 0);
        if (rc >= 0) rc = fxp_model_log_prob(m->model, t, &io, vx, &lp);
        if (rc >= 0)
            for (int i = 0; i < view.shape[0]; i++) total -= lp->value.data[i];
    }
    fxp_tape_reset(t);
    if (rc < 0) return rc;
    fxp_dist *d = tool_dist(ctx);
    if (d && (rc = fxp_dist_sum(d, &total, 1)) < 0) return rc;
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

void tool_epoch_order(unsigned long long seed, long long epoch, int *perm, int n)
{
    fxp_rng r;
    fxp_rng_seed(&r, seed * 0x9E3779B97F4A7C15ull +
                         0xD1B54A32D192ED03ull * (unsigned long long)(epoch + 1));
    for (int i = 0; i < n; i++) perm[i] = i;
    fxp_rng_shuffle_int(&r, perm, (size_t)n);
}

int tool_join(char *buf, size_t n, const char *dir, const char *file)
{
    return snprintf(buf, n, "%s/%s", dir, file) < (int)n ? 0 : -1;
}

int tool_file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

int tool_apply_sets(const char *cmd, const arg_list *sets,
                    int (*set)(void *cfg, const char *key, const char *value), void *cfg)
{
    for (int i = 0; i < sets->n; i++) {
        char key[128];
        const char *eq = strchr(sets->items[i], '=');
        snprintf(key, sizeof key, "%.*s", (int)(eq - sets->items[i]), sets->items[i]);
        if (set(cfg, key, eq + 1) < 0) {
            tool_error(cmd, "--set %s: %s", sets->items[i], fxp_last_error());
            return -1;
        }
    }
    return 0;
}

int tool_graph_set(void *cfg, const char *key, const char *value)
{
    return fxp_graph_model_config_set(cfg, key, value);
}

int tool_dist_identical(fxp_dist *dist, fxp_params *ps, const char *cmd, double comm_seconds,
                        double run_seconds)
{
    int same = 0;
    if (fxp_dist_params_identical(dist, ps, &same) < 0 || !same) {
        tool_error(cmd, "rank %d: %s", tool_rank(),
                   same ? fxp_last_error() : "parameters differ between ranks");
        return -1;
    }
    if (tool_rank() == 0)
        printf("all %d ranks hold bit-identical parameters; gradient reduction %.1f%% of "
               "this invocation (rank 0)\n", tool_ranks(),
               100 * comm_seconds / (run_seconds > 1e-9 ? run_seconds : 1e-9));
    return 0;
}
