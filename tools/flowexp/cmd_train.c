/* flowexp train: train a graph flow on a dataset file, with checkpoints,
 * a CSV log, SIGINT/SIGTERM handling and exact resumption.
 *
 * A run lives in its output directory: checkpoint.h5 (model, optimizer and
 * run state), best.h5 (the best validated model) and log.csv.  A resumed
 * run continues as if it had never stopped: the same batches, parameters,
 * log rows and best.h5 (bit-identical at the same thread count; the log's
 * `seconds` column is wall time and differs).  For that, everything that
 * shapes the run is part of its state (store.h: configuration, seed,
 * eval_every, ckpt_every, data, the running training loss), validation and
 * log rows happen on the eval_every schedule only, and on resumption the log
 * is cut back to the checkpoint's step. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "args.h"
#include "dist.h"
#include "progress.h"
#include "store.h"
#include "text.h"


static const char LOG_HEADER[] = "step,epoch,train_nll,valid_nll,lr,seconds\n";


/* path made absolute (so that --resume finds it from anywhere), or "" if it
 * does not fit or holds control characters. */
static void absolute_path(const char *path, char *buf, size_t size)
{
    char cwd[4096];
    int n = path[0] == '/' || !getcwd(cwd, sizeof cwd) ? snprintf(buf, size, "%s", path)
                                                       : snprintf(buf, size, "%s/%s", cwd, path);
    if (n < 0 || (size_t)n >= size || !text_is_printable(buf)) buf[0] = '\0';
}

/* ---- the run directory ------------------------------------------------------------ */

typedef struct run_files {
    const char *dir;
    char ckpt[4096], best[4096], log[4096], curves[4096];
} run_files;

static int run_files_init(run_files *f, const char *dir)
{
    f->dir = dir;
    return tool_join(f->ckpt, sizeof f->ckpt, dir, "checkpoint.h5") < 0 ||
                   tool_join(f->best, sizeof f->best, dir, "best.h5") < 0 ||
                   tool_join(f->log, sizeof f->log, dir, "log.csv") < 0 ||
                   tool_join(f->curves, sizeof f->curves, dir, "curves.png") < 0
               ? -1
               : 0;
}

/* Bytes free for us on the file system holding path's directory (-1: unknown). */
static double free_bytes(const char *dir)
{
    struct statvfs s;
    return statvfs(dir, &s) == 0 ? (double)s.f_bavail * (double)s.f_frsize : -1;
}

/* Save a checkpoint, first checking that the file system can hold it: the
 * estimate is the last checkpoint's size (before the first: three copies of
 * the parameters, for values and Adam's m and v, plus metadata) with a
 * margin.  A save that would not fit
 * fails here with a message instead of inside HDF5. */
static int save_checked(fxp_ctx *ctx, const char *path, const char *dir, tool_model *m,
                        fxp_optim *opt, const run_state *st, double *last_size)
{
    double need = *last_size;
    if (need <= 0) /* values, Adam's m and v, and about 0.5 kB of HDF5 metadata per
                      dataset (three per entry; 1.5 kB each to be safe) */
        need = 3.0 * sizeof(float) * (double)fxp_params_size(m->ps, FXP_PARAM_TRAINABLE) +
               3 * 1536.0 * fxp_params_count(m->ps);
    need = 1.25 * need + 65536;
    const double avail = free_bytes(dir);
    if (avail >= 0 && avail < need)
        return tool_fail(FXP_EIO, "cannot write %s: No space left on device (it may need up to "
                         "%.0f kB and the file system has %.0f kB free)", path, need / 1024,
                         avail / 1024);
    int rc = store_save(ctx, path, m, opt, st);
    struct stat sb;
    if (rc >= 0 && stat(path, &sb) == 0 && (double)sb.st_size > *last_size) *last_size = (double)sb.st_size;
    return rc;
}

/* Open log.csv for appending rows after step `step`.  Fresh run: a new log
 * with its header.  Resumed run: the existing log is rewritten (atomically)
 * with its header and the complete rows up to `step` only, so rows written
 * after the checkpoint (before a kill) or a torn last line disappear and
 * the resumed run writes them again. */
