/* flowexp sample: draw graphs from a checkpoint into an HDF5 file, and
 * optionally a PNG scatter plot of data beside model samples. */
#include <math.h>
#include <string.h>

#include "args.h"
#include "plot.h"
#include "store.h"

int cmd_sample(int argc, char **argv)
{
    const char *ckpt = NULL, *out = NULL, *png = NULL, *data = NULL;
    int n = 1000, nodes = 0, seed = 1, threads = 0;
    double temperature = 1.0;
    arg_spec specs[] = {
        { "checkpoint", ARG_STRING, &ckpt, "F.h5", "checkpoint written by flowexp train", 0, 0, NULL, 1, 0 },
        { "n", ARG_INT, &n, "N", "graphs to draw (default 1000)", 1, 1e7, NULL, 0, 0 },
        { "out", ARG_STRING, &out, "S.h5", "output file (dataset 'samples' [n, nodes, F])", 0, 0, NULL, 1, 0 },
        { "png", ARG_STRING, &png, "P.png", "also plot data (left) and model samples (right)", 0, 0, NULL, 0, 0 },
        { "data", ARG_STRING, &data, "F.h5", "data for the plot's left panel (its 'test' split)", 0, 0, NULL, 0, 0 },
        { "temperature", ARG_DOUBLE, &temperature, "T", "scale of the base noise (default 1)", 0, 100, NULL, 0, 0 },
        { "nodes", ARG_INT, &nodes, "N", "nodes per graph (default: as in training)", 1, 100000, NULL, 0, 0 },
        { "seed", ARG_INT, &seed, "S", "seed of the base noise (default 1)", 0, 2147483647, NULL, 0, 0 },
        { "threads", ARG_INT, &threads, "T", "threads (default: all cores)", 1, 256, NULL, 0, 0 },
    };
    const int n_specs = (int)(sizeof specs / sizeof specs[0]);
    char err[512];
    int help;
    if (args_parse(specs, n_specs, argc, argv, NULL, 0, NULL, &help, err, sizeof err) < 0) {
        tool_error("sample", "%s", err);
        return EXIT_USAGE;
    }
    if (help) {
        args_print_help("flowexp sample --checkpoint F.h5 --n N --out S.h5 [--png P.png] "
                        "[--temperature T]",
                        "Draw graphs x = f^-1(z), z ~ base with its scale times T, from a trained model.",
                        specs, n_specs);
        return 0;
    }
    int rc = 1;
    fxp_ctx *ctx = NULL;
    fxp_tape *t = NULL;
    tool_model m;
    memset(&m, 0, sizeof m);
    fxp_tensor adj = { 0 }, ref = { 0 };
    fxp_graph_model_config cfg;
    run_state st;
    if (fxp_ctx_new(&ctx) < 0 || (threads && fxp_ctx_set_threads(ctx, threads) < 0) ||
        store_read_config(ctx, ckpt, &cfg, &st) < 0 || tool_model_build(ctx, &cfg, 0, &m) < 0 ||
        store_load(ctx, ckpt, &m, NULL) < 0) {
        tool_error("sample", "%s", fxp_last_error());
        goto done;
    }
    if (!nodes) nodes = st.nodes;
    if (nodes < 1) {
        tool_error("sample", "the checkpoint does not record a node count; pass --nodes");
        rc = EXIT_USAGE;
        goto done;
    }
    fxp_var *x;
    fxp_rng rng;
    fxp_rng_seed(&rng, (unsigned long long)seed);
    int event[2] = { nodes, cfg.features };
    fxp_flow_io io = { .training = 0, .adj = &adj };
    if (tool_complete_graph(ctx, nodes, &adj) < 0 || fxp_tape_new(ctx, &t) < 0) {
        tool_error("sample", "%s", fxp_last_error());
        goto done;
    }
    fxp_tape_set_grad_enabled(t, 0);
    if (fxp_model_sample(m.model, t, &io, n, event, (float)temperature, &rng, &x) < 0) {
        tool_error("sample", "%s", fxp_last_error());
        goto done;
    }
    if (fxp_tensor_check_finite(ctx, &x->value, "samples") < 0) {
        tool_error("sample", "%s (the model is unstable at temperature %g)", fxp_last_error(),
                   temperature);
        goto done;
    }
    if (store_write_samples(ctx, out, &x->value, ckpt, temperature) < 0) {
        tool_error("sample", "%s", fxp_last_error());
        goto done;
    }
    if (png) {
        if (cfg.features != 2) {
            tool_error("sample", "--png plots 2-D node features; this model has %d", cfg.features);
            goto done;
        }
        plot_panel panels[2];
        int np = 0;
        if (data) {
            if (store_read_split(ctx, data, "test", &ref) < 0) {
                tool_error("sample", "%s", fxp_last_error());
                goto done;
            }
            int rows = ref.shape[0] < n ? ref.shape[0] : n;
            panels[np++] = (plot_panel){ "data", ref.data, (size_t)rows * ref.shape[1],
                                         { 30, 90, 200 } };
        }
        panels[np++] = (plot_panel){ "model", x->value.data, (size_t)n * nodes, { 210, 60, 40 } };
        if (plot_scatter_png(png, panels, np, 512, err, sizeof err) < 0) {
            tool_error("sample", "%s", err);
            goto done;
        }
    }
    printf("wrote %d graphs of %d nodes to %s%s%s\n", n, nodes, out, png ? " and " : "", png ? png : "");
    rc = 0;
done:
    fxp_tape_free(t);
    tool_model_free(&m);
    fxp_tensor_release(&adj);
    fxp_tensor_release(&ref);
    fxp_ctx_free(ctx);
    return rc;
}
