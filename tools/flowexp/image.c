/* flowexp for image models (imageflow.h): train, eval and sample, and the
 * checkpoints of image runs.  The graph subcommands hand over here when the
 * model name or the checkpoint is an image model's. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "args.h"
#include "dist.h"
#include "image.h"
#include "plot.h"
#include "progress.h"
#include "store.h"

/* ---- models and checkpoints ---------------------------------------------------- */

int image_set_key(void *cfg, const char *key, const char *value)
{
    return fxp_image_model_config_set(cfg, key, value);
}

const char *image_model_label(const fxp_image_model_config *cfg, char *buf, size_t size)
{
    if (cfg->kind == FXP_IMAGE_FLOW) snprintf(buf, size, "flow-%s", cfg->mixing);
    else if (fxp_image_model_config_get(cfg, "kind", buf, size) < 0) snprintf(buf, size, "?");
    return buf;
}

int image_is_model_name(const char *name)
{
    fxp_image_model_config c;
    if (!name) return 0;
    for (int i = 0; fxp_image_model_preset_name(i); i++)
        if (!strcmp(fxp_image_model_preset_name(i), name)) return fxp_image_model_config_preset(&c, name) == 0;
    return 0;
}

int image_checkpoint_is_image(fxp_ctx *ctx, const char *path)
{
    char fam[32];
    if (fxp_checkpoint_config(ctx, path, "family", fam, sizeof fam) < 0) {
        fxp_ctx_clear_error(ctx);
        return 0;
    }
    return !strcmp(fam, "image");
}

int image_build(fxp_ctx *ctx, const fxp_image_model_config *cfg, unsigned long long seed,
                image_run *r)
{
    fxp_rng rng;
    fxp_rng_seed(&rng, seed);
    r->cfg = *cfg;
    int rc = fxp_params_new(ctx, &r->ps);
    if (rc >= 0) rc = fxp_image_model_new(ctx, r->ps, cfg, &rng, &r->m);
    return rc;
}

void image_free(image_run *r)
{
    fxp_image_model_free(r->m);
    fxp_params_free(r->ps);
    r->m = NULL;
    r->ps = NULL;
}

/* Run-state keys kept in /config beside the model's keys. */
enum { RUN_KEYS = 10 };
static const char *const run_keys[RUN_KEYS] = {
    "run.seed",        "run.step",     "run.best_valid", "run.best_step", "run.train_seconds",
    "run.dataset",     "run.eval_every", "run.valid_n",  "run.window_loss", "run.window_n" };

int image_save(fxp_ctx *ctx, const char *path, image_run *r, fxp_optim *opt,
               const image_state *st)
{
    const int nk = fxp_image_model_config_n_keys(), total = 1 + nk + RUN_KEYS;
    const char **keys = malloc((size_t)total * sizeof *keys), **vp = malloc((size_t)total * sizeof *vp);
    char (*vals)[128] = malloc((size_t)total * sizeof *vals);
    int rc = FXP_ENOMEM;
    if (!keys || !vals || !vp) goto out;
    keys[0] = "family";
    snprintf(vals[0], 128, "image");
    for (int i = 0; i < nk; i++) {
        keys[1 + i] = fxp_image_model_config_key(i);
        if ((rc = fxp_image_model_config_get(&r->cfg, keys[1 + i], vals[1 + i], 128)) < 0) goto out;
    }
    snprintf(vals[1 + nk + 0], 128, "%llu", st->seed);
    snprintf(vals[1 + nk + 1], 128, "%lld", st->step);
    snprintf(vals[1 + nk + 2], 128, "%.17g", st->best_valid);
    snprintf(vals[1 + nk + 3], 128, "%lld", st->best_step);
    snprintf(vals[1 + nk + 4], 128, "%.3f", st->train_seconds);
    snprintf(vals[1 + nk + 5], 128, "%s", st->dataset);
    snprintf(vals[1 + nk + 6], 128, "%d", st->eval_every);
    snprintf(vals[1 + nk + 7], 128, "%d", st->valid_n);
    snprintf(vals[1 + nk + 8], 128, "%.17g", st->window_loss);
    snprintf(vals[1 + nk + 9], 128, "%lld", st->window_n);
    for (int i = 0; i < RUN_KEYS; i++) keys[1 + nk + i] = run_keys[i];
    for (int i = 0; i < total; i++) vp[i] = vals[i];
    fxp_checkpoint c = { r->ps, opt, 0, NULL, NULL, total, keys, vp };
    rc = fxp_checkpoint_save(ctx, path, &c);
out:
    if (rc == FXP_ENOMEM && (!keys || !vals || !vp))
        rc = tool_fail(FXP_ENOMEM, "cannot allocate the configuration of %s", path);
    free(keys);
    free(vals);
    free(vp);
    return rc;
}

typedef struct read_ctx {
    fxp_image_model_config *cfg;
    image_state *st;
    char bad[160];
} read_ctx;

/* Parse a run value with full validation (a crafted file must not pass). */
static int parse_ll(const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || errno || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static int parse_d(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno == ERANGE) return -1;
    *out = v;
    return 0;
}

static int read_key(void *user, const char *key, const char *value)
{
    read_ctx *r = user;
    image_state *s = r->st;
    long long ll = 0;
    double d = 0;
    int ok = 1;
    if (!strcmp(key, "family")) return 0;
    if (strncmp(key, "run.", 4) != 0) {
        if (fxp_image_model_config_set(r->cfg, key, value) < 0) {
            snprintf(r->bad, sizeof r->bad, "%s", fxp_last_error());
            return 1;
        }
        return 0;
    }
    if (!strcmp(key, "run.seed")) {
        char *end;
        errno = 0;
        unsigned long long u = strtoull(value, &end, 10);
        ok = end != value && !*end && !errno && value[0] != '-';
        s->seed = u;
    } else if (!strcmp(key, "run.step")) {
        ok = parse_ll(value, 0, 1ll << 40, &ll) == 0;
        s->step = ll;
    } else if (!strcmp(key, "run.best_valid")) {
        ok = parse_d(value, &d) == 0 && !isnan(d);
        s->best_valid = d;
    } else if (!strcmp(key, "run.best_step")) {
        ok = parse_ll(value, -1, 1ll << 40, &ll) == 0;
        s->best_step = ll;
    } else if (!strcmp(key, "run.train_seconds")) {
        ok = parse_d(value, &d) == 0 && d >= 0 && isfinite(d);
        s->train_seconds = d;
    } else if (!strcmp(key, "run.dataset")) {
        ok = strlen(value) < sizeof s->dataset;
        for (const char *p = value; ok && *p; p++) ok = (unsigned char)*p >= 32;
        if (ok) snprintf(s->dataset, sizeof s->dataset, "%s", value);
    } else if (!strcmp(key, "run.eval_every")) {
        ok = parse_ll(value, 1, 1 << 30, &ll) == 0;
        s->eval_every = (int)ll;
    } else if (!strcmp(key, "run.valid_n")) {
        ok = parse_ll(value, 0, 1 << 30, &ll) == 0;
        s->valid_n = (int)ll;
    } else if (!strcmp(key, "run.window_loss")) {
        ok = parse_d(value, &d) == 0 && isfinite(d);
        s->window_loss = d;
    } else if (!strcmp(key, "run.window_n")) {
        ok = parse_ll(value, 0, 1ll << 40, &ll) == 0;
        s->window_n = ll;
    }
    if (!ok) {
        snprintf(r->bad, sizeof r->bad, "invalid %s = \"%.40s\"", key, value);
        return 1;
    }
    return 0;
}