static FILE *log_open(const char *path, int resume, long long step)
{
    FILE *in = resume ? fopen(path, "r") : NULL;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *out = fopen(tmp, "w");
    if (!out) {
        tool_fail(FXP_EIO, "cannot write %s: %s", tmp, strerror(errno));
        if (in) fclose(in);
        return NULL;
    }
    fputs(LOG_HEADER, out);
    if (in) {
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        while ((len = getline(&line, &cap, in)) > 0) {
            if (line[len - 1] != '\n') break; /* torn by a kill */
            if (!strcmp(line, LOG_HEADER)) continue;
            char *end;
            const long long s = strtoll(line, &end, 10);
            if (end == line || *end != ',' || s > step) break;
            fputs(line, out);
        }
        free(line);
        fclose(in);
    }
    if (fflush(out) != 0 || ferror(out) || fsync(fileno(out)) != 0) {
        tool_fail(FXP_EIO, "cannot write %s: %s", tmp, strerror(errno));
        fclose(out);
        unlink(tmp);
        return NULL;
    }
    if (fclose(out) != 0 || rename(tmp, path) != 0) {
        tool_fail(FXP_EIO, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return NULL;
    }
    FILE *log = fopen(path, "a");
    if (!log) tool_fail(FXP_EIO, "cannot write %s: %s", path, strerror(errno));
    return log;
}

/* ---- one training step ------------------------------------------------------------ */

/* Copy batch k of the epoch's permutation into xb [B, N, F]. */
/* Rows [off, off + xb rows) of global batch k (of B graphs) into xb. */
static void fill_batch(fxp_tensor *xb, const fxp_tensor *train, const int *perm, long long k,
                       int B, int64_t off)
{
    const size_t row = (size_t)train->shape[1] * train->shape[2];
    for (int i = 0; i < xb->shape[0]; i++)
        memcpy(xb->data + (size_t)i * row, train->data + (size_t)perm[k * B + off + i] * row,
               row * sizeof(float));
}

/* loss = -mean_b log p(x_b) / N (nats per node) over this rank's graphs;
 * backward; under MPI the gradients averaged over the global batch (weights
 * count / B); one optimizer step. */
static double comm_seconds; /* time in the gradient reduction (MPI) */

static int train_step(fxp_tape *tape, tool_model *m, fxp_optim *opt, const fxp_flow_io *io,
                      const fxp_tensor *xb, fxp_dist *dist, double *loss_out)
{
    fxp_var *vx, *lp, *loss;
    fxp_tape_reset(tape);
    fxp_params_zero_grad(m->ps);
    int rc;
    if ((rc = fxp_tape_input(tape, &vx, xb, 0)) < 0 ||
        (rc = fxp_model_log_prob(m->model, tape, io, vx, &lp)) < 0 ||
        (rc = fxp_mean(tape, &loss, lp, FXP_AXES_ALL, 0)) < 0 ||
        (rc = fxp_scale(tape, &loss, loss, -1.0f / xb->shape[1])) < 0 ||
        (rc = fxp_tape_backward(tape, loss, NULL)) < 0)
        return rc;
    if (dist) {
        const double t0 = progress_now();
        rc = fxp_dist_grad_weighted(dist, m->ps, xb->shape[0]);
        comm_seconds += progress_now() - t0;
        if (rc < 0) return rc;
    }
    if ((rc = fxp_optim_step(opt, NULL)) < 0) return rc;
    *loss_out = loss->value.data[0];
    return FXP_OK;
}

/* Validate every steps/20 steps, but not more often than every
 * n_valid / batch steps: then validation never sees more graphs than
 * training does in between (one validation pass costs about as much as
 * n_valid / batch / 3 training steps), and short runs are not dominated by
 * it. */
static int default_eval_every(long long total, int n_valid, int batch)
{
    long long e = total / 20;
    const long long floor_ = (n_valid + batch - 1) / batch;
    if (e < floor_) e = floor_;
    if (e > total) e = total;
    return (int)(e >= 1 ? e : 1);
}

/* ---- options -------------------------------------------------------------------------- */

typedef struct train_opts {
    const char *model, *data, *out, *config;
    int seed, threads, steps, batch, resume, force, quiet, eval_every, ckpt_every, list_keys;
    double lr, time_limit;
    arg_list sets;
} train_opts;

/* Each key of the kind's configuration with its default and meaning. */
static void print_keys(const char *kind_name)
{
    fxp_graph_model_kind kind;
    fxp_graph_model_config cfg;
    fxp_graph_model_kind_parse(kind_name, &kind);
    fxp_graph_model_config_default(&cfg, kind);
    printf("configuration keys of %s (--set KEY=VALUE, or KEY = VALUE lines in --config):\n",
           kind_name);
    for (int i = 0; i < fxp_graph_model_config_n_keys(); i++) {
        char v[128];
        const char *key = fxp_graph_model_config_key(i);
        fxp_graph_model_config_get(&cfg, key, v, sizeof v);
        printf("  %-16s %-10s %s\n", key, v, fxp_graph_model_config_key_help(i));
    }
}

/* 0: go on; otherwise the exit status (after help or an error). */
static int parse_options(int argc, char **argv, train_opts *o)
{
    memset(o, 0, sizeof *o);
    arg_spec specs[] = {
        { "model", ARG_CHOICE, &o->model, NULL, "model kind", 0, 0, "coupling|gnf|gnf-gce", 0, 0 },
        { "data", ARG_STRING, &o->data, "F.h5", "dataset file (splits train, valid); with --resume: the run's", 0, 0, NULL, 0, 0 },
        { "out", ARG_STRING, &o->out, "DIR", "run directory (checkpoint.h5, best.h5, log.csv) (required)", 0, 0, NULL, 0, 0 },
        { "config", ARG_STRING, &o->config, "FILE", "config file of key = value lines", 0, 0, NULL, 0, 0 },
        { "set", ARG_LIST, &o->sets, "KEY=VALUE", "override one configuration key (repeatable)", 0, 0, NULL, 0, 0 },
        { "list-keys", ARG_FLAG, &o->list_keys, NULL, "list the configuration keys of --model with defaults and meanings", 0, 0, NULL, 0, 0 },
        { "seed", ARG_INT, &o->seed, "S", "seed of initialisation and batch order (default 0)", 0, 2147483647, NULL, 0, 0 },
        { "steps", ARG_INT, &o->steps, "N", "optimizer steps (default: the config's train_steps); may change on --resume", 1, 1e9, NULL, 0, 0 },
        { "batch", ARG_INT, &o->batch, "B", "graphs per step (default: the config's batch)", 1, 1e6, NULL, 0, 0 },
        { "lr", ARG_DOUBLE, &o->lr, "LR", "learning rate (default: the config's lr)", 1e-12, 10, NULL, 0, 0 },
        { "eval-every", ARG_INT, &o->eval_every, "N", "validate (and log) every N steps (default: steps/20, at least n_valid/batch)", 1, 1e9, NULL, 0, 0 },
        { "ckpt-every", ARG_INT, &o->ckpt_every, "N", "write checkpoint.h5 every N steps (default: at each validation)", 1, 1e9, NULL, 0, 0 },
        { "threads", ARG_INT, &o->threads, "T", "threads (default: all cores, or OMP_NUM_THREADS)", 1, 256, NULL, 0, 0 },
        { "time-limit", ARG_DOUBLE, &o->time_limit, "SEC", "stop after SEC seconds of wall time in this invocation", 0, 1e9, NULL, 0, 0 },
        { "resume", ARG_FLAG, &o->resume, NULL, "continue the run in DIR from its checkpoint.h5", 0, 0, NULL, 0, 0 },
        { "force", ARG_FLAG, &o->force, NULL, "start a new run in DIR even if it holds one (deletes it)", 0, 0, NULL, 0, 0 },
        { "quiet", ARG_FLAG, &o->quiet, NULL, "no progress output", 0, 0, NULL, 0, 0 },
    };
    const int n_specs = (int)(sizeof specs / sizeof specs[0]);
    char err[512];
    int help;
    if (args_parse(specs, n_specs, argc, argv, NULL, 0, NULL, &help, err, sizeof err) < 0) {
        tool_error("train", "%s", err);
        return EXIT_USAGE;
    }
    for (int i = 0; !help && i < o->sets.n; i++)
        if (!strcmp(o->sets.items[i], "help=1") || !strcmp(o->sets.items[i], "help")) o->list_keys = 1;
    if (help) {
        args_print_help(
            "flowexp train --model KIND --data F.h5 --out DIR [options]\n"
            "       flowexp train --out DIR --resume [--steps N] [--threads T] [--time-limit SEC]\n"
            "       flowexp train --model KIND --list-keys",
            "Train a graph flow on the 'train' split, validating on 'valid' every\n"
            "--eval-every steps and at the last step (log.csv row; best.h5 if better).\n"
            "Configuration: the kind's defaults, then --config, then --set, then the\n"
            "explicit flags; `--list-keys` (or --set help=1) lists the keys.\n"
            "DIR must not hold a run already (checkpoint.h5 or best.h5): use\n"
            "--resume to continue it or --force to replace it. Temporaries left in DIR by a\n"
            "killed run (*.h5.tmp.PID, log.csv.tmp.PID of a dead PID) are removed at start.\n"
            "A fresh run that fails before its first checkpoint removes what it created.\n"
            "Ctrl-C (SIGINT), SIGTERM or --time-limit save DIR/checkpoint.h5 (and a first\n"
            "best.h5 if there is none yet); SIGINT/SIGTERM exit with status 130. --resume\n"
            "continues bit-identically at the same thread count, keeping every option of\n"
            "the run (configuration, seed, --eval-every, --ckpt-every, --data); only\n"
            "--steps, --threads, --time-limit and --quiet apply per invocation.\n"
            "Threads: all cores unless --threads or OMP_NUM_THREADS say otherwise.",
            specs, n_specs);
        return -1;
    }
    if (o->list_keys) {
        if (!o->model) {
            tool_error("train", "--list-keys: which model? (--model coupling|gnf|gnf-gce)");
            return EXIT_USAGE;
        }
        print_keys(o->model);
        return -1;
    }
    if (!o->out) {
        tool_error("train", "missing required option --out");
        return EXIT_USAGE;
    }
    if (o->resume) {
        if (o->model || o->config || o->sets.n || o->batch || o->lr > 0 || specs[6].seen ||
            o->eval_every || o->ckpt_every || o->force) {
            tool_error("train", "--resume continues the run as it was started: drop "
                                "--model/--config/--set/--batch/--lr/--seed/--eval-every/"
                                "--ckpt-every/--force (only --steps, --threads, --time-limit, "
                                "--quiet and a matching --data may be given)");
            return EXIT_USAGE;
        }
    } else {
        if (!o->model) {
            tool_error("train", "--model is required (unless --resume)");
            return EXIT_USAGE;
        }
        if (!o->data) {
            tool_error("train", "--data is required (unless --resume)");
            return EXIT_USAGE;
        }
    }
    return 0;
}

/* The configuration of a fresh run from the options (0, or an exit status). */
static int fresh_config(const train_opts *o, fxp_graph_model_config *cfg)
{
    char err[512];
    fxp_graph_model_kind kind;
    fxp_graph_model_kind_parse(o->model, &kind);
    fxp_graph_model_config_default(cfg, kind);
    if (o->config && tool_config_file(o->config, cfg, err, sizeof err) < 0) {
        tool_error("train", "%s", err);
        return EXIT_USAGE;
    }
    if (tool_apply_sets("train", &o->sets, tool_graph_set, cfg) < 0) return EXIT_USAGE;
    if (o->batch) cfg->batch = o->batch;
    if (o->lr > 0) cfg->lr = o->lr;
    return 0;
}

/* Is DIR free for a fresh run?  0, or an exit status after a message. */
static int check_run_dir(const train_opts *o, const run_files *f)
{
    struct stat sb;
    if (stat(o->out, &sb) == 0 && !S_ISDIR(sb.st_mode)) {
        tool_error("train", "--out %s exists and is not a directory", o->out);
        return EXIT_USAGE;
    }
    if (o->resume) {
        if (!tool_file_exists(f->ckpt)) {
            tool_error("train", "--resume: no checkpoint at %s", f->ckpt);
            return EXIT_USAGE;
        }
        return 0;
    }
    /* a log alone is what a run killed before its first checkpoint leaves */
    const char *held = tool_file_exists(f->ckpt) ? f->ckpt : tool_file_exists(f->best) ? f->best : NULL;
    if (held && !o->force) {
        tool_error("train", "%s already holds a run (%s): continue it with --resume, or start "
                            "over with --force", o->out, held);
        return EXIT_USAGE;
    }
    return 0;
}

int cmd_train(int argc, char **argv)
{
    train_opts o;
    int rc = parse_options(argc, argv, &o);
    if (rc) return rc < 0 ? 0 : rc;
    run_files files;
    if (run_files_init(&files, o.out) < 0) {
        tool_error("train", "output path too long");
        return EXIT_USAGE;
    }
    if ((rc = check_run_dir(&o, &files)) != 0) return rc;
    const int rank = tool_rank(), ranks = tool_ranks(), lead = rank == 0;
    if (!lead) o.quiet = 1;

    rc = 1;
    fxp_ctx *ctx = NULL;
    fxp_optim *opt = NULL;
    fxp_tape *tape = NULL, *vtape = NULL;
    tool_model m;
    memset(&m, 0, sizeof m);
    fxp_tensor train = { 0 }, valid = { 0 }, adj = { 0 }, xb = { 0 };
    int *perm = NULL;
    FILE *log = NULL;
    int created_dir = 0, created_log = 0, saved_ckpt = 0, created_best = 0, created_curves = 0;
    if (fxp_ctx_new(&ctx) < 0 || (o.threads && fxp_ctx_set_threads(ctx, o.threads) < 0)) {
        tool_error("train", "%s", fxp_last_error());
        goto done;
    }

    /* configuration and run state */
    fxp_graph_model_config cfg;
    run_state st;
    if (o.resume) {
        int seen;
        if (store_read_config(ctx, files.ckpt, &cfg, &st, &seen) < 0) {
            tool_error("train", "%s", tool_message());
            goto done;
        }
        if (seen == 0) {
            tool_error("train", "%s holds no run state (not written by flowexp train)", files.ckpt);
            goto done;
        }
        if (!o.data && !st.data[0]) {
            tool_error("train", "%s does not record its data file; pass --data", files.ckpt);
            rc = EXIT_USAGE;
            goto done;
        }
        if (!o.data) o.data = st.data;
    } else {
        run_state_init(&st, (unsigned long long)o.seed);
        if ((rc = fresh_config(&o, &cfg)) != 0) goto done;
        rc = 1;
    }
    if (o.steps) cfg.train_steps = o.steps;
    if (fxp_graph_model_config_validate(ctx, &cfg) < 0) {
        tool_error("train", "%s", fxp_last_error());
        rc = EXIT_USAGE;
        goto done;
    }

    /* data */
    if (store_read_split(ctx, o.data, "train", &train) < 0 ||
        store_read_split(ctx, o.data, "valid", &valid) < 0) {
        tool_error("train", "%s", fxp_last_error());
        goto done;
    }
    if (train.shape[2] != cfg.features || valid.shape[1] != train.shape[1] ||
        valid.shape[2] != train.shape[2]) {
        tool_error("train", "%s: train [%d,%d,%d] / valid [%d,%d,%d] do not fit a model with %d "
                            "features", o.data, train.shape[0], train.shape[1], train.shape[2],
                   valid.shape[0], valid.shape[1], valid.shape[2], cfg.features);
        goto done;
    }
    const int n_train = train.shape[0], nodes = train.shape[1];
    char dataset[64];
    double entropy;
    store_dataset_info(ctx, o.data, dataset, sizeof dataset, &entropy);
    if (o.resume) {
        if ((st.dataset[0] && strcmp(st.dataset, dataset) != 0) || st.nodes != nodes) {
            tool_error("train", "--resume: the run was trained on %s (graphs of %d nodes) but %s "
                                "holds %s (%d nodes)", st.dataset[0] ? st.dataset : "unnamed data",
                       st.nodes, o.data, dataset[0] ? dataset : "unnamed data", nodes);
            rc = EXIT_USAGE;
            goto done;
        }
    } else {
        snprintf(st.dataset, sizeof st.dataset, "%s", dataset);
        st.entropy = entropy;
        st.nodes = nodes;
        absolute_path(o.data, st.data, sizeof st.data);
    }
    const int B = cfg.batch < n_train ? cfg.batch : n_train;
    if (tool_complete_graph(ctx, nodes, &adj) < 0) {
        tool_error("train", "%s", fxp_last_error());
        goto done;
    }

    /* model and optimizer */
    if (tool_model_build(ctx, &cfg, st.seed, &m) < 0) {
        tool_error("train", "%s", fxp_last_error());
        goto done;
    }
    fxp_optim_config oc;
    fxp_optim_config_default(&oc, FXP_OPTIM_ADAM);
    oc.lr = cfg.lr;
    oc.decay = cfg.lr_decay;
    oc.unit = cfg.decay_every;
    oc.clip_norm = cfg.clip_norm;
    if (cfg.warmup > 0) {
        oc.warmup = FXP_WARMUP_LINEAR;
        oc.warmup_units = cfg.warmup;
    }
    if (fxp_optim_new(ctx, m.ps, &oc, &opt) < 0) {
        tool_error("train", "%s", fxp_last_error());
        goto done;
    }
    if (o.resume) {
        if (store_load(ctx, files.ckpt, &m, opt) < 0) {
            tool_error("train", "%s", fxp_last_error());
            goto done;
        }
        if (fxp_optim_steps(opt) != st.step) {
            tool_error("train", "%s: the optimizer has taken %lld steps but run.step is %lld",
                       files.ckpt, (long long)fxp_optim_steps(opt), st.step);
            goto done;
        }
    }
    const long long total = cfg.train_steps, per_epoch = n_train / B;
    if (!o.resume || !st.eval_every) { /* (resume: written before these were part of the run) */
        st.eval_every = o.eval_every ? o.eval_every : default_eval_every(total, valid.shape[0], B);
        st.ckpt_every = o.ckpt_every ? o.ckpt_every : st.eval_every;
    }
    if (o.resume && st.threads && st.threads != fxp_ctx_threads(ctx) && !o.quiet)
        fprintf(stderr, "flowexp train: warning: the run used %d thread(s), this invocation %d: "
                        "it continues exactly but not bit-identically to an uninterrupted run\n",
                st.threads, fxp_ctx_threads(ctx));
    st.threads = fxp_ctx_threads(ctx);

    /* the run directory (rank 0 only): created (or cleaned) only now that
     * everything checked out */
    if (lead) {
        if (mkdir(o.out, 0777) == 0) {
            created_dir = 1;
        } else if (errno != EEXIST) {
            tool_error("train", "cannot create %s: %s", o.out, strerror(errno));
            goto done;
        }
        const int stale = store_remove_stale_temporaries(o.out, NULL);
        if (stale && !o.quiet)
            fprintf(stderr, "flowexp train: removed %d temporary file(s) left in %s by a killed run\n",
                    stale, o.out);
        if (!o.resume && o.force) {
            unlink(files.ckpt);
            unlink(files.best);
            unlink(files.log);
        }
        created_log = !tool_file_exists(files.log);
        if (!(log = log_open(files.log, o.resume, st.step))) {
            tool_error("train", "%s", tool_message());
            goto done;
        }
        created_best = !tool_file_exists(files.best);
        created_curves = !tool_file_exists(files.curves);
    }

    /* this rank's graphs of every global batch */
    fxp_dist *dist = tool_dist(ctx);
    int64_t shard_off, shard_n;
    tool_shard(B, &shard_off, &shard_n);
    if (shard_n < 1) {
        tool_error("train", "%d ranks for a batch of %d graphs: every rank needs at least one "
                            "(use a larger batch or fewer ranks)", ranks, B);
        rc = EXIT_USAGE;
        goto done;
    }
    int xshape[3] = { (int)shard_n, nodes, train.shape[2] };
    if (fxp_tensor_alloc(ctx, &xb, 3, xshape) < 0 || fxp_tape_new(ctx, &tape) < 0 ||
        tool_eval_tape(ctx, &vtape) < 0 || !(perm = malloc((size_t)n_train * sizeof *perm))) {
        tool_error("train", "%s", perm ? fxp_last_error() : "out of memory");
        goto done;
    }

    if (!o.resume) {
        /* data-dependent initialisations (actnorm) see the first global batch in
         * one training forward without gradients, on every rank alike, so that
         * K ranks start where one process does */
        fxp_tensor xg = { 0 };
        const int gs[3] = { B, nodes, train.shape[2] };
        fxp_flow_io iio = { .training = 1, .adj = &adj };
        fxp_var *vx, *lp;
        tool_epoch_order(st.seed, 0, perm, n_train);
        int ok = fxp_tensor_alloc(ctx, &xg, 3, gs) == 0;
        if (ok) {
            fill_batch(&xg, &train, perm, 0, B, 0);
            fxp_tape_reset(vtape);
            ok = fxp_tape_input(vtape, &vx, &xg, 0) == 0 &&
                 fxp_model_log_prob(m.model, vtape, &iio, vx, &lp) == 0;
            fxp_tape_reset(vtape);
        }
        fxp_tensor_release(&xg);
        if (!ok) {
            tool_error("train", "initialisation: %s", fxp_last_error());
            goto done;
        }
    }
    if (dist && fxp_dist_bcast_params(dist, m.ps, 0) < 0) {
        tool_error("train", "rank %d: %s", rank, fxp_last_error());
        goto done;
    }
    tool_catch_interrupts();

    if (!o.quiet)
        fprintf(stderr, "flowexp train: %s on %s (%d graphs of %d nodes), %lld steps of %d graphs, "
                        "validation every %d, %d thread(s)%s\n",
                fxp_graph_model_kind_name(cfg.kind), o.data, n_train, nodes, total, B,
                st.eval_every, fxp_ctx_threads(ctx), o.resume ? ", resumed" : "");
    if (!o.quiet && ranks > 1)
        fprintf(stderr, "flowexp train: %d MPI ranks, %lld graphs of every batch each (rank 0)\n",
                ranks, (long long)shard_n);
    progress pr;
    progress_init(&pr, stderr, total, st.step, o.time_limit);
    const double t0 = progress_now(), prior_seconds = st.train_seconds;
    double ckpt_size = 0;
    long long cur_epoch = -1;
    fxp_flow_io io = { .training = 1, .adj = &adj };
    int stop_reason = 0; /* 1 time limit, 2 signal */
    double last_valid = NAN;  /* the latest validation, at step last_valid_step */
    long long last_valid_step = -1;
    while (st.step < total) {
        const long long epoch = st.step / per_epoch, k = st.step % per_epoch;
        if (epoch != cur_epoch) {
            tool_epoch_order(st.seed, epoch, perm, n_train);
            cur_epoch = epoch;
        }
        fill_batch(&xb, &train, perm, k, B, shard_off);
        double loss;
        if (train_step(tape, &m, opt, &io, &xb, dist, &loss) < 0) {
            tool_error("train", "step %lld (rank %d): %s", st.step + 1, rank, fxp_last_error());
            goto done;
        }
        if (o.time_limit > 0 && progress_now() - t0 >= o.time_limit) stop_reason = 1;
        if (tool_interrupted()) stop_reason = 2;
        if (dist) { /* the global batch's loss, and a stop every rank agrees on */
            double red[3] = { loss * (double)shard_n / B, stop_reason == 1, stop_reason == 2 };
            if (fxp_dist_sum(dist, red, 3) < 0) {
                tool_error("train", "step %lld (rank %d): %s", st.step + 1, rank, fxp_last_error());
                goto done;
            }
            loss = red[0];
            stop_reason = red[2] > 0 ? 2 : red[1] > 0 ? 1 : 0;
        }
        st.step++;
        st.window_loss += loss;
        st.window_steps++;
        st.train_seconds = prior_seconds + (progress_now() - t0);
        if (st.step % st.eval_every == 0 || st.step == total) {
            double v;
            const double tv = progress_now();
            if (tool_nll_per_node(vtape, &m, &valid, &adj, tool_eval_batch(nodes), &v) < 0) {
                tool_error("train", "validation at step %lld: %s", st.step, tool_message());
                goto done;
            }
            progress_add_valid(&pr, progress_now() - tv);
            last_valid = v;
            last_valid_step = st.step;
            st.train_seconds = prior_seconds + (progress_now() - t0);
            if (lead) {
                fprintf(log, "%lld,%.4f,%.6f,%.6f,%.6g,%.2f\n", st.step,
                        (double)st.step / per_epoch, st.window_loss / st.window_steps, v,
                        fxp_optim_lr(opt), st.train_seconds);
                if (fflush(log) != 0 || ferror(log)) {
                    tool_error("train", "cannot write %s: %s", files.log, strerror(errno));
                    goto done;
                }
            }
            if (lead) {
                char title[256];
                snprintf(title, sizeof title, "%s on %s, step %lld",
                         fxp_graph_model_kind_name(cfg.kind), st.dataset[0] ? st.dataset : "graphs",
                         st.step);
                train_draw_curves(files.log, o.out, title, st.entropy, "dataset entropy", o.quiet);
            }
            st.window_loss = 0;
            st.window_steps = 0;
            if (v < st.best_valid) {
                st.best_valid = v;
                st.best_step = st.step;
                if (lead && save_checked(ctx, files.best, o.out, &m, opt, &st, &ckpt_size) < 0) {
                    tool_error("train", "%s", tool_message());
                    goto done;
                }
            }
        }
        if (st.step % st.ckpt_every == 0 || st.step == total || stop_reason) {
            if (lead && save_checked(ctx, files.ckpt, o.out, &m, opt, &st, &ckpt_size) < 0) {
                tool_error("train", "%s", tool_message());
                goto done;
            }
            saved_ckpt = 1;
        }
        /* after the validation, so that a line shows its share */
        if (!o.quiet) progress_update(&pr, st.step, loss, pr.tty ? 0 : st.eval_every);
        if (stop_reason) break;
    }
    if (!o.quiet) progress_done(&pr);
    if (last_valid_step != st.step &&
        tool_nll_per_node(vtape, &m, &valid, &adj, tool_eval_batch(nodes), &last_valid) < 0)
        last_valid = NAN;
    /* every rank must hold the same bits; say so */
    if (dist && tool_dist_identical(dist, m.ps, "train", comm_seconds, progress_now() - t0) < 0)
        goto done;
    if (lead && stop_reason && !tool_file_exists(files.best)) {
        /* stopped before the first validation: a model to evaluate all the
         * same; the run's best stays unset, so the next validation replaces it */
        if (save_checked(ctx, files.best, o.out, &m, opt, &st, &ckpt_size) < 0) {
            tool_error("train", "%s", tool_message());
            goto done;
        }
    }
    const double run_seconds = progress_now() - t0;
    if (lead) {
        printf("trained %s: step %lld, %.1f s (validation %.0f%% of this invocation); valid NLL %.4f "
               "nats/node", fxp_graph_model_kind_name(cfg.kind), st.step, st.train_seconds,
               run_seconds > 0 ? 100 * pr.valid_seconds / run_seconds : 0.0, last_valid);
        if (st.best_step >= 0) printf(" (best %.4f at step %lld)", st.best_valid, st.best_step);
        if (isfinite(st.entropy)) printf("; dataset entropy %.4f", st.entropy);
        printf("\ncheckpoint: %s\n", files.ckpt);
    }
    if (stop_reason == 2) {
        if (lead) fprintf(stderr, "flowexp train: interrupted; resume with --resume\n");
        rc = EXIT_INTERRUPTED;
    } else {
        rc = 0;
    }
done:
    if (log) fclose(log);
    if (rc == 1 && !o.resume && !saved_ckpt && lead) {
        /* a fresh run that failed before its first checkpoint leaves nothing */
        if (created_log) unlink(files.log);
        if (created_best) unlink(files.best);
        if (created_curves) unlink(files.curves);
        if (created_dir) rmdir(o.out);
    }
    free(perm);
    fxp_tape_free(tape);
    fxp_tape_free(vtape);
    fxp_optim_free(opt);
    tool_model_free(&m);
    fxp_tensor_release(&train);
    fxp_tensor_release(&valid);
    fxp_tensor_release(&adj);
    fxp_tensor_release(&xb);
    fxp_ctx_free(ctx);
    if (rc != 0 && rc != EXIT_INTERRUPTED) tool_dist_fail(rc); /* end every rank */
    return rc;
}
