/* flowexp verify: build a model at a tiny size and check, for every layer on
 * the input it actually receives, the inverse round trip and the
 * log-determinant against the brute-force Jacobian (fxp_flow_check), then
 * the whole flows.  Graph and image models. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "image.h"
#include "store.h"

/* The verdict on one check; prints a line and returns 1 if it holds.  The
 * logdet tolerance is that of one layer times `layers`: differences through
 * a composition of float maps carry the rounding of every layer. */
static int judge(const char *what, const char *kind, const fxp_flow_check_result *r, int layers,
                 int quiet)
{
    /* finite differences in float: the logdet error grows with the
     * Jacobian's scale and the number of dimensions */
    const double tol_ld = layers * (2e-3 * fmax(1.0, fabs(r->logdet)) + 1e-4 * r->dims);
    const int ok = r->roundtrip_err < 1e-4 && r->logdet_sum_err < 1e-3 * fmax(1, fabs(r->logdet)) &&
                   r->logdet_err < tol_ld;
    if (!quiet || !ok)
        printf("%-4s %-34s %-16s D=%-5d round trip %.1e  logdet %12.5f  brute force %12.5f  "
               "|diff| %.1e\n",
               ok ? "ok" : "FAIL", what, kind, r->dims, r->roundtrip_err, r->logdet,
               r->logdet_brute, r->logdet_err);
    return ok;
}

/* Check every layer of seq on its input x (advancing x through it), then
 * the whole sequence.  Returns the number of failures, or -1 on errors. */
static float g_step; /* central-difference step (0: the library's default) */

/* fxp_flow_check; when ReLU kinks lie within both difference steps of the
 * input (kink_columns > 0 and the logdets disagree), check again with steps
 * 16 and 256 times smaller before calling it a failure. */
static int check_one(fxp_ctx *ctx, fxp_flow *f, const fxp_flow_io *io, const fxp_tensor *x,
                     fxp_flow_check_result *r)
{
    float h = g_step > 0 ? g_step : 1e-2f;
    int rc = fxp_flow_check(ctx, f, io, x, h, r);
    for (int k = 0; k < 2 && rc >= 0 && r->kink_columns > 0 &&
                    r->logdet_err > 2e-3 * fmax(1.0, fabs(r->logdet)) + 1e-4 * r->dims;
         k++) {
        h /= 16;
        rc = fxp_flow_check(ctx, f, io, x, h, r);
    }
    return rc;
}

static int check_seq(fxp_ctx *ctx, fxp_flow *seq, const fxp_flow_io *io, fxp_var *x, fxp_tape *t,
                     char *first_fail, size_t ff, int quiet)
{
    int fails = 0;
    fxp_flow_check_result r;
    fxp_var *h = x, *ld;
    for (int i = 0; i < fxp_flow_seq_length(seq); i++) {
        fxp_flow *f = fxp_flow_seq_at(seq, i);
        if (check_one(ctx, f, io, &h->value, &r) < 0) return -1;
        if (!judge(fxp_flow_name(f), fxp_flow_kind(f), &r, 1, quiet)) {
            if (!fails) snprintf(first_fail, ff, "%s", fxp_flow_name(f));
            fails++;
        }
        if (fxp_flow_forward(f, t, io, h, &h, &ld) < 0) return -1;
    }
    if (check_one(ctx, seq, io, &x->value, &r) < 0) return -1;
    if (!judge(fxp_flow_name(seq), "whole flow", &r, fxp_flow_seq_length(seq), quiet)) {
        if (!fails) snprintf(first_fail, ff, "%s", fxp_flow_name(seq));
        fails++;
    }
    return fails;
}

/* The residual blocks of seq (in exact mode) on the inputs they receive:
 * the mean of 200 evaluation estimates of example 0's log-determinant must
 * lie within 4 standard errors of the exact value (plus 1e-3 of it for
 * float rounding).  Returns the failures, -1 on errors. */