int image_read_config(fxp_ctx *ctx, const char *path, fxp_image_model_config *cfg, image_state *st)
{
    memset(st, 0, sizeof *st);
    st->best_valid = INFINITY;
    st->best_step = -1;
    fxp_image_model_config_preset(cfg, "flow-1x1");
    read_ctx r = { cfg, st, "" };
    int rc = fxp_checkpoint_config_each(ctx, path, read_key, &r);
    if (rc < 0) return rc;
    if (r.bad[0]) return tool_fail(FXP_EFORMAT, "%s: %s", path, r.bad);
    if (st->best_step > st->step)
        return tool_fail(FXP_EFORMAT, "%s: run.best_step %lld after run.step %lld", path,
                         st->best_step, st->step);
    return fxp_image_model_config_validate(ctx, cfg);
}

int image_load(fxp_ctx *ctx, const char *path, image_run *r, fxp_optim *opt)
{
    fxp_checkpoint c = { r->ps, opt, 0, NULL, NULL, 0, NULL, NULL };
    return fxp_checkpoint_load(ctx, path, &c);
}

/* The images of one split (uint8), checked against the model's shape. */
int image_read_split(fxp_ctx *ctx, const char *path, const char *split,
                     const fxp_image_model_config *cfg, fxp_images *out)
{
    int rc = fxp_image_dataset_read(ctx, path, split, out);
    if (rc < 0) return rc;
    if (cfg && (out->channels != cfg->channels || out->height != cfg->height ||
                out->width != cfg->width)) {
        rc = tool_fail(FXP_ESHAPE, "%s:%s holds %dx%dx%d images; the model is for %dx%dx%d",
                       path, split, out->channels, out->height, out->width, cfg->channels,
                       cfg->height, cfg->width);
        fxp_images_free(out);
    }
    return rc;
}

/* ---- train ------------------------------------------------------------------------ */


/* Streams of step `step` for one purpose, pure functions of (seed, step). */
static fxp_rng step_rng(unsigned long long seed, long long step, unsigned purpose)
{
    fxp_rng r;
    fxp_rng_seed(&r, seed * 0x9E3779B97F4A7C15ull + purpose);
    r.counter = (uint64_t)step << 24;
    return r;
}


/* Validation ELBO in bits/dim on the first valid_n images (all if 0); under
 * MPI each rank evaluates its shard and the sums are combined, with the same
 * result as one process. */
static int validate(fxp_ctx *ctx, image_run *r, const fxp_images *valid, int valid_n, double *bpd)
{
    const int n = valid_n > 0 && valid_n < valid->n ? valid_n : valid->n;
    const int64_t D = (int64_t)valid->channels * valid->height * valid->width;
    int64_t off, cnt;
    tool_shard(n, &off, &cnt);
    fxp_image_eval e = { 0 };
    if (cnt > 0) {
        int rc = fxp_image_model_evaluate(r->m, valid->pixels + off * D, (int)cnt, off, 1,
                                          r->cfg.eval_batch, 0x5eedull, NULL, NULL, &e);
        if (rc < 0) return rc;
    }
    double sums[5] = { e.sums[0], e.sums[1], e.sums[2], e.sums[3], (double)cnt };
    fxp_dist *d = tool_dist(ctx);
    if (d) {
        int rc = fxp_dist_sum(d, sums, 5);
        if (rc < 0) return rc;
    }
    *bpd = sums[0] / sums[4];
    return FXP_OK;
}

static double comm_seconds; /* time in the gradient reduction (MPI) */

static int reduce_grads(fxp_dist *dist, fxp_params *ps, int64_t count)
{
    if (!dist) return FXP_OK;
    const double t0 = progress_now();
    const int rc = fxp_dist_grad_weighted(dist, ps, count);
    comm_seconds += progress_now() - t0;
    return rc;
}

/* The dequantisation noise of a whole global batch (standard normal for the
 * variational dequantiser, uniform for the uniform one): every rank draws
 * the same and uses its rows, so K ranks see what one process would. */
static void batch_noise(const fxp_image_model_config *cfg, fxp_rng *rng, float *out, int B,
                        int64_t nd, int threads)
{
    if (cfg->dequantization == FXP_DEQUANT_VARIATIONAL)
        fxp_rng_normal_threads(rng, out, (size_t)(B * nd), 0, 1, threads);
    else
        fxp_rng_uniform(rng, out, (size_t)(B * nd));
}

/* DIR/curves.png, titled with the run. */
static void draw_curves(const char *log_path, const char *dir, const fxp_image_model_config *cfg,
                        const image_state *st, int quiet)
{
    char title[256], label[64];
    snprintf(title, sizeof title, "%s on %s, step %lld", image_model_label(cfg, label, sizeof label),
             st->dataset[0] ? st->dataset : "images", st->step);
    train_draw_curves(log_path, dir, title, NAN, NULL, quiet);
}

/* Keep the lines of log.csv up to `step` (the header and rows with a step
 * column <= step), so that a resumed run continues the log exactly. */
static int truncate_log(const char *path, long long step)
{
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char tmp[4200], line[1024];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    FILE *o = fopen(tmp, "w");
    if (!o) {
        fclose(f);
        return -1;
    }
    int first = 1;
    while (fgets(line, sizeof line, f)) {
        if (first) {
            first = 0;
            if (strncmp(line, "step,", 5) != 0) continue; /* a headerless log: rebuilt below */
            fputs(line, o);
            continue;
        }
        if (atoll(line) <= step) fputs(line, o);
    }
    fclose(f);
    if (fclose(o) != 0 || rename(tmp, path) != 0) {
        remove(tmp);
        return -1;
    }
    return 0;
}

