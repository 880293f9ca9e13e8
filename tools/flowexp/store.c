/* The flowexp program's files on top of the library's HDF5 I/O (io.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

int store_read_split(fxp_ctx *ctx, const char *path, const char *split, fxp_tensor *out)
{
    return fxp_dataset_read(ctx, path, split, out);
}

void store_dataset_info(fxp_ctx *ctx, const char *path, char *name, size_t size, double *entropy)
{
    char buf[64];
    name[0] = '\0';
    *entropy = NAN;
    if (fxp_h5_read_attr(ctx, path, "dataset", name, size) < 0) name[0] = '\0';
    if (fxp_h5_read_attr(ctx, path, "entropy_per_node", buf, sizeof buf) >= 0) *entropy = atof(buf);
    fxp_ctx_clear_error(ctx);
}

/* Run-state keys stored beside the model configuration in /config. */
enum { RUN_KEYS = 8 };
static const char *const run_keys[RUN_KEYS] = { "run.seed", "run.step", "run.best_valid",
                                                "run.best_step", "run.train_seconds",
                                                "run.dataset", "run.entropy", "run.nodes" };

int store_save(fxp_ctx *ctx, const char *path, tool_model *m, fxp_optim *opt, const run_state *st)
{
    const int nk = fxp_graph_model_config_n_keys(), total = nk + RUN_KEYS;
    const char **keys = malloc((size_t)total * sizeof *keys);
    char (*vals)[128] = malloc((size_t)total * sizeof *vals);
    const char **vp = malloc((size_t)total * sizeof *vp);
    int rc = FXP_ENOMEM;
    if (!keys || !vals || !vp) goto out;
    for (int i = 0; i < nk; i++) {
        keys[i] = fxp_graph_model_config_key(i);
        if ((rc = fxp_graph_model_config_get(&m->cfg, keys[i], vals[i], sizeof vals[i])) < 0) goto out;
    }
    snprintf(vals[nk + 0], 128, "%llu", st->seed);
    snprintf(vals[nk + 1], 128, "%lld", st->step);
    snprintf(vals[nk + 2], 128, "%.17g", st->best_valid);
    snprintf(vals[nk + 3], 128, "%lld", st->best_step);
    snprintf(vals[nk + 4], 128, "%.3f", st->train_seconds);
    snprintf(vals[nk + 5], 128, "%s", st->dataset);
    snprintf(vals[nk + 6], 128, "%.17g", st->entropy);
    snprintf(vals[nk + 7], 128, "%d", st->nodes);
    for (int i = 0; i < RUN_KEYS; i++) keys[nk + i] = run_keys[i];
    for (int i = 0; i < total; i++) vp[i] = vals[i];
    fxp_checkpoint c = { m->ps, opt, 0, NULL, NULL, total, keys, vp };
    rc = fxp_checkpoint_save(ctx, path, &c);
out:
    free(keys);
    free(vals);
    free(vp);
    return rc;
}

typedef struct read_state {
    fxp_graph_model_config *cfg;
    run_state *st;
    int rc;
} read_state;

static int read_key(void *user, const char *key, const char *value)
{
    read_state *r = user;
    if (strncmp(key, "run.", 4) != 0) {
        if (strcmp(key, "kind") && fxp_graph_model_config_set(r->cfg, key, value) < 0) {
            r->rc = FXP_EFORMAT;
            return 1;
        }
        return 0;
    }
    run_state *s = r->st;
    if (!strcmp(key, "run.seed")) s->seed = strtoull(value, NULL, 10);
    else if (!strcmp(key, "run.step")) s->step = atoll(value);
    else if (!strcmp(key, "run.best_valid")) s->best_valid = atof(value);
    else if (!strcmp(key, "run.best_step")) s->best_step = atoll(value);
    else if (!strcmp(key, "run.train_seconds")) s->train_seconds = atof(value);
    else if (!strcmp(key, "run.dataset")) snprintf(s->dataset, sizeof s->dataset, "%s", value);
    else if (!strcmp(key, "run.entropy")) s->entropy = atof(value);
    else if (!strcmp(key, "run.nodes")) s->nodes = atoi(value);
    return 0;
}

int store_read_config(fxp_ctx *ctx, const char *path, fxp_graph_model_config *cfg, run_state *st)
{
    char kind_s[64];
    fxp_graph_model_kind kind;
    memset(st, 0, sizeof *st);
    st->best_valid = INFINITY;
    st->entropy = NAN;
    int rc = fxp_checkpoint_config(ctx, path, "kind", kind_s, sizeof kind_s);
    if (rc < 0) return rc;
    if ((rc = fxp_graph_model_kind_parse(kind_s, &kind)) < 0) return rc;
    fxp_graph_model_config_default(cfg, kind);
    read_state r = { cfg, st, FXP_OK };
    rc = fxp_checkpoint_config_each(ctx, path, read_key, &r);
    if (rc < 0) return rc;
    if (r.rc < 0) return r.rc;
    return fxp_graph_model_config_validate(ctx, cfg);
}

int store_load(fxp_ctx *ctx, const char *path, tool_model *m, fxp_optim *opt)
{
    fxp_checkpoint c = { m->ps, opt, 0, NULL, NULL, 0, NULL, NULL };
    return fxp_checkpoint_load(ctx, path, &c);
}

int store_write_samples(fxp_ctx *ctx, const char *path, const fxp_tensor *x, const char *source,
                        double temperature)
{
    const char *names[1] = { "samples" };
    const fxp_tensor *arrays[1] = { x };
    const fxp_attr attrs[4] = {
        { "source_checkpoint", FXP_ATTR_STRING, source, 0, 0 },
        { "temperature", FXP_ATTR_DOUBLE, NULL, temperature, 0 },
        { "n_graphs", FXP_ATTR_INT, NULL, 0, x->shape[0] },
        { "library_version", FXP_ATTR_STRING, fxp_version(), 0, 0 },
    };
    return fxp_h5_write_arrays(ctx, path, 1, names, arrays, 4, attrs);
}
