/* flowexp bench: what a configuration costs before it goes to a cluster —
 * the median time of a training step (forward, backward, optimizer), the
 * time to sample a batch, the process's peak memory and the parameter
 * count, on random data of the model's shape.  Graph and image models. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "args.h"
#include "image.h"
#include "progress.h"
#include "store.h"

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static long minor_faults(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

static double peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0; /* KiB on Linux */
}


int cmd_bench(int argc, char **argv)
{
    const char *model = NULL;
    int batch = 0, steps = 5, threads = 0, json = 0, nodes = 9, seed = 0, n_sample = 0,
        sample_chunk = 0, save_memory = 0;
    arg_list sets = { { 0 }, 0 };
    arg_spec specs[] = {
        { "model", ARG_STRING, &model, "NAME", "coupling | gnf | gnf-gce | flow-1x1 | ... | flow-convexp | sylvester | ... | coupling-flow", 0, 0, NULL, 1, 0 },
        { "set", ARG_LIST, &sets, "KEY=VALUE", "override one configuration key (repeatable)", 0, 0, NULL, 0, 0 },
        { "batch", ARG_INT, &batch, "B", "examples per training step and samples drawn (default: 32 images, or the graph config's batch)", 1, 1e6, NULL, 0, 0 },
        { "sample", ARG_INT, &n_sample, "N", "examples drawn in the sampling measurement (default: --batch)", 1, 1e6, NULL, 0, 0 },
        { "sample-chunk", ARG_INT, &sample_chunk, "C", "image models: examples per sampling pass (default 10)", 1, 1e6, NULL, 0, 0 },
        { "steps", ARG_INT, &steps, "N", "timed training steps after one warm-up step (default 5)", 1, 1e6, NULL, 0, 0 },
        { "nodes", ARG_INT, &nodes, "N", "graph models: nodes per graph (default 9)", 2, 4096, NULL, 0, 0 },
        { "threads", ARG_INT, &threads, "T", "threads (default: all cores, or OMP_NUM_THREADS)", 1, 256, NULL, 0, 0 },
        { "seed", ARG_INT, &seed, "S", "seed (default 0)", 0, 2147483647, NULL, 0, 0 },
        { "save-memory", ARG_FLAG, &save_memory, NULL, "memory-saving backpropagation (fxp_tape_set_save_memory)", 0, 0, NULL, 0, 0 },
        { "json", ARG_FLAG, &json, NULL, "print one JSON object", 0, 0, NULL, 0, 0 },
    };
    const int n_specs = (int)(sizeof specs / sizeof specs[0]);
    char err[512];
    int help;
    if (args_parse(specs, n_specs, argc, argv, NULL, 0, NULL, &help, err, sizeof err) < 0) {
        tool_error("bench", "%s", err);
        return EXIT_USAGE;
    }
    if (help) {
        args_print_help("flowexp bench --model NAME [--set KEY=VALUE ...] [--batch B] [--steps N] [--json]",
                        "Time a configuration on random data of its shape: the median training step\n"
                        "(forward + backward + optimizer), sampling --batch examples (evaluation mode, no\n"
                        "gradients), the process's peak resident memory and the trainable parameters.\n"
                        "Image models default to the paper's Table-1 size (3x32x32 CIFAR10 images).",
                        specs, n_specs);
        return 0;
    }
    fxp_graph_model_kind gkind;
    const int is_graph = fxp_graph_model_kind_parse(model, &gkind) == 0;
    if (!is_graph && !image_is_model_name(model)) {
        tool_error("bench", "unknown model \"%s\" (coupling, gnf, gnf-gce, flow-1x1, flow-lu, "
                            "flow-householder, flow-emerging, flow-woodbury, flow-convexp, sylvester, "
                             "sylvester-nobasis, sylvester-nogen, resflow, resflow-half, "
                             "coupling-flow)", model);
        return EXIT_USAGE;
    }
    int rc = 1;
    fxp_ctx *ctx = NULL;
    fxp_tape *t = NULL;
    fxp_optim *opt = NULL;
    tool_model gm;
    memset(&gm, 0, sizeof gm);
    image_run im = { 0 };
    fxp_tensor x = { 0 }, adj = { 0 };
    double *times = malloc((size_t)steps * sizeof *times);
    double *faults = malloc((size_t)steps * sizeof *faults);
    if (!times || !faults || fxp_ctx_new(&ctx) < 0 || (threads && fxp_ctx_set_threads(ctx, threads) < 0) ||
        fxp_tape_new(ctx, &t) < 0) {
        tool_error("bench", "%s", fxp_last_error());
        goto done;
    }
    fxp_tape_set_save_memory(t, save_memory);
    fxp_rng rng;
    fxp_rng_seed(&rng, (uint64_t)seed + 3);
    fxp_params *ps;
    double D = 1;
    if (is_graph) {
        fxp_graph_model_config cfg;
        fxp_graph_model_config_default(&cfg, gkind);
        if (tool_apply_sets("bench", &sets, tool_graph_set, &cfg) < 0) {
            rc = EXIT_USAGE;
            goto done;
        }
        if (!batch) batch = cfg.batch;
        if (tool_model_build(ctx, &cfg, (unsigned long long)seed, &gm) < 0) {
            tool_error("bench", "%s", fxp_last_error());
            goto done;
        }
        ps = gm.ps;
        const int shape[3] = { batch, nodes, cfg.features };
        if (fxp_tensor_alloc(ctx, &x, 3, shape) < 0 || tool_complete_graph(ctx, nodes, &adj) < 0) {
            tool_error("bench", "%s", fxp_last_error());
            goto done;
        }
        fxp_rng_normal(&rng, x.data, (size_t)fxp_tensor_numel(&x), 0, 5);
        D = nodes;
    } else {
        fxp_image_model_config cfg;
        fxp_image_model_config_preset(&cfg, model);
        if (tool_apply_sets("bench", &sets, image_set_key, &cfg) < 0) {
            rc = EXIT_USAGE;
            goto done;
        }
        if (!batch) batch = 32;
        if (image_build(ctx, &cfg, (unsigned long long)seed, &im) < 0) {
            tool_error("bench", "%s", fxp_last_error());
            goto done;
        }
        ps = im.ps;
        const int shape[4] = { batch, cfg.channels, cfg.height, cfg.width };
        if (fxp_tensor_alloc(ctx, &x, 4, shape) < 0) {
            tool_error("bench", "%s", fxp_last_error());
            goto done;
        }
        for (int64_t i = 0; i < fxp_tensor_numel(&x); i++) x.data[i] = (float)fxp_rng_below(&rng, 256);
        D = (double)cfg.channels * cfg.height * cfg.width * 0.69314718055994530942;
    }
    fxp_optim_config oc;
    fxp_optim_config_default(&oc, is_graph ? FXP_OPTIM_ADAM : FXP_OPTIM_ADAMAX);
    if (fxp_optim_new(ctx, ps, &oc, &opt) < 0) {
        tool_error("bench", "%s", fxp_last_error());
        goto done;
    }
    /* training steps: one warm-up (data-dependent inits, arena growth), then timed */
    for (int s = -1; s < steps; s++) {
        const double t0 = progress_now();
        const long f0 = minor_faults();
        fxp_var *vx, *lp, *loss;
        fxp_tape_reset(t);
        fxp_tape_set_grad_enabled(t, 1);
        fxp_params_zero_grad(ps);
        int r = fxp_tape_input(t, &vx, &x, 0);
        if (r >= 0) {
            if (is_graph) {
                fxp_flow_io io = { .training = 1, .adj = &adj };
                r = fxp_model_log_prob(gm.model, t, &io, vx, &lp);
            } else {
                r = fxp_image_model_elbo(im.m, t, 1, vx, &rng, &lp, NULL);
            }
        }
        if (r >= 0) r = fxp_mean(t, &loss, lp, FXP_AXES_ALL, 0);
        if (r >= 0) r = fxp_scale(t, &loss, loss, (float)(-1.0 / D));
        if (r >= 0) r = fxp_tape_backward(t, loss, NULL);
        if (r >= 0) r = fxp_optim_step(opt, NULL);
        if (r < 0) {
            tool_error("bench", "training step: %s", fxp_last_error());
            goto done;
        }
        if (s >= 0) {
            times[s] = progress_now() - t0;
            faults[s] = (double)(minor_faults() - f0);
        }
    }
    qsort(times, (size_t)steps, sizeof *times, cmp_double);
    qsort(faults, (size_t)steps, sizeof *faults, cmp_double);
    const double step_s = steps % 2 ? times[steps / 2] : 0.5 * (times[steps / 2 - 1] + times[steps / 2]);
    const double step_faults =
        steps % 2 ? faults[steps / 2] : 0.5 * (faults[steps / 2 - 1] + faults[steps / 2]);
    const double train_rss = peak_rss_mb(), train_tape = (double)fxp_tape_bytes_peak(t);
    /* sampling: evaluation mode, no gradients */
    if (!n_sample) n_sample = batch;
    fxp_tape_reset(t);
    fxp_tape_set_grad_enabled(t, 0);
    /* in chunks of at most `chunk` examples with the tape reset in between,
     * as `flowexp sample` does, so memory stays bounded */
    const int chunk = is_graph ? n_sample : (sample_chunk ? sample_chunk : 10);
    fxp_var *smp;
    double t0 = progress_now();
    int r = FXP_OK;
    for (int done = 0; done < n_sample && r >= 0; done += chunk) {
        const int b = n_sample - done < chunk ? n_sample - done : chunk;
        fxp_tape_reset(t);
        if (is_graph) {
            fxp_flow_io io = { .adj = &adj };
            const int ev[2] = { nodes, x.shape[2] };
            r = fxp_model_sample(gm.model, t, &io, b, ev, 1.0f, &rng, &smp);
        } else {
            r = fxp_image_model_sample(im.m, t, b, 1.0f, &rng, &smp);
        }
    }
    const double sample_s = progress_now() - t0;
    if (r < 0) {
        tool_error("bench", "sampling: %s", fxp_last_error());
        goto done;
    }
    const size_t params = fxp_params_size(ps, FXP_PARAM_TRAINABLE);
    if (json) {
        printf("{\"model\": \"%s\", \"batch\": %d, \"sample_n\": %d, \"sample_chunk\": %d, "
               "\"threads\": %d, \"steps\": %d, \"save_memory\": %d, "
               "\"train_step_s\": %.6g, \"train_step_min_s\": %.6g, \"sample_s\": %.6g, "
               "\"peak_rss_mb\": %.1f, \"train_peak_rss_mb\": %.1f, \"params\": %zu, "
               "\"tape_peak_mb\": %.1f, \"train_tape_peak_mb\": %.1f, "
               "\"train_minor_faults\": %.0f}\n",
               model, batch, n_sample, chunk, fxp_ctx_threads(ctx), steps, save_memory, step_s,
               times[0], sample_s, peak_rss_mb(), train_rss, params,
               fxp_tape_bytes_peak(t) / 1048576.0, train_tape / 1048576.0, step_faults);
    } else {
        printf("%s: batch %d, %d thread(s): training step %.4f s (median of %d, min %.4f); "
               "sampling %d: %.4f s; peak memory %.1f MB (tape %.1f MB); %zu parameters\n",
               model, batch, fxp_ctx_threads(ctx), step_s, steps, times[0], n_sample, sample_s,
               peak_rss_mb(), fxp_tape_bytes_peak(t) / 1048576.0, params);
    }
    rc = 0;
done:
    free(times);
    free(faults);
    fxp_tensor_release(&x);
    fxp_tensor_release(&adj);
    fxp_optim_free(opt);
    tool_model_free(&gm);
    image_free(&im);
    fxp_tape_free(t);
    fxp_ctx_free(ctx);
    return rc;
}
