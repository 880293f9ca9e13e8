/* Model construction, config files and evaluation shared by the flowexp
 * subcommands. */
#include <ctype.h>
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

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
    return s;
}

int tool_config_file(const char *path, fxp_graph_model_config *cfg, char *err, size_t errsz)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errsz, "cannot open config file %s: %s", path, strerror(errno));
        return -1;
    }
    char line[512];
    int lineno = 0, rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';
        char *s = trim(line);
        if (!*s) continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            snprintf(err, errsz, "%s:%d: expected key = value", path, lineno);
            rc = -1;
            break;
        }
        *eq = '\0';
        char *key = trim(s), *value = trim(eq + 1);
        if (fxp_graph_model_config_set(cfg, key, value) < 0) {
            snprintf(err, errsz, "%s:%d: %s", path, lineno, fxp_last_error());
            rc = -1;
            break;
        }
    }
    fclose(f);
    return rc;
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

int tool_nll_per_node(fxp_ctx *ctx, tool_model *m, const fxp_tensor *x, const fxp_tensor *adj,
                      int batch, double *nll)
{
    fxp_tape *t;
    int rc = fxp_tape_new(ctx, &t);
    if (rc < 0) return rc;
    fxp_tape_set_grad_enabled(t, 0);
    const int n = x->shape[0], nodes = x->shape[1];
    double total = 0;
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
    fxp_tape_free(t);
    if (rc < 0) return rc;
    *nll = total / ((double)n * nodes);
    return isfinite(*nll) ? FXP_OK : FXP_ENUMERIC;
}