static int check_estimators(fxp_ctx *ctx, fxp_flow *seq, const fxp_flow_io *io, fxp_var *x,
                            fxp_tape *t, int seed, char *first_fail, size_t ff, int quiet)
{
    int fails = 0;
    fxp_var *h = x, *ld;
    fxp_rng rng;
    fxp_rng_seed(&rng, (uint64_t)seed + 77);
    for (int i = 0; i < fxp_flow_seq_length(seq); i++) {
        fxp_flow *f = fxp_flow_seq_at(seq, i);
        if (!strcmp(fxp_flow_kind(f), "resblock")) {
            fxp_resblock_logdet_stats st;
            if (fxp_resblock_logdet_check(ctx, f, &h->value, 200, &rng, &st) < 0) return -1;
            const int ok = fabs(st.mean - st.exact) <= 4 * st.stderr_mean + 1e-3 * fabs(st.exact);
            if (!quiet || !ok)
                printf("%-4s %-34s %-16s estimate %.5f +- %.5f (200 draws)  exact %.5f\n",
                       ok ? "ok" : "FAIL", fxp_flow_name(f), "logdet estimator", st.mean,
                       st.stderr_mean, st.exact);
            if (!ok && !fails++) snprintf(first_fail, ff, "%s", fxp_flow_name(f));
        }
        if (fxp_flow_forward(f, t, io, h, &h, &ld) < 0) return -1;
    }
    return fails;
}

static void perturb(fxp_params *ps, unsigned long long seed, double std)
{
    const size_t n = fxp_params_size(ps, FXP_PARAM_TRAINABLE);
    float *w = fxp_params_data(ps, FXP_PARAM_TRAINABLE), *e = malloc(n * sizeof *e);
    if (!e) return;
    fxp_rng r;
    fxp_rng_seed(&r, seed + 0x9e37);
    fxp_rng_normal(&r, e, n, 0, (float)std);
    for (size_t i = 0; i < n; i++) w[i] += e[i];
    free(e);
}


