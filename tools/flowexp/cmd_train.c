/* flowexp train: train a graph flow on a dataset file, with checkpoints,
 * a CSV log, SIGINT/SIGTERM handling and exact resumption. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "args.h"
#include "progress.h"
#include "store.h"

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* The permutation of the training set used in epoch `epoch`: a pure function
 * of (seed, epoch), so a resumed run draws the same batches. */
static void epoch_order(unsigned long long seed, long long epoch, int *perm, int n)
{
    fxp_rng r;
    fxp_rng_seed(&r, seed * 0x9E3779B97F4A7C15ull + 0xD1B54A32D192ED03ull * (unsigned long long)(epoch + 1));
    for (int i = 0; i < n; i++) perm[i] = i;
    fxp_rng_shuffle_int(&r, perm, (size_t)n);
}

static int join(char *buf, size_t n, const char *dir, const char *file)
{
    return snprintf(buf, n, "%s/%s", dir, file) < (int)n ? 0 : -1;
}

static int file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

int cmd_train(int argc, char **argv)
{
    const char *model = NULL, *data = NULL, *out = NULL, *config = NULL;
    int seed = 0, threads = 0, steps = 0, batch = 0, resume = 0, quiet = 0, eval_every = 0,
        ckpt_every = 0;
    double lr = 0, time_limit = 0;
    arg_list sets = { { 0 }, 0 };
    arg_spec specs[] = {
        { "model", ARG_CHOICE, &model, NULL, "model kind", 0, 0, "coupling|gnf|gnf-gce", 0, 0 },
        { "data", ARG_STRING, &data, "F.h5", "dataset file (splits train, valid)", 0, 0, NULL, 1, 0 },
        { "out", ARG_STRING, &out, "DIR", "output directory (checkpoint.h5, best.h5, log.csv)", 0, 0, NULL, 1, 0 },
        { "config", ARG_STRING, &config, "FILE", "config file of key = value lines", 0, 0, NULL, 0, 0 },
        { "set", ARG_LIST, &sets, "KEY=VALUE", "override one configuration key (repeatable)", 0, 0, NULL, 0, 0 },
        { "seed", ARG_INT, &seed, "S", "seed of initialisation and batch order (default 0)", 0, 2147483647, NULL, 0, 0 },
        { "threads", ARG_INT, &threads, "T", "threads (default: all cores)", 1, 256, NULL, 0, 0 },
        { "steps", ARG_INT, &steps, "N", "optimizer steps (default: the config's train_steps)", 1, 1e9, NULL, 0, 0 },
        { "batch", ARG_INT, &batch, "B", "graphs per step (default: the config's batch)", 1, 1e6, NULL, 0, 0 },
        { "lr", ARG_DOUBLE, &lr, "LR", "learning rate (default: the config's lr)", 1e-12, 10, NULL, 0, 0 },
        { "time-limit", ARG_DOUBLE, &time_limit, "SEC", "stop training after SEC seconds of wall time", 0, 1e9, NULL, 0, 0 },
        { "eval-every", ARG_INT, &eval_every, "N", "validate (and log) every N steps (default: steps/20)", 1, 1e9, NULL, 0, 0 },
        { "ckpt-every", ARG_INT, &ckpt_every, "N", "write checkpoint.h5 every N steps (default: at each validation)", 1, 1e9, NULL, 0, 0 },
        { "resume", ARG_FLAG, &resume, NULL, "continue from DIR/checkpoint.h5 (its configuration is used)", 0, 0, NULL, 0, 0 },
        { "quiet", ARG_FLAG, &quiet, NULL, "no progress output", 0, 0, NULL, 0, 0 },
    };
    const int n_specs = (int)(sizeof specs / sizeof specs[0]);
    char err[512];
    int help;
    if (args_parse(specs, n_specs, argc, argv, NULL, 0, NULL, &help, err, sizeof err) < 0) {
        tool_error("train", "%s", err);
        return EXIT_USAGE;
    }
    if (help) {
        args_print_help("flowexp train --model KIND --data F.h5 --out DIR [options]",
                        "Train a graph flow on the 'train' split, validating on 'valid'.\n"
                        "Configuration: the kind's defaults, then --config, then --set, then the\n"
                        "explicit flags. Ctrl-C (SIGINT) or SIGTERM saves DIR/checkpoint.h5 and exits\n"
                        "with status 130; --resume continues exactly where it stopped (bit-identical\n"
                        "at the same thread count). Keys: flowexp train --model gnf --set help=1 lists them.",
                        specs, n_specs);
        printf("\nconfiguration keys:");
        for (int i = 0; i < fxp_graph_model_config_n_keys(); i++)
            printf("%s%s", i % 8 ? " " : "\n  ", fxp_graph_model_config_key(i));
        printf("\n");
        return 0;
    }
    if (!resume && !model) {
        tool_error("train", "--model is required (unless --resume)");
        return EXIT_USAGE;
    }
    if (resume && (model || config || sets.n || batch || lr > 0)) {
        tool_error("train", "--resume takes the configuration from the checkpoint; drop "
                            "--model/--config/--set/--batch/--lr");
        return EXIT_USAGE;
    }

    int rc = 1;
    fxp_ctx *ctx = NULL;
    fxp_optim *opt = NULL;
    fxp_tape *tape = NULL;
    tool_model m;
    memset(&m, 0, sizeof m);
    fxp_tensor train = { 0 }, valid = { 0 }, adj = { 0 }, xb = { 0 };
    int *perm = NULL;
    FILE *log = NULL;
    char ckpt_path[4096], best_path[4096], log_path[4096];
    if (join(ckpt_path, sizeof ckpt_path, out, "checkpoint.h5") < 0 ||
        join(best_path, sizeof best_path, out, "best.h5") < 0 ||
        join(log_path, sizeof log_path, out, "log.csv") < 0) {
        tool_error("train", "output path too long");
        return EXIT_USAGE;
    }
    if (fxp_ctx_new(&ctx) < 0 || (threads && fxp_ctx_set_threads(ctx, threads) < 0)) {
        tool_error("train", "%s", fxp_last_error());
        goto done;
    }

    /* configuration and run state */
    fxp_graph_model_config cfg;
    run_state st = { (unsigned long long)seed, 0, INFINITY, -1, 0, "", NAN, 0 };
    if (resume) {
        if (!file_exists(ckpt_path)) {
            tool_error("train", "--resume: no checkpoint at %s", ckpt_path);
            rc = EXIT_USAGE;
            goto done;
        }
        if (store_read_config(ctx, ckpt_path, &cfg, &st) < 0) {
            tool_error("train", "%s", fxp_last_error());
            goto done;
        }
    } else {
        fxp_graph_model_kind kind;
        fxp_graph_model_kind_parse(model, &kind);
        fxp_graph_model_config_default(&cfg, kind);
        if (config && tool_config_file(config, &cfg, err, sizeof err) < 0) {
            tool_error("train", "%s", err);
            rc = EXIT_USAGE;
            goto done;
        }
        for (int i = 0; i < sets.n; i++) {
            char key[128];
            const char *eq = strchr(sets.items[i], '=');
            snprintf(key, sizeof key, "%.*s", (int)(eq - sets.items[i]), sets.items[i]);
            if (fxp_graph_model_config_set(&cfg, key, eq + 1) < 0) {
                tool_error("train", "--set %s: %s", sets.items[i], fxp_last_error());
                rc = EXIT_USAGE;
                goto done;
            }
        }
        if (batch) cfg.batch = batch;
        if (lr > 0) cfg.lr = lr;
    }
    if (steps) cfg.train_steps = steps;
    if (fxp_graph_model_config_validate(ctx, &cfg) < 0) {
        tool_error("train", "%s", fxp_last_error());
        rc = EXIT_USAGE;
        goto done;
    }

    /* data */
    if (store_read_split(ctx, data, "train", &train) < 0 ||
        store_read_split(ctx, data, "valid", &valid) < 0) {
        tool_error("train", "%s", fxp_last_error());
        goto done;
    }
    if (train.shape[2] != cfg.features || valid.shape[1] != train.shape[1] ||
        valid.shape[2] != train.shape[2]) {
        tool_error("train", "%s: train [%d,%d,%d] / valid [%d,%d,%d] do not fit a model with %d "
                            "features", data, train.shape[0], train.shape[1], train.shape[2],
                   valid.shape[0], valid.shape[1], valid.shape[2], cfg.features);
        goto done;
    }
    if (!resume) store_dataset_info(ctx, data, st.dataset, sizeof st.dataset, &st.entropy);
    const int n_train = train.shape[0], nodes = train.shape[1];
    st.nodes = nodes;
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
    if (resume && store_load(ctx, ckpt_path, &m, opt) < 0) {
        tool_error("train", "%s", fxp_last_error());
        goto done;
    }
    if (mkdir(out, 0777) < 0 && errno != EEXIST) {
        tool_error("train", "cannot create %s: %s", out, strerror(errno));
        goto done;
    }
    const int fresh_log = !resume || !file_exists(log_path);
    if (!(log = fopen(log_path, resume ? "a" : "w"))) {
        tool_error("train", "cannot write %s: %s", log_path, strerror(errno));
        goto done;
    }
    if (fresh_log) fprintf(log, "step,epoch,train_nll,valid_nll,lr,seconds\n");

    int xshape[3] = { B, nodes, train.shape[2] };
    if (fxp_tensor_alloc(ctx, &xb, 3, xshape) < 0 || fxp_tape_new(ctx, &tape) < 0 ||
        !(perm = malloc((size_t)n_train * sizeof *perm))) {
        tool_error("train", "%s", fxp_last_error());
        goto done;
    }
    const long long total = cfg.train_steps, per_epoch = n_train / B;
    if (!eval_every) eval_every = (int)(total / 20 > 0 ? total / 20 : 1);
    if (!ckpt_every) ckpt_every = eval_every;
    const size_t row = (size_t)nodes * train.shape[2];

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    if (!quiet)
        fprintf(stderr, "flowexp train: %s on %s (%d graphs of %d nodes), %lld steps of %d graphs, "
                        "%d thread(s)%s\n",
                fxp_graph_model_kind_name(cfg.kind), data, n_train, nodes, total, B,
                fxp_ctx_threads(ctx), resume ? ", resumed" : "");
    progress pr;
    progress_init(&pr, stderr, total, st.step, time_limit);
    const double t0 = progress_now(), prior_seconds = st.train_seconds;
    long long cur_epoch = -1;
    double run_loss = 0;
    long long run_n = 0;
    fxp_flow_io io = { .training = 1, .adj = &adj };
    int stop_reason = 0; /* 1 time limit, 2 signal */
    while (st.step < total) {
        const long long epoch = st.step / per_epoch, k = st.step % per_epoch;
        if (epoch != cur_epoch) {
            epoch_order(st.seed, epoch, perm, n_train);
            cur_epoch = epoch;
        }
        for (int i = 0; i < B; i++)
            memcpy(xb.data + (size_t)i * row, train.data + (size_t)perm[k * B + i] * row,
                   row * sizeof(float));
        fxp_var *vx, *lp, *loss;
        fxp_tape_reset(tape);
        fxp_params_zero_grad(m.ps);
        /* loss = -mean_b log p(x_b) / N: nats per node */
        if (fxp_tape_input(tape, &vx, &xb, 0) < 0 || fxp_model_log_prob(m.model, tape, &io, vx, &lp) < 0 ||
            fxp_mean(tape, &loss, lp, FXP_AXES_ALL, 0) < 0 ||
            fxp_scale(tape, &loss, loss, -1.0f / nodes) < 0 || fxp_tape_backward(tape, loss, NULL) < 0 ||
            fxp_optim_step(opt, NULL) < 0) {
            tool_error("train", "step %lld: %s", st.step + 1, fxp_last_error());
            goto done;
        }
        st.step++;
        run_loss += loss->value.data[0];
        run_n++;
        st.train_seconds = prior_seconds + (progress_now() - t0);
        if (!quiet) progress_update(&pr, st.step, loss->value.data[0], pr.tty ? 0 : eval_every);
        if (time_limit > 0 && progress_now() - t0 >= time_limit) stop_reason = 1;
        if (interrupted) stop_reason = 2;
        const int last = st.step == total || stop_reason;
        if (st.step % eval_every == 0 || last) {
            double v;
            if (tool_nll_per_node(ctx, &m, &valid, &adj, 1000, &v) < 0) {
                tool_error("train", "validation at step %lld: %s", st.step,
                           fxp_last_error()[0] ? fxp_last_error() : "the NLL is not finite");
                goto done;
            }
            fprintf(log, "%lld,%.4f,%.6f,%.6f,%.6g,%.2f\n", st.step, (double)st.step / per_epoch,
                    run_loss / run_n, v, fxp_optim_lr(opt), st.train_seconds);
            fflush(log);
            run_loss = 0;
            run_n = 0;
            if (v < st.best_valid) {
                st.best_valid = v;
                st.best_step = st.step;
                if (store_save(ctx, best_path, &m, opt, &st) < 0) {
                    tool_error("train", "%s", fxp_last_error());
                    goto done;
                }
            }
        }
        if (st.step % ckpt_every == 0 || last) {
            if (store_save(ctx, ckpt_path, &m, opt, &st) < 0) {
                tool_error("train", "%s", fxp_last_error());
                goto done;
            }
        }
        if (stop_reason) break;
    }
    if (!quiet) progress_done(&pr);
    double final_valid;
    if (tool_nll_per_node(ctx, &m, &valid, &adj, 1000, &final_valid) < 0) final_valid = NAN;
    printf("trained %s: step %lld, %.1f s; valid NLL %.4f nats/node (best %.4f at step %lld)",
           fxp_graph_model_kind_name(cfg.kind), st.step, st.train_seconds, final_valid,
           st.best_valid, st.best_step);
    if (isfinite(st.entropy)) printf("; dataset entropy %.4f", st.entropy);
    printf("\ncheckpoint: %s\n", ckpt_path);
    if (stop_reason == 2) {
        fprintf(stderr, "flowexp train: interrupted; resume with --resume\n");
        rc = EXIT_INTERRUPTED;
    } else {
        rc = 0;
    }
done:
    if (log) fclose(log);
    free(perm);
    fxp_tape_free(tape);
    fxp_optim_free(opt);
    tool_model_free(&m);
    fxp_tensor_release(&train);
    fxp_tensor_release(&valid);
    fxp_tensor_release(&adj);
    fxp_tensor_release(&xb);
    fxp_ctx_free(ctx);
    return rc;
}