int cmd_train_image(int argc, char **argv)
{
    const char *model = NULL, *data = NULL, *out = NULL, *config = NULL;
    int save_memory = 0;
    int seed = 0, threads = 0, steps = 0, batch = 0, resume = 0, quiet = 0, eval_every = 0,
        valid_n = 0, force = 0, list_keys = 0;
    double lr = 0, time_limit = 0;
    arg_list sets = { { 0 }, 0 };
    arg_spec specs[] = {
        { "model", ARG_STRING, &model, "NAME", "flow-1x1 | flow-lu | flow-householder | flow-emerging | flow-woodbury | flow-convexp"
          " | sylvester | sylvester-nobasis | sylvester-nogen | resflow | resflow-half | coupling-flow",
          0, 0, NULL, 0, 0 },
        { "data", ARG_STRING, &data, "F.h5", "image dataset (flowexp data cifar10 | fashion-mnist)", 0, 0, NULL, 0, 0 },
        { "out", ARG_STRING, &out, "DIR", "run directory (checkpoint.h5, best.h5, log.csv)", 0, 0, NULL, 0, 0 },
        { "config", ARG_STRING, &config, "FILE", "config file of key = value lines", 0, 0, NULL, 0, 0 },
        { "set", ARG_LIST, &sets, "KEY=VALUE", "override one configuration key (repeatable)", 0, 0, NULL, 0, 0 },
        { "seed", ARG_INT, &seed, "S", "seed of initialisation, batches, augmentation and noise (default 0)", 0, 2147483647, NULL, 0, 0 },
        { "threads", ARG_INT, &threads, "T", "threads (default: all cores, or OMP_NUM_THREADS)", 1, 256, NULL, 0, 0 },
        { "steps", ARG_INT, &steps, "N", "optimizer steps (default: the config's epochs)", 1, 1e9, NULL, 0, 0 },
        { "batch", ARG_INT, &batch, "B", "images per step (default: the config's batch)", 1, 1e6, NULL, 0, 0 },
        { "lr", ARG_DOUBLE, &lr, "LR", "learning rate (default: the config's lr)", 1e-12, 10, NULL, 0, 0 },
        { "time-limit", ARG_DOUBLE, &time_limit, "SEC", "stop after SEC seconds of training (this invocation)", 0, 1e9, NULL, 0, 0 },
        { "eval-every", ARG_INT, &eval_every, "N", "validate, log and checkpoint every N steps (default steps/20)", 1, 1e9, NULL, 0, 0 },
        { "valid-n", ARG_INT, &valid_n, "N", "validate on the first N images of 'valid' (default all)", 1, 1e9, NULL, 0, 0 },
        { "resume", ARG_FLAG, &resume, NULL, "continue from DIR/checkpoint.h5 with its configuration", 0, 0, NULL, 0, 0 },
        { "save-memory", ARG_FLAG, &save_memory, NULL, "memory-saving backpropagation: recompute inside the backward what the convolution exponentials and DenseNets would keep (same gradients, less memory, more time)", 0, 0, NULL, 0, 0 },
        { "force", ARG_FLAG, &force, NULL, "start afresh even if DIR holds a run", 0, 0, NULL, 0, 0 },
        { "quiet", ARG_FLAG, &quiet, NULL, "no progress output", 0, 0, NULL, 0, 0 },
        { "list-keys", ARG_FLAG, &list_keys, NULL, "print the configuration keys of --model with their defaults and meaning", 0, 0, NULL, 0, 0 },
    };
    const int n_specs = (int)(sizeof specs / sizeof specs[0]);
    char err[512];
    int help;
    if (args_parse(specs, n_specs, argc, argv, NULL, 0, NULL, &help, err, sizeof err) < 0) {
        tool_error("train", "%s", err);
        return EXIT_USAGE;
    }
    if (list_keys) {
        fxp_image_model_config c;
        if (!model || fxp_image_model_config_preset(&c, model) < 0) {
            tool_error("train", "--list-keys needs --model (an image model)");
            return EXIT_USAGE;
        }
        printf("configuration keys of %s (--set KEY=VALUE, or KEY = VALUE lines in --config):\n",
               model);
        for (int i = 0; i < fxp_image_model_config_n_keys(); i++) {
            char v[64];
            const char *k = fxp_image_model_config_key(i);
            fxp_image_model_config_get(&c, k, v, sizeof v);
            printf("  %-20s %-12s %s\n", k, v, fxp_image_model_config_key_help(i));
        }
        return 0;
    }
    if (help) {
        args_print_help("flowexp train --model flow-convexp --data F.h5 --out DIR [options]",
                        "Train an image flow on the 'train' split (negative ELBO in bits/dim), validating\n"
                        "on 'valid'.  Configuration: the model's preset (the paper's Table-1 model, or\n"
                        "its Tables 2-3 models: sylvester, ..., coupling-flow; docs/sylvester.md),\n"
                        "then --config, then --set, then the explicit flags; image sizes come from\n"
                        "the data.  Ctrl-C saves DIR/checkpoint.h5 (exit 130); --resume continues\n"
                        "bit-identically at the same thread count.  Keys: flowexp train --model M --list-keys",
                        specs, n_specs);
        return 0;
    }
    if (!data || !out) {
        tool_error("train", "--data and --out are required");
        return EXIT_USAGE;
    }
    const int rank = tool_rank(), ranks = tool_ranks(), lead = rank == 0;
    if (!lead) quiet = 1;
    if (!resume && !model) {
        tool_error("train", "--model is required (unless --resume)");
        return EXIT_USAGE;
    }
    if (resume && (model || config || sets.n || batch || lr > 0 || force)) {
        tool_error("train", "--resume takes the configuration from the checkpoint; drop "
                            "--model/--config/--set/--batch/--lr/--force");
        return EXIT_USAGE;
    }
    int rc = 1;
    fxp_ctx *ctx = NULL;
    fxp_optim *opt = NULL;
    fxp_tape *tape = NULL;
    image_run r = { 0 };
    fxp_images train = { 0 }, valid = { 0 };
    uint8_t *aug = NULL, *aug2 = NULL;
    fxp_tensor xb = { 0 }, noise = { 0 };
    float *noise_all = NULL;
    int *perm = NULL;
    FILE *log = NULL;
    int created_dir = 0, wrote_ckpt = 0;
    char ckpt_path[4096], best_path[4096], log_path[4096];
    if (tool_join(ckpt_path, sizeof ckpt_path, out, "checkpoint.h5") < 0 ||
        tool_join(best_path, sizeof best_path, out, "best.h5") < 0 ||
        tool_join(log_path, sizeof log_path, out, "log.csv") < 0) {
        tool_error("train", "output path too long");
        return EXIT_USAGE;
    }
    if (fxp_ctx_new(&ctx) < 0 || (threads && fxp_ctx_set_threads(ctx, threads) < 0)) {
        tool_error("train", "%s", tool_message());
        goto done;
    }
    fxp_image_model_config cfg;
    image_state st = { (unsigned long long)seed, 0, INFINITY, -1, 0, "", 0, 0, 0, 0 };
    if (resume) {
        if (!tool_file_exists(ckpt_path)) {
            tool_error("train", "--resume: no checkpoint at %s", ckpt_path);
            rc = EXIT_USAGE;
            goto done;
        }
        if (image_read_config(ctx, ckpt_path, &cfg, &st) < 0) {
            tool_error("train", "%s", tool_message());
            goto done;
        }
        if (!eval_every) eval_every = st.eval_every;
        if (!valid_n) valid_n = st.valid_n;
    } else {
        if (!force && tool_file_exists(ckpt_path)) {
            tool_error("train", "%s already holds a run (checkpoint.h5): continue it with --resume, "
                                "or start afresh with --force", out);
            rc = EXIT_USAGE;
            goto done;
        }
        if (fxp_image_model_config_preset(&cfg, model) < 0) {
            tool_error("train", "%s", tool_message());
            rc = EXIT_USAGE;
            goto done;
        }
        const tool_keys keys = { image_set_key, fxp_image_model_config_n_keys,
                                 fxp_image_model_config_key, &cfg };
        if (config && tool_config_file_keys(config, &keys, err, sizeof err) < 0) {
            tool_error("train", "%s", err);
            rc = EXIT_USAGE;
            goto done;
        }
        if (tool_apply_sets("train", &sets, image_set_key, &cfg) < 0) {
            rc = EXIT_USAGE;
            goto done;
        }
        if (batch) cfg.batch = batch;
        if (lr > 0) cfg.lr = lr;
    }
    if (steps) cfg.train_steps = steps;

    /* data: its shape is the model's */
    if (fxp_image_dataset_read(ctx, data, "train", &train) < 0 ||
        fxp_image_dataset_read(ctx, data, "valid", &valid) < 0) {
        tool_error("train", "%s", tool_message());
        goto done;
    }
    if (resume) {
        if (train.channels != cfg.channels || train.height != cfg.height || train.width != cfg.width) {
            tool_error("train", "%s holds %dx%dx%d images; the run was trained on %dx%dx%d", data,
                       train.channels, train.height, train.width, cfg.channels, cfg.height, cfg.width);
            goto done;
        }
    } else {
        cfg.channels = train.channels;
        cfg.height = train.height;
        cfg.width = train.width;
        char name[64] = "";
        if (fxp_h5_read_attr(ctx, data, "dataset", name, sizeof name) >= 0)
            snprintf(st.dataset, sizeof st.dataset, "%s", name);
        fxp_ctx_clear_error(ctx);
    }
    if (valid.channels != train.channels || valid.height != train.height || valid.width != train.width) {
        tool_error("train", "%s: 'valid' images differ in shape from 'train'", data);
        goto done;
    }
    if (fxp_image_model_config_validate(ctx, &cfg) < 0) {
        tool_error("train", "%s", tool_message());
        rc = EXIT_USAGE;
        goto done;
    }
    const int n_train = train.n, B = cfg.batch < n_train ? cfg.batch : n_train;
    const long long per_epoch = n_train / B;
    const long long total = cfg.train_steps > 0 ? cfg.train_steps : (long long)cfg.epochs * per_epoch;
    if (!eval_every) eval_every = (int)(total / 20 > 0 ? total / 20 : 1);
    st.eval_every = eval_every;
    st.valid_n = valid_n;

    /* model and optimizer */
    if (image_build(ctx, &cfg, st.seed, &r) < 0) {
        tool_error("train", "%s", tool_message());
        goto done;
    }
    fxp_optim_config oc;
    fxp_optim_config_default(&oc, cfg.optimizer == FXP_OPT_ADAM ? FXP_OPTIM_ADAM : FXP_OPTIM_ADAMAX);
    oc.lr = cfg.lr;
    oc.beta1 = cfg.beta1;
    oc.beta2 = cfg.beta2;
    oc.eps = cfg.eps;
    oc.weight_decay = cfg.weight_decay;
    oc.clip_norm = cfg.clip_norm;
    oc.decay = cfg.lr_decay;
    oc.unit = per_epoch;
    if (cfg.warmup > 0) {
        oc.warmup = cfg.warmup_quadratic ? FXP_WARMUP_QUADRATIC : FXP_WARMUP_LINEAR;
        oc.warmup_units = cfg.warmup;
    }
    if (fxp_optim_new(ctx, r.ps, &oc, &opt) < 0) {
        tool_error("train", "%s", tool_message());
        goto done;
    }
    if (resume && image_load(ctx, ckpt_path, &r, opt) < 0) {
        tool_error("train", "%s", tool_message());
        goto done;
    }
    fxp_dist *dist = tool_dist(ctx);
    if (lead) { /* only rank 0 writes the run directory */
        if (mkdir(out, 0777) == 0) created_dir = 1;
        else if (errno != EEXIST) {
            tool_error("train", "cannot create %s: %s", out, strerror(errno));
            goto done;
        }
        store_remove_stale_temporaries(out, NULL);
        if (resume && truncate_log(log_path, st.step) < 0) {
            tool_error("train", "cannot rewrite %s: %s", log_path, strerror(errno));
            goto done;
        }
        const int fresh_log = !resume || !tool_file_exists(log_path);
        if (!(log = fopen(log_path, fresh_log ? "w" : "a"))) {
            tool_error("train", "cannot write %s: %s", log_path, strerror(errno));
            goto done;
        }
        if (fresh_log) fprintf(log, "step,epoch,train_bpd,valid_bpd,lr,seconds\n");
    }

    const int C = cfg.channels, H = cfg.height, W = cfg.width;
    const int64_t D = (int64_t)C * H * W;
    /* this rank's rows of every global batch */
    int64_t shard_off, shard_n;
    tool_shard(B, &shard_off, &shard_n);
    if (shard_n < 1) {
        tool_error("train", "%d ranks for a batch of %d images: every rank needs at least one "
                            "(use a larger batch or fewer ranks)", ranks, B);
        rc = EXIT_USAGE;
        goto done;
    }
    int qshape[4] = { (int)shard_n, C, H, W };
    if (cfg.dequantization == FXP_DEQUANT_VARIATIONAL) {
        qshape[1] = 4 * C;
        qshape[2] = H / 2;
        qshape[3] = W / 2;
    }
    const int64_t nd = (int64_t)qshape[1] * qshape[2] * qshape[3];
    const int xshape[4] = { (int)shard_n, C, H, W };
    if (fxp_tensor_alloc(ctx, &xb, 4, xshape) < 0 || fxp_tensor_alloc(ctx, &noise, 4, qshape) < 0 ||
        fxp_tape_new(ctx, &tape) < 0 || !(perm = malloc((size_t)n_train * sizeof *perm)) ||
        !(aug = malloc((size_t)(B * D))) || !(aug2 = malloc((size_t)(B * D))) ||
        !(noise_all = malloc((size_t)(B * nd) * sizeof *noise_all))) {
        tool_error("train", "%s", fxp_last_error()[0] ? fxp_last_error() : "out of memory");
        goto done;
    }
    fxp_tape_set_save_memory(tape, save_memory);
    if (!resume) {
        /* data-dependent initialisations (actnorm) see the first global batch
         * in one training forward without gradients, on every rank alike, so
         * that K ranks start where one process does */
        fxp_tensor xg = { 0 }, ng = { 0 };
        const int gs[4] = { B, C, H, W }, gq[4] = { B, qshape[1], qshape[2], qshape[3] };
        tool_epoch_order(st.seed, 0, perm, n_train);
        fxp_var *vx, *vn, *e;
        fxp_rng ir = step_rng(st.seed, -1, 3);
        int ok = fxp_tensor_alloc(ctx, &xg, 4, gs) == 0 && fxp_tensor_alloc(ctx, &ng, 4, gq) == 0;
        if (ok) {
            for (int i = 0; i < B; i++)
                for (int64_t j = 0; j < D; j++)
                    xg.data[(int64_t)i * D + j] = train.pixels[(int64_t)perm[i] * D + j];
            batch_noise(&cfg, &ir, ng.data, B, nd, fxp_ctx_threads(ctx));
            fxp_tape_reset(tape);
            fxp_tape_set_grad_enabled(tape, 0);
            ok = fxp_tape_input(tape, &vx, &xg, 0) == 0 && fxp_tape_input(tape, &vn, &ng, 0) == 0 &&
                 fxp_image_model_elbo_noise(r.m, tape, 1, &ir, vx, vn, &e, NULL) == 0;
            fxp_tape_reset(tape);
            fxp_tape_set_grad_enabled(tape, 1);
        }
        fxp_tensor_release(&xg);
        fxp_tensor_release(&ng);
        if (!ok) {
            tool_error("train", "initialisation: %s", fxp_last_error());
            goto done;
        }
    }
    if (dist && fxp_dist_bcast_params(dist, r.ps, 0) < 0) {
        tool_error("train", "rank %d: %s", rank, fxp_last_error());
        goto done;
    }
    tool_catch_interrupts();
    char label[64];
    image_model_label(&cfg, label, sizeof label);
    if (!quiet)
        fprintf(stderr, "flowexp train: %s (%s, %s dequantization) on %s (%d images %dx%dx%d), "
                        "%lld steps of %d images (%lld per epoch), %d thread(s)%s\n",
                model ? model : "resumed run", label,
                cfg.dequantization == FXP_DEQUANT_VARIATIONAL ? "variational" : "uniform", data,
                n_train, C, H, W, total, B, per_epoch, fxp_ctx_threads(ctx), resume ? ", resumed" : "");
    if (!quiet && ranks > 1)
        fprintf(stderr, "flowexp train: %d MPI ranks, %lld images of every batch each (rank 0)\n",
                ranks, (long long)shard_n);
    progress pr;
    progress_init(&pr, stderr, total, st.step, time_limit);
    const double t0 = progress_now(), prior_seconds = st.train_seconds;
    long long cur_epoch = -1;
    const double to_bpd = 1.0 / ((double)D * 0.69314718055994530942);
    int stop_reason = 0;
    while (st.step < total) {
        const long long epoch = st.step / per_epoch, k = st.step % per_epoch;
        if (epoch != cur_epoch) {
            tool_epoch_order(st.seed, epoch, perm, n_train);
            cur_epoch = epoch;
        }
        const uint8_t *src = train.pixels;
        for (int i = 0; i < B; i++)
            memcpy(aug + (size_t)i * D, src + (size_t)perm[k * B + i] * D, (size_t)D);
        const uint8_t *batch_px = aug;
        if (cfg.augment) {
            fxp_rng ar = step_rng(st.seed, st.step, 1);
            if (fxp_images_augment(ctx, aug, aug2, B, C, H, W, &ar) < 0) {
                tool_error("train", "step %lld: %s", st.step + 1, fxp_last_error());
                goto done;
            }
            batch_px = aug2;
        }
        for (int64_t i = 0; i < shard_n * D; i++) xb.data[i] = batch_px[shard_off * D + i];
        fxp_rng nr = step_rng(st.seed, st.step, 2);
        batch_noise(&cfg, &nr, noise_all, B, nd, fxp_ctx_threads(ctx));
        memcpy(noise.data, noise_all + shard_off * nd, (size_t)(shard_n * nd) * sizeof(float));
        /* the residual blocks' estimators: a stream of (seed, step), apart per rank */
        fxp_rng er = step_rng(st.seed, st.step, 4);
        er.counter += (uint64_t)shard_off << 16;
        fxp_var *vx, *vn, *elbo, *loss;
        fxp_tape_reset(tape);
        fxp_params_zero_grad(r.ps);
        if (fxp_tape_input(tape, &vx, &xb, 0) < 0 || fxp_tape_input(tape, &vn, &noise, 0) < 0 ||
            fxp_image_model_elbo_noise(r.m, tape, 1, &er, vx, vn, &elbo, NULL) < 0 ||
            fxp_mean(tape, &loss, elbo, FXP_AXES_ALL, 0) < 0 ||
            fxp_scale(tape, &loss, loss, (float)-to_bpd) < 0 ||
            fxp_tape_backward(tape, loss, NULL) < 0 || reduce_grads(dist, r.ps, shard_n) < 0 ||
            fxp_optim_step(opt, NULL) < 0) {
            tool_error("train", "step %lld (rank %d): %s", st.step + 1, rank, fxp_last_error());
            goto done;
        }
        /* the global batch's loss, and a stop that every rank agrees on */
        double step_loss = loss->value.data[0];
        if (time_limit > 0 && progress_now() - t0 >= time_limit) stop_reason = 1;
        if (tool_interrupted()) stop_reason = 2;
        if (dist) {
            double red[3] = { step_loss * (double)shard_n / B, stop_reason == 1, stop_reason == 2 };
            if (fxp_dist_sum(dist, red, 3) < 0) {
                tool_error("train", "step %lld (rank %d): %s", st.step + 1, rank, fxp_last_error());
                goto done;
            }
            step_loss = red[0];
            stop_reason = red[2] > 0 ? 2 : red[1] > 0 ? 1 : 0;
        }
        st.step++;
        st.window_loss += step_loss;
        st.window_n++;
        st.train_seconds = prior_seconds + (progress_now() - t0);
        if (!quiet) progress_update(&pr, st.step, step_loss, pr.tty ? 0 : eval_every);
        const int last = st.step == total || stop_reason;
        if (st.step % eval_every == 0 || st.step == total) {
            double v;
            if (validate(ctx, &r, &valid, valid_n, &v) < 0) {
                tool_error("train", "validation at step %lld: %s", st.step, fxp_last_error());
                goto done;
            }
            if (lead) {
                fprintf(log, "%lld,%.4f,%.6f,%.6f,%.6g,%.2f\n", st.step,
                        (double)st.step / per_epoch, st.window_loss / st.window_n, v,
                        fxp_optim_lr(opt), st.train_seconds);
                if (fflush(log) != 0 || ferror(log)) {
                    tool_error("train", "cannot write %s: %s", log_path, strerror(errno));
                    goto done;
                }
                draw_curves(log_path, out, &cfg, &st, quiet);
            }
            st.window_loss = 0;
            st.window_n = 0;
            if (v < st.best_valid) {
                st.best_valid = v;
                st.best_step = st.step;
                if (lead && image_save(ctx, best_path, &r, opt, &st) < 0) {
                    tool_error("train", "%s", tool_message());
                    goto done;
                }
            }
            if (lead && image_save(ctx, ckpt_path, &r, opt, &st) < 0) {
                tool_error("train", "%s", tool_message());
                goto done;
            }
            wrote_ckpt = 1;
        } else if (last) {
            if (lead && image_save(ctx, ckpt_path, &r, opt, &st) < 0) {
                tool_error("train", "%s", tool_message());
                goto done;
            }
            wrote_ckpt = 1;
        }
        if (stop_reason) break;
    }
    if (!quiet) progress_done(&pr);
    if (log) fclose(log);
    log = NULL;
    /* every rank must hold the same bits; say so */
    if (dist && tool_dist_identical(dist, r.ps, "train", comm_seconds, progress_now() - t0) < 0)
        goto done;
    if (lead) {
        char best[96];
        if (st.best_step >= 0)
            snprintf(best, sizeof best, "best valid %.4f bits/dim (step %lld)", st.best_valid, st.best_step);
        else
            snprintf(best, sizeof best, "not validated yet");
        printf("trained %s: step %lld/%lld, %.1f s; %s\ncheckpoint: %s\n", model ? model : label,
               st.step, total, st.train_seconds, best, ckpt_path);
    }
    if (stop_reason == 2) {
        if (lead) fprintf(stderr, "flowexp train: interrupted; resume with --resume\n");
        rc = EXIT_INTERRUPTED;
    } else {
        rc = 0;
    }
done:
    if (log) fclose(log);
    if (rc == 1 && !resume && !wrote_ckpt && lead) { /* failed before any checkpoint */
        remove(log_path);
        char curves[4200];
        snprintf(curves, sizeof curves, "%s/curves.png", out);
        remove(curves);
        remove(best_path);
        if (created_dir) rmdir(out);
    }
    free(perm);
    free(aug);
    free(aug2);
    free(noise_all);
    fxp_tensor_release(&noise);
    fxp_tape_free(tape);
    fxp_optim_free(opt);
    image_free(&r);
    fxp_images_free(&train);
    fxp_images_free(&valid);
    fxp_tensor_release(&xb);
    fxp_ctx_free(ctx);
    if (rc != 0 && rc != EXIT_INTERRUPTED) tool_dist_fail(rc); /* end every rank */
    return rc;
}

