/* The flowexp program's files on top of the library's HDF5 I/O (io.h).
 * Everything read from a file is validated before use. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"
#include "text.h"

void run_state_init(run_state *st, unsigned long long seed)
{
    memset(st, 0, sizeof *st);
    st->seed = seed;
    st->best_valid = INFINITY;
    st->best_step = -1;
    st->entropy = NAN;
}

/* 1 if a process with this pid exists (EPERM: it exists, owned by another user). */
static int pid_alive(long pid)
{
    if (pid <= 0 || pid != (long)(pid_t)pid) return 0;
    return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

int store_remove_stale_temporaries(const char *dir, const char *stem)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *t = strstr(e->d_name, ".tmp.");
        if (!t) continue;
        const size_t len = (size_t)(t - e->d_name);
        const int ours = stem ? strlen(stem) == len && !strncmp(e->d_name, stem, len)
                              : (len > 3 && !strncmp(t - 3, ".h5", 3)) ||
                                    (len == 7 && !strncmp(e->d_name, "log.csv", 7));
        char *end;
        errno = 0;
        const long pid = strtol(t + 5, &end, 10);
        if (!ours || t[5] < '0' || t[5] > '9' || *end || errno || pid_alive(pid)) continue;
        char path[4096];
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) < (int)sizeof path &&
            unlink(path) == 0)
            removed++;
    }
    closedir(d);
    return removed;
}

int store_read_split(fxp_ctx *ctx, const char *path, const char *split, fxp_tensor *out)
{
    return fxp_dataset_read(ctx, path, split, out);
}

/* Strict number parsing: the whole string, no leading blanks, no overflow. */
static int parse_ll(const char *v, long long lo, long long hi, long long *out)
{
    if (!((v[0] >= '0' && v[0] <= '9') || (v[0] == '-' && v[1] >= '0' && v[1] <= '9'))) return -1;
    char *end;
    errno = 0;
    const long long x = strtoll(v, &end, 10);
    if (errno || *end || x < lo || x > hi) return -1;
    *out = x;
    return 0;
}

static int parse_ull(const char *v, unsigned long long *out)
{
    if (!(v[0] >= '0' && v[0] <= '9')) return -1;
    char *end;
    errno = 0;
    const unsigned long long x = strtoull(v, &end, 10);
    if (errno || *end) return -1;
    *out = x;
    return 0;
}

/* A double printed by %.17g (also "inf", "nan", "-nan"). */
static int parse_real(const char *v, double *out)
{
    if (!((v[0] >= '0' && v[0] <= '9') || v[0] == '-' || v[0] == '.' || v[0] == 'i' || v[0] == 'n'))
        return -1;
    char *end;
    errno = 0;
    const double x = strtod(v, &end);
    if (end == v || *end || (errno == ERANGE && isinf(x))) return -1;
    *out = x;
    return 0;
}

void store_dataset_info(fxp_ctx *ctx, const char *path, char *name, size_t size, double *entropy)
{
    char buf[64];
    double h;
    name[0] = '\0';
    *entropy = NAN;
    if (fxp_h5_read_attr(ctx, path, "dataset", name, size) < 0 || !text_is_name(name)) name[0] = '\0';
    if (fxp_h5_read_attr(ctx, path, "entropy_per_node", buf, sizeof buf) >= 0 &&
        parse_real(buf, &h) == 0 && isfinite(h))
        *entropy = h;
    fxp_ctx_clear_error(ctx);
}

/* Run-state keys stored beside the model configuration in /config: the
 * first RUN_CORE_KEYS were written by every version of flowexp. */
enum { RUN_KEYS = 14, RUN_CORE_KEYS = 8, MAX_NODES = 1 << 20, MAX_STEPS = 1 << 30 };
static const char *const run_keys[RUN_KEYS] = {
    "run.seed", "run.step", "run.best_valid", "run.best_step", "run.train_seconds",
    "run.dataset", "run.entropy", "run.nodes", "run.eval_every", "run.ckpt_every",
    "run.window_loss", "run.window_steps", "run.threads", "run.data"
};