int cmd_verify(int argc, char **argv)
{
    const char *model = NULL;
    int seed = 0, quiet = 0, nodes = 5, threads = 1;
    double std = 0.05, step = 0;
    arg_list sets = { { 0 }, 0 };
    arg_spec specs[] = {
        { "model", ARG_STRING, &model, "NAME", "coupling | gnf | gnf-gce | flow-1x1 | ... | flow-convexp | sylvester | ... | coupling-flow", 0, 0, NULL, 1, 0 },
        { "set", ARG_LIST, &sets, "KEY=VALUE", "override one configuration key of the tiny model (repeatable)", 0, 0, NULL, 0, 0 },
        { "seed", ARG_INT, &seed, "S", "seed of the parameters and inputs (default 0)", 0, 2147483647, NULL, 0, 0 },
        { "perturb", ARG_DOUBLE, &std, "STD", "N(0, STD^2) added to every parameter so that no layer is the identity (default 0.05)", 0, 10, NULL, 0, 0 },
        { "step", ARG_DOUBLE, &step, "H", "central-difference step relative to the input's scale (default 1e-2)", 1e-6, 1, NULL, 0, 0 },
        { "nodes", ARG_INT, &nodes, "N", "graph models: nodes per graph (default 5)", 2, 64, NULL, 0, 0 },
        { "threads", ARG_INT, &threads, "T", "threads (default 1)", 1, 256, NULL, 0, 0 },
        { "quiet", ARG_FLAG, &quiet, NULL, "print failures only", 0, 0, NULL, 0, 0 },
    };
    const int n_specs = (int)(sizeof specs / sizeof specs[0]);
    char err[512];
    int help;
    if (args_parse(specs, n_specs, argc, argv, NULL, 0, NULL, &help, err, sizeof err) < 0) {
        tool_error("verify", "%s", err);
        return EXIT_USAGE;
    }
    if (help) {
        args_print_help("flowexp verify --model NAME [--set KEY=VALUE ...]",
                        "Build the model at a tiny size and check every layer on its actual input: the\n"
                        "inverse round trip, cancelling logdets, and the logdet against the brute-force\n"
                        "Jacobian (central differences); then the whole flows.  Exit 0 if all hold, 1\n"
                        "naming the first failing layer.",
                        specs, n_specs);
        return 0;
    }
    g_step = (float)step;
    fxp_graph_model_kind gkind;
    const int is_graph = fxp_graph_model_kind_parse(model, &gkind) == 0;
    if (!is_graph && !image_is_model_name(model)) {
        tool_error("verify", "unknown model \"%s\" (coupling, gnf, gnf-gce, flow-1x1, flow-lu, "
                             "flow-householder, flow-emerging, flow-woodbury, flow-convexp, sylvester, "
                             "sylvester-nobasis, sylvester-nogen, resflow, resflow-half, "
                             "coupling-flow)", model);
        return EXIT_USAGE;
    }
    int rc = 1, fails = 0;
    char first[FXP_PARAM_NAME_MAX] = "";
    fxp_ctx *ctx = NULL;
    fxp_tape *t = NULL;
    tool_model gm;
    memset(&gm, 0, sizeof gm);
    image_run im = { 0 };
    fxp_tensor x = { 0 }, adj = { 0 }, a = { 0 };
    if (fxp_ctx_new(&ctx) < 0 || fxp_ctx_set_threads(ctx, threads) < 0 || fxp_tape_new(ctx, &t) < 0) {
        tool_error("verify", "%s", fxp_last_error());
        goto done;
    }
    fxp_tape_set_grad_enabled(t, 0);
    fxp_rng rng;
    fxp_rng_seed(&rng, (uint64_t)seed + 1);
    if (is_graph) {
        fxp_graph_model_config cfg;
        fxp_graph_model_config_default(&cfg, gkind);
        cfg.couplings = 2;
        cfg.hidden = 8;
        cfg.heads = 2;
        if (tool_apply_sets("verify", &sets, tool_graph_set, &cfg) < 0) {
            rc = EXIT_USAGE;
            goto done;
        }
        if (tool_model_build(ctx, &cfg, (unsigned long long)seed, &gm) < 0) {
            tool_error("verify", "%s", fxp_last_error());
            goto done;
        }
        perturb(gm.ps, (unsigned long long)seed, std);
        const int shape[3] = { 2, nodes, cfg.features };
        fxp_var *vx;
        if (fxp_tensor_alloc(ctx, &x, 3, shape) < 0 || tool_complete_graph(ctx, nodes, &adj) < 0 ||
            fxp_tape_input(t, &vx, &x, 0) < 0) {
            tool_error("verify", "%s", fxp_last_error());
            goto done;
        }
        fxp_rng_normal(&rng, x.data, (size_t)fxp_tensor_numel(&x), 0, 3);
        fxp_flow_io io = { .adj = &adj };
        printf("verify %s: %d layers, graphs of %d nodes x %d features\n", model,
               fxp_flow_seq_length(fxp_model_flow(gm.model)), nodes, cfg.features);
        fails = check_seq(ctx, fxp_model_flow(gm.model), &io, vx, t, first, sizeof first, quiet);
    } else {
        fxp_image_model_config cfg;
        fxp_image_model_config_preset(&cfg, model);
        cfg.channels = 3;
        cfg.height = cfg.width = 8;
        cfg.subflows = 2;
        cfg.depth = 2;
        cfg.growth = 6;
        cfg.intermediate = 8;
        cfg.deq_subflows = 2;
        cfg.context_channels = 4;
        cfg.context_depth = 1;
        cfg.context_growth = 4;
        cfg.hidden = 12; /* a multiple of every level's channels (12, 24, 48) for 3 channels */
        if (tool_apply_sets("verify", &sets, image_set_key, &cfg) < 0) {
            rc = EXIT_USAGE;
            goto done;
        }
        if (image_build(ctx, &cfg, (unsigned long long)seed, &im) < 0) {
            tool_error("verify", "%s", fxp_last_error());
            goto done;
        }
        perturb(im.ps, (unsigned long long)seed, std);
        const int shape[4] = { 2, cfg.channels, cfg.height, cfg.width };
        fxp_var *vx;
        if (fxp_tensor_alloc(ctx, &x, 4, shape) < 0 || fxp_tape_input(t, &vx, &x, 0) < 0) {
            tool_error("verify", "%s", fxp_last_error());
            goto done;
        }
        /* continuous v = pixels + u */
        fxp_rng_uniform(&rng, x.data, (size_t)fxp_tensor_numel(&x));
        for (int64_t i = 0; i < fxp_tensor_numel(&x); i++) x.data[i] *= 256.0f;
        fxp_flow *pv = fxp_model_flow(fxp_image_model_prior(im.m));
        printf("verify %s: prior flow of %d layers on %dx%dx%d images\n", model,
               fxp_flow_seq_length(pv), cfg.channels, cfg.height, cfg.width);
        fxp_flow_io io = { .training = 0 };
        if (cfg.kind != FXP_IMAGE_FLOW) {
            /* the Tables 2-3 models see raw pixel values: one training forward
             * runs the actnorms' data-dependent initialisation first */
            fxp_var *lp;
            fxp_flow_io tio = { .training = 1 };
            if (fxp_model_log_prob(fxp_image_model_prior(im.m), t, &tio, vx, &lp) < 0) {
                tool_error("verify", "%s", fxp_last_error());
                goto done;
            }
        }
        /* residual blocks: exact log-determinants for the brute-force checks,
         * then their estimator against the exact value */
        const int stochastic = !fxp_image_model_logdet_is_exact(im.m);
        if (stochastic)
            for (int i = 0; i < fxp_flow_seq_length(pv); i++)
                fxp_resblock_set_logdet(fxp_flow_seq_at(pv, i), FXP_RESBLOCK_EXACT);
        fxp_ctx_clear_error(ctx);
        fails = check_seq(ctx, pv, &io, vx, t, first, sizeof first, quiet);
        if (fails >= 0 && stochastic) {
            const int f2 = check_estimators(ctx, pv, &io, vx, t, seed, first, sizeof first, quiet);
            fails = f2 < 0 ? -1 : fails + f2;
        }
        fxp_flow *q = fxp_image_model_dequantizer(im.m);
        if (fails >= 0 && q) {
            fxp_var *px, *cx, *va;
            for (int64_t i = 0; i < fxp_tensor_numel(&x); i++) x.data[i] = floorf(x.data[i]);
            if (fxp_tape_input(t, &px, &x, 0) < 0 || fxp_image_model_context(im.m, t, px, &cx) < 0 ||
                fxp_tensor_alloc(ctx, &a, 4, shape) < 0 || fxp_tape_input(t, &va, &a, 0) < 0) {
                tool_error("verify", "%s", fxp_last_error());
                goto done;
            }
            fxp_rng_normal(&rng, a.data, (size_t)fxp_tensor_numel(&a), 0, 1);
            printf("verify %s: dequantizer flow of %d layers with a %d-channel context\n", model,
                   fxp_flow_seq_length(q), cfg.context_channels);
            fxp_flow_io qio = { .context = cx };
            char qfirst[FXP_PARAM_NAME_MAX] = "";
            const int qf = check_seq(ctx, q, &qio, va, t, qfirst, sizeof qfirst, quiet);
            if (qf < 0) fails = -1;
            else {
                if (!fails && qf) snprintf(first, sizeof first, "%s", qfirst);
                fails += qf;
            }
        }
    }
    if (fails < 0) {
        tool_error("verify", "%s", fxp_last_error());
        goto done;
    }
    if (fails) {
        printf("verify %s: %d check(s) failed; first failing layer: %s\n", model, fails, first);
        rc = 1;
    } else {
        printf("verify %s: all layers hold\n", model);
        rc = 0;
    }
done:
    fxp_tensor_release(&x);
    fxp_tensor_release(&adj);
    fxp_tensor_release(&a);
    tool_model_free(&gm);
    image_free(&im);
    fxp_tape_free(t);
    fxp_ctx_free(ctx);
    return rc;
}