/* ---- eval ------------------------------------------------------------------------- */

static void eval_progress(void *user, int64_t done, int64_t total)
{
    progress *p = user;
    if (p) progress_update(p, done, 0, 0);
    (void)total;
}

/* JSON string literal (quotes, backslashes and control characters escaped). */
static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        const unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

int cmd_eval_image(int argc, char **argv)
{
    const char *ckpt = NULL, *data = NULL, *split = "test";
    int json = 0, batch = 0, threads = 0, iw = 1, n = 0, seed = 1, quiet = 0;
    arg_spec specs[] = {
        { "checkpoint", ARG_STRING, &ckpt, "F.h5", "checkpoint written by flowexp train", 0, 0, NULL, 1, 0 },
        { "data", ARG_STRING, &data, "F.h5", "image dataset file", 0, 0, NULL, 1, 0 },
        { "split", ARG_STRING, &split, "NAME", "split to evaluate (default test)", 0, 0, NULL, 0, 0 },
        { "iw-samples", ARG_INT, &iw, "K", "dequantization samples per image for the importance-weighted NLL (default 1; the paper: 1000)", 1, 1 << 20, NULL, 0, 0 },
        { "n", ARG_INT, &n, "N", "evaluate the first N images only (default all)", 1, 1e9, NULL, 0, 0 },
        { "batch", ARG_INT, &batch, "B", "(image, sample) rows per forward (default: the config's eval_batch)", 1, 1e7, NULL, 0, 0 },
        { "seed", ARG_INT, &seed, "S", "seed of the dequantization noise (default 1)", 0, 2147483647, NULL, 0, 0 },
        { "threads", ARG_INT, &threads, "T", "threads (default: all cores, or OMP_NUM_THREADS)", 1, 256, NULL, 0, 0 },
        { "json", ARG_FLAG, &json, NULL, "print one JSON object instead of text", 0, 0, NULL, 0, 0 },
        { "quiet", ARG_FLAG, &quiet, NULL, "no progress output", 0, 0, NULL, 0, 0 },
    };
    const int n_specs = (int)(sizeof specs / sizeof specs[0]);
    char err[512];
    int help;
    if (args_parse(specs, n_specs, argc, argv, NULL, 0, NULL, &help, err, sizeof err) < 0) {
        tool_error("eval", "%s", err);
        return EXIT_USAGE;
    }
    if (help) {
        args_print_help("flowexp eval --checkpoint F.h5 --data F.h5 [--split test] [--iw-samples K] [--json]",
                        "Negative ELBO and importance-weighted NLL (bits/dim) of an image model on one\n"
                        "split, in evaluation mode.  The residual flow (resflow) reports the ELBO with\n"
                        "its stochastic log-determinant estimate, and no importance-weighted NLL.",
                        specs, n_specs);
        return 0;
    }
    int rc = 1;
    fxp_ctx *ctx = NULL;
    image_run r = { 0 };
    fxp_images x = { 0 };
    fxp_image_model_config cfg;
    image_state st;
    if (fxp_ctx_new(&ctx) < 0 || (threads && fxp_ctx_set_threads(ctx, threads) < 0) ||
        image_read_config(ctx, ckpt, &cfg, &st) < 0 || image_build(ctx, &cfg, 0, &r) < 0 ||
        image_load(ctx, ckpt, &r, NULL) < 0 || image_read_split(ctx, data, split, &cfg, &x) < 0) {
        tool_error("eval", "%s", tool_message());
        goto done;
    }
    char name[64] = "";
    if (fxp_h5_read_attr(ctx, data, "dataset", name, sizeof name) < 0) name[0] = '\0';
    fxp_ctx_clear_error(ctx);
    if (name[0] && st.dataset[0] && strcmp(name, st.dataset))
        fprintf(stderr, "flowexp eval: warning: the model was trained on %s, %s holds %s\n",
                st.dataset, data, name);
    const int exact = fxp_image_model_logdet_is_exact(r.m);
    if (!exact && iw > 1) {
        tool_error("eval", "%s: the residual flow's log-determinants are stochastic estimates; an "
                           "importance-weighted NLL needs exact ones (drop --iw-samples)", ckpt);
        rc = EXIT_USAGE;
        goto done;
    }
    const int count = n > 0 && n < x.n ? n : x.n;
    /* under MPI every rank evaluates its shard; the sums give the whole set */
    int64_t off, cnt;
    tool_shard(count, &off, &cnt);
    if (tool_rank() > 0) quiet = 1;
    progress pr;
    progress_init(&pr, stderr, cnt, 0, 0);
    fxp_image_eval e = { 0 };
    e.iw_samples = iw;
    const int64_t D = (int64_t)cfg.channels * cfg.height * cfg.width;
    if (cnt > 0 &&
        fxp_image_model_evaluate(r.m, x.pixels + off * D, (int)cnt, off, iw,
                                 batch ? batch : cfg.eval_batch, (uint64_t)seed,
                                 quiet ? NULL : eval_progress, quiet ? NULL : &pr, &e) < 0) {
        tool_error("eval", "%s", tool_message());
        goto done;
    }
    fxp_dist *dist = tool_dist(ctx);
    if (dist) {
        double red[5] = { e.sums[0], e.sums[1], e.sums[2], e.sums[3], (double)cnt };
        if (fxp_dist_sum(dist, red, 5) < 0) {
            tool_error("eval", "rank %d: %s", tool_rank(), fxp_last_error());
            goto done;
        }
        memcpy(e.sums, red, sizeof e.sums);
        e.n_images = (int64_t)red[4];
        fxp_image_eval_finish(&e);
    }
    if (!quiet) progress_done(&pr);
    char label[64];
    image_model_label(&cfg, label, sizeof label);
    if (json) {
        printf("{\"bpd_elbo\": %.9g, \"bpd_elbo_stderr\": %.3g, ", e.bpd_elbo, e.bpd_elbo_stderr);
        if (exact) printf("\"bpd_iw\": %.9g, \"bpd_iw_stderr\": %.3g, ", e.bpd_iw, e.bpd_iw_stderr);
        else printf("\"bpd_iw\": null, \"bpd_iw_stderr\": null, ");
        printf("\"iw_samples\": %d, \"n_images\": %lld, \"logdet\": \"%s\", \"split\": ",
               e.iw_samples, (long long)e.n_images, exact ? "exact" : "stochastic estimate");
        json_str(stdout, split);
        printf(", \"model\": ");
        json_str(stdout, label);
        printf(", \"mixing\": ");
        json_str(stdout, cfg.mixing);
        printf(", \"dataset\": ");
        json_str(stdout, st.dataset);
        printf(", \"step\": %lld}\n", st.step);
    } else {
        printf("%s (%s, step %lld) on %s:%s, %lld images: -ELBO %.4f +- %.4f bits/dim",
               ckpt, label, st.step, data, split, (long long)e.n_images, e.bpd_elbo,
               e.bpd_elbo_stderr);
        if (iw > 1) printf(", NLL (IW %d) %.4f +- %.4f bits/dim", iw, e.bpd_iw, e.bpd_iw_stderr);
        printf("\n");
        if (!exact)
            printf("note: the log-determinants are stochastic estimates (Russian-roulette power "
                   "series,\n      %d exact terms): the -ELBO above is an unbiased estimate; no "
                   "IW NLL (it needs exact determinants)\n",
                   cfg.resflow_exact_eval);
    }
    rc = 0;
done:
    image_free(&r);
    fxp_images_free(&x);
    fxp_ctx_free(ctx);
    if (rc != 0) tool_dist_fail(rc);
    return rc;
}