int store_save(fxp_ctx *ctx, const char *path, tool_model *m, fxp_optim *opt, const run_state *st)
{
    const int nk = fxp_graph_model_config_n_keys(), total = nk + RUN_KEYS;
    const char **keys = malloc((size_t)total * sizeof *keys);
    char (*vals)[128] = malloc((size_t)nk * sizeof *vals), run[RUN_KEYS][128];
    const char **vp = malloc((size_t)total * sizeof *vp);
    int rc = FXP_ENOMEM;
    if (!keys || !vals || !vp) {
        tool_fail(FXP_ENOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < nk; i++) {
        keys[i] = fxp_graph_model_config_key(i);
        if ((rc = fxp_graph_model_config_get(&m->cfg, keys[i], vals[i], sizeof vals[i])) < 0) goto out;
        vp[i] = vals[i];
    }
    snprintf(run[0], 128, "%llu", st->seed);
    snprintf(run[1], 128, "%lld", st->step);
    snprintf(run[2], 128, "%.17g", st->best_valid);
    snprintf(run[3], 128, "%lld", st->best_step);
    snprintf(run[4], 128, "%.3f", st->train_seconds);
    snprintf(run[5], 128, "%s", st->dataset);
    snprintf(run[6], 128, "%.17g", st->entropy);
    snprintf(run[7], 128, "%d", st->nodes);
    snprintf(run[8], 128, "%d", st->eval_every);
    snprintf(run[9], 128, "%d", st->ckpt_every);
    snprintf(run[10], 128, "%.17g", st->window_loss);
    snprintf(run[11], 128, "%lld", st->window_steps);
    snprintf(run[12], 128, "%d", st->threads);
    for (int i = 0; i < RUN_KEYS; i++) {
        keys[nk + i] = run_keys[i];
        vp[nk + i] = i == 13 ? st->data : run[i];
    }
    fxp_checkpoint c = { m->ps, opt, 0, NULL, NULL, total, keys, vp };
    rc = fxp_checkpoint_save(ctx, path, &c);
out:
    free(keys);
    free(vals);
    free(vp);
    return rc;
}

typedef struct read_state {
    const char *path;
    fxp_graph_model_config *cfg;
    run_state *st;
    unsigned seen;  /* bit i: run_keys[i] was read */
    int rc;
} read_state;

/* Stop the iteration with a message naming the file, key and value. */
static int bad_value(read_state *r, const char *key, const char *value, const char *want)
{
    char v[96];
    r->rc = tool_fail(FXP_EFORMAT, "%s: %s = \"%s\" in /config: %s", r->path, key,
                      text_sanitize(v, sizeof v, value), want);
    return 1;
}

static int read_key(void *user, const char *key, const char *value)
{
    read_state *r = user;
    if (strncmp(key, "run.", 4) != 0) {
        if (strcmp(key, "kind") && fxp_graph_model_config_set(r->cfg, key, value) < 0) {
            char msg[256];
            text_sanitize(msg, sizeof msg, fxp_last_error());
            return bad_value(r, key, value, msg);
        }
        return 0;
    }
    int i = 0;
    while (i < RUN_KEYS && strcmp(key, run_keys[i])) i++;
    if (i == RUN_KEYS) return bad_value(r, key, value, "unknown run key (a newer flowexp?)");
    run_state *s = r->st;
    long long n;
    double d;
    switch (i) {
    case 0:
        if (parse_ull(value, &s->seed) < 0) return bad_value(r, key, value, "expected an unsigned integer");
        break;
    case 1:
        if (parse_ll(value, 0, MAX_STEPS, &s->step) < 0)
            return bad_value(r, key, value, "expected an integer in [0, 1073741824]");
        break;
    case 2:
        if (parse_real(value, &d) < 0 || isnan(d) || d == -INFINITY)
            return bad_value(r, key, value, "expected a number or inf");
        s->best_valid = d;
        break;
    case 3:
        if (parse_ll(value, -1, MAX_STEPS, &s->best_step) < 0)
            return bad_value(r, key, value, "expected -1 or a step in [0, 1073741824]");
        break;
    case 4:
        if (parse_real(value, &d) < 0 || !isfinite(d) || d < 0 || d > 1e12)
            return bad_value(r, key, value, "expected seconds in [0, 1e12]");
        s->train_seconds = d;
        break;
    case 5:
        if (value[0] && !text_is_name(value))
            return bad_value(r, key, value, "expected a dataset name of up to 63 letters, digits, '.', '_', '+', '-'");
        snprintf(s->dataset, sizeof s->dataset, "%s", value);
        break;
    case 6:
        if (parse_real(value, &d) < 0 || isinf(d))
            return bad_value(r, key, value, "expected a finite number or nan");
        s->entropy = d;
        break;
    case 7:
        if (parse_ll(value, 1, MAX_NODES, &n) < 0)
            return bad_value(r, key, value, "expected a node count in [1, 1048576]");
        s->nodes = (int)n;
        break;
    case 8:
    case 9:
        if (parse_ll(value, 1, MAX_STEPS, &n) < 0)
            return bad_value(r, key, value, "expected a step count in [1, 1073741824]");
        *(i == 8 ? &s->eval_every : &s->ckpt_every) = (int)n;
        break;
    case 10:
        if (parse_real(value, &d) < 0 || !isfinite(d)) return bad_value(r, key, value, "expected a finite number");
        s->window_loss = d;
        break;
    case 11:
        if (parse_ll(value, 0, MAX_STEPS, &s->window_steps) < 0)
            return bad_value(r, key, value, "expected an integer in [0, 1073741824]");
        break;
    case 12:
        if (parse_ll(value, 0, 256, &n) < 0) return bad_value(r, key, value, "expected a thread count in [0, 256]");
        s->threads = (int)n;
        break;
    default:
        if (!text_is_printable(value) || strlen(value) >= sizeof s->data)
            return bad_value(r, key, value, "expected a file name without control characters");
        snprintf(s->data, sizeof s->data, "%s", value);
        break;
    }
    r->seen |= 1u << i;
    return 0;
}

/* The fields' relations: what no run of flowexp can produce is rejected. */
static int check_consistent(const char *path, const run_state *s, unsigned seen)
{
    const unsigned core = (1u << RUN_CORE_KEYS) - 1;
    if (!seen) return FXP_OK; /* no run state at all: a model only */
    if ((seen & core) != core)
        return tool_fail(FXP_EFORMAT, "%s: incomplete run state in /config (run.* keys missing)", path);
    if (s->best_step > s->step)
        return tool_fail(FXP_EFORMAT, "%s: run.best_step = %lld is after run.step = %lld", path,
                         s->best_step, s->step);
    if ((s->best_step < 0) != isinf(s->best_valid))
        return tool_fail(FXP_EFORMAT, "%s: run.best_step = %lld does not go with run.best_valid "
                         "= %g", path, s->best_step, s->best_valid);
    if (s->window_steps > s->step)
        return tool_fail(FXP_EFORMAT, "%s: run.window_steps = %lld exceeds run.step = %lld", path,
                         s->window_steps, s->step);
    if (s->window_steps == 0 && s->window_loss != 0)
        return tool_fail(FXP_EFORMAT, "%s: run.window_loss = %g over 0 steps", path, s->window_loss);
    return FXP_OK;
}

int store_read_config(fxp_ctx *ctx, const char *path, fxp_graph_model_config *cfg, run_state *st,
                      int *seen)
{
    char kind_s[64], v[96];
    fxp_graph_model_kind kind;
    run_state_init(st, 0);
    if (seen) *seen = 0;
    int rc = fxp_checkpoint_config(ctx, path, "kind", kind_s, sizeof kind_s);
    if (rc == FXP_EINVAL) /* longer than any kind name */
        return tool_fail(FXP_EFORMAT, "%s: the model kind in /config is not a known kind", path);
    if (rc < 0) return rc;
    if (fxp_graph_model_kind_parse(kind_s, &kind) < 0)
        return tool_fail(FXP_EFORMAT, "%s: unknown model kind \"%s\" in /config", path,
                         text_sanitize(v, sizeof v, kind_s));
    fxp_graph_model_config_default(cfg, kind);
    read_state r = { path, cfg, st, 0, FXP_OK };
    rc = fxp_checkpoint_config_each(ctx, path, read_key, &r);
    if (rc < 0) return rc;
    if (r.rc < 0) return r.rc;
    if ((rc = check_consistent(path, st, r.seen)) < 0) return rc;
    if (fxp_graph_model_config_validate(ctx, cfg) < 0)
        return tool_fail(FXP_EFORMAT, "%s: invalid configuration: %s", path,
                         text_sanitize(v, sizeof v, fxp_last_error()));
    if (seen) {
        const unsigned core = (1u << RUN_CORE_KEYS) - 1, all = (1u << RUN_KEYS) - 1;
        *seen = (r.seen & all) == all ? RUN_SEEN_ALL : (r.seen & core) == core ? RUN_SEEN_CORE : 0;
    }
    return FXP_OK;
}

int store_load(fxp_ctx *ctx, const char *path, tool_model *m, fxp_optim *opt)
{
    fxp_checkpoint c = { m->ps, opt, 0, NULL, NULL, 0, NULL, NULL };
    return fxp_checkpoint_load(ctx, path, &c);
}

int store_samples_begin(fxp_ctx *ctx, const char *path, int n, int nodes, int features,
                        const char *source, double temperature, fxp_h5_array_writer **w)
{
    const int shape[3] = { n, nodes, features };
    const fxp_attr attrs[4] = {
        { "source_checkpoint", FXP_ATTR_STRING, source, 0, 0 },
        { "temperature", FXP_ATTR_DOUBLE, NULL, temperature, 0 },
        { "n_graphs", FXP_ATTR_INT, NULL, 0, n },
        { "library_version", FXP_ATTR_STRING, fxp_version(), 0, 0 },
    };
    return fxp_h5_array_writer_new(ctx, path, "samples", 3, shape, 4, attrs, w);
}