/* ---- sample ------------------------------------------------------------------------ */

/* Parse "0.5,0.7,1.0" into at most max temperatures >= 0. */
static int parse_temperatures(const char *s, double *t, int max)
{
    int n = 0;
    while (*s) {
        char *end;
        errno = 0;
        const double v = strtod(s, &end);
        if (end == s || errno || !(v >= 0) || v > 100 || n == max) return -1;
        t[n++] = v;
        s = end;
        if (*s == ',') s++;
        else if (*s) return -1;
    }
    return n;
}

int cmd_sample_image(int argc, char **argv)
{
    const char *ckpt = NULL, *out = NULL, *png = NULL, *temps = NULL;
    int n = 64, seed = 1, threads = 0, batch = 64;
    double temperature = 1.0;
    arg_spec specs[] = {
        { "checkpoint", ARG_STRING, &ckpt, "F.h5", "checkpoint written by flowexp train", 0, 0, NULL, 1, 0 },
        { "n", ARG_INT, &n, "N", "images per temperature (default 64)", 1, 1e7, NULL, 0, 0 },
        { "out", ARG_STRING, &out, "S.h5", "output file: 'samples' [n, C, H, W] pixel values 0..255", 0, 0, NULL, 1, 0 },
        { "png", ARG_STRING, &png, "P.png", "also a figure of the samples, png/svg/pdf by extension (one row per temperature)", 0, 0, NULL, 0, 0 },
        { "temperature", ARG_DOUBLE, &temperature, "T", "scale of the base noise (default 1)", 0, 100, NULL, 0, 0 },
        { "temperatures", ARG_STRING, &temps, "T1,T2,..", "several temperatures (overrides --temperature)", 0, 0, NULL, 0, 0 },
        { "batch", ARG_INT, &batch, "B", "images per inverse pass (bounds memory; default 64)", 1, 1e6, NULL, 0, 0 },
        { "seed", ARG_INT, &seed, "S", "seed of the base noise (default 1)", 0, 2147483647, NULL, 0, 0 },
        { "threads", ARG_INT, &threads, "T", "threads (default: all cores, or OMP_NUM_THREADS)", 1, 256, NULL, 0, 0 },
    };
    const int n_specs = (int)(sizeof specs / sizeof specs[0]);
    char err[512];
    int help;
    if (args_parse(specs, n_specs, argc, argv, NULL, 0, NULL, &help, err, sizeof err) < 0) {
        tool_error("sample", "%s", err);
        return EXIT_USAGE;
    }
    if (help) {
        args_print_help("flowexp sample --checkpoint F.h5 --out S.h5 [--n N] [--temperatures 0.5,0.7,1.0] [--png P.png]",
                        "Draw images v = f^-1(z) of an image model, with the base and split-prior noise\n"
                        "scaled by the temperature, as pixel values floor(v) clamped to 0..255.",
                        specs, n_specs);
        return 0;
    }
    double tv[16] = { temperature };
    int nt = 1;
    if (temps && (nt = parse_temperatures(temps, tv, 16)) < 1) {
        tool_error("sample", "--temperatures \"%s\": expected up to 16 comma-separated values in [0, 100]",
                   temps);
        return EXIT_USAGE;
    }
    plot_format fmt = PLOT_PNG;
    if (png && (plot_check("the sample grid", png, err, sizeof err) < 0 ||
                plot_format_pick(NULL, png, &fmt, err, sizeof err) < 0)) {
        tool_error("sample", "%s", err);
        return EXIT_USAGE;
    }
    int rc = 1;
    fxp_ctx *ctx = NULL;
    fxp_tape *t = NULL;
    image_run r = { 0 };
    fxp_tensor all = { 0 };
    fxp_image_model_config cfg;
    image_state st;
    if (fxp_ctx_new(&ctx) < 0 || (threads && fxp_ctx_set_threads(ctx, threads) < 0) ||
        image_read_config(ctx, ckpt, &cfg, &st) < 0 || image_build(ctx, &cfg, 0, &r) < 0 ||
        image_load(ctx, ckpt, &r, NULL) < 0 || fxp_tape_new(ctx, &t) < 0) {
        tool_error("sample", "%s", tool_message());
        goto done;
    }
    const int64_t D = (int64_t)cfg.channels * cfg.height * cfg.width;
    if ((int64_t)n * nt * D > (int64_t)1 << 31) {
        tool_error("sample", "%d x %d images of %lld values do not fit one output array (2^31 values)",
                   n, nt, (long long)D);
        rc = EXIT_USAGE;
        goto done;
    }
    const int shape[4] = { n * nt, cfg.channels, cfg.height, cfg.width };
    if (fxp_tensor_alloc(ctx, &all, 4, shape) < 0) {
        tool_error("sample", "%s", tool_message());
        goto done;
    }
    fxp_tape_set_grad_enabled(t, 0);
    fxp_rng rng;
    fxp_rng_seed(&rng, (uint64_t)seed);
    for (int k = 0; k < nt; k++)
        for (int start = 0; start < n; start += batch) {
            const int b = n - start < batch ? n - start : batch;
            fxp_var *v;
            fxp_tape_reset(t);
            if (fxp_image_model_sample(r.m, t, b, (float)tv[k], &rng, &v) < 0) {
                tool_error("sample", "%s", tool_message());
                goto done;
            }
            float *dst = all.data + ((int64_t)k * n + start) * D;
            for (int64_t i = 0; i < (int64_t)b * D; i++) {
                const float p = floorf(v->value.data[i]);
                dst[i] = isnan(p) ? 0.0f : p < 0 ? 0.0f : p > 255 ? 255.0f : p;
            }
        }
    const char *names[1] = { "samples" };
    const fxp_tensor *arrays[1] = { &all };
    char tlist[256] = "";
    for (int k = 0; k < nt; k++)
        snprintf(tlist + strlen(tlist), sizeof tlist - strlen(tlist), "%s%g", k ? "," : "", tv[k]);
    const fxp_attr attrs[4] = {
        { "source_checkpoint", FXP_ATTR_STRING, ckpt, 0, 0 },
        { "temperatures", FXP_ATTR_STRING, tlist, 0, 0 },
        { "n_per_temperature", FXP_ATTR_INT, NULL, 0, n },
        { "library_version", FXP_ATTR_STRING, fxp_version(), 0, 0 },
    };
    if (fxp_h5_write_arrays(ctx, out, 1, names, arrays, 4, attrs) < 0) {
        tool_error("sample", "%s", tool_message());
        goto done;
    }
    if (png) {
        uint8_t *pix = malloc((size_t)(n * nt * D));
        char title[256], labels[16][32];
        const char *lp[16];
        if (!pix) {
            tool_error("sample", "out of memory for the grid");
            remove(out);
            goto done;
        }
        for (int64_t i = 0; i < (int64_t)n * nt * D; i++) pix[i] = (uint8_t)all.data[i];
        for (int k = 0; k < nt; k++) {
            snprintf(labels[k], sizeof labels[k], "T = %g", tv[k]);
            lp[k] = labels[k];
        }
        char label[64];
        snprintf(title, sizeof title, "%s on %s, step %lld, temperature %s",
                 image_model_label(&cfg, label, sizeof label),
                 st.dataset[0] ? st.dataset : "images", st.step, tlist);
        const int ok = plot_image_grid(png, fmt, pix, n * nt, cfg.channels, cfg.height, cfg.width,
                                       nt, lp, title, err, sizeof err) == 0;
        free(pix);
        if (!ok) {
            tool_error("sample", "%s", err);
            remove(out);
            goto done;
        }
    }
    printf("wrote %s: %d images at temperature(s) %s\n", out, n * nt, tlist);
    rc = 0;
done:
    fxp_tensor_release(&all);
    fxp_tape_free(t);
    image_free(&r);
    fxp_ctx_free(ctx);
    return rc;
}

/* ---- info -------------------------------------------------------------------------- */

int image_info(const char *path, int json)
{
    int rc = 1;
    fxp_ctx *ctx = NULL;
    image_run r = { 0 };
    fxp_image_model_config cfg;
    image_state st;
    char label[64], v[160];
    if (fxp_ctx_new(&ctx) < 0 || image_read_config(ctx, path, &cfg, &st) < 0 ||
        image_build(ctx, &cfg, 0, &r) < 0 || image_load(ctx, path, &r, NULL) < 0) {
        tool_error("info", "%s", tool_message());
        goto done;
    }
    image_model_label(&cfg, label, sizeof label);
    const size_t n_params = fxp_params_size(r.ps, FXP_PARAM_TRAINABLE);
    const unsigned long long hash = tool_params_hash(r.ps);
    if (json) {
        printf("{\"checkpoint\": ");
        json_str(stdout, path);
        printf(", \"family\": \"image\", \"model\": ");
        json_str(stdout, label);
        printf(", \"parameters\": %zu, \"parameters_fnv1a\": \"%016llx\", \"config\": {", n_params,
               hash);
        for (int i = 0; i < fxp_image_model_config_n_keys(); i++) {
            const char *k = fxp_image_model_config_key(i);
            fxp_image_model_config_get(&cfg, k, v, sizeof v);
            printf("%s", i ? ", " : "");
            json_str(stdout, k);
            printf(": ");
            json_str(stdout, v);
        }
        printf("}, \"dataset\": ");
        json_str(stdout, st.dataset);
        printf(", \"step\": %lld, \"best_step\": %lld, \"best_valid_bpd\": ", st.step, st.best_step);
        if (isfinite(st.best_valid)) printf("%.17g", st.best_valid);
        else printf("null");
        printf(", \"train_seconds\": %.3f, \"seed\": %llu}\n", st.train_seconds, st.seed);
    } else {
        printf("%s: image model %s, %zu parameters (FNV-1a %016llx)\n", path, label, n_params, hash);
        printf("data: %s, %dx%dx%d images; %s dequantization\n", st.dataset[0] ? st.dataset : "-",
               cfg.channels, cfg.height, cfg.width,
               cfg.dequantization == FXP_DEQUANT_VARIATIONAL ? "variational" : "uniform");
        printf("progress: step %lld, %.1f s of training, seed %llu\n", st.step, st.train_seconds,
               st.seed);
        if (st.best_step >= 0)
            printf("best validation: %.4f bits/dim at step %lld\n", st.best_valid, st.best_step);
        printf("configuration:\n");
        for (int i = 0; i < fxp_image_model_config_n_keys(); i++) {
            const char *k = fxp_image_model_config_key(i);
            fxp_image_model_config_get(&cfg, k, v, sizeof v);
            printf("  %-22s %s\n", k, v);
        }
    }
    rc = 0;
done:
    image_free(&r);
    fxp_ctx_free(ctx);
    return rc;
}
