/* flowexp sample: draw graphs from a checkpoint into an HDF5 file, and
 * optionally a figure (PNG, SVG or PDF) of data beside model samples. */
#include <math.h>
#include <string.h>

#include "args.h"
#include "plot.h"
#include "store.h"

/* The figure of `sample`: data (the test split of `data`, as many graphs as
 * were sampled) beside the model samples x [n, nodes, F], titled with the
 * checkpoint's model, dataset and step. */
static int sample_figure(fxp_ctx *ctx, const char *path, plot_format fmt, const char *data,
                         const fxp_tensor *x, const fxp_graph_model_config *cfg,
                         const run_state *st, double temperature, int color_nodes, int graphs,
                         int width, int height, fxp_tensor *ref)
{
    char err[1024];
    plot_graphs d, m = { x->data, x->shape[0], x->shape[1], x->shape[2], "model samples" };
    if (data) {
        if (store_read_split(ctx, data, "test", ref) < 0) {
            tool_error("sample", "%s", fxp_last_error());
            return -1;
        }
        if (ref->ndim != 3 || ref->shape[2] != x->shape[2]) {
            tool_error("sample", "%s: the test split has %d features per node, the model %d", data,
                       ref->ndim == 3 ? ref->shape[2] : 0, x->shape[2]);
            return -1;
        }
        const int rows = ref->shape[0] < x->shape[0] ? ref->shape[0] : x->shape[0];
        d = (plot_graphs){ ref->data, rows, ref->shape[1], ref->shape[2], "data (test split)" };
    }
    const plot_graph_opts o = { fxp_graph_model_kind_name(cfg->kind), st->dataset, st->step,
                                temperature, color_nodes, graphs, width, height };
    if (plot_graph_samples(path, fmt, data ? &d : NULL, &m, &o, err, sizeof err) < 0) {
        tool_error("sample", "%s", err);
        return -1;
    }
    return 0;
}

int cmd_sample(int argc, char **argv)
{
    const char *ckpt = NULL, *out = NULL, *png = NULL, *data = NULL;
    const char *figure = NULL, *format = NULL, *figure_size = NULL;
    int color_nodes = 0, graphs = 0;
    int n = 1000, nodes = 0, seed = 1, threads = 0;
    double temperature = 1.0;
    arg_spec specs[] = {
        { "checkpoint", ARG_STRING, &ckpt, "F.h5", "checkpoint written by flowexp train", 0, 0, NULL, 1, 0 },
        { "n", ARG_INT, &n, "N", "graphs to draw (default 1000)", 1, 1e7, NULL, 0, 0 },
        { "out", ARG_STRING, &out, "S.h5", "output file (dataset 'samples' [n, nodes, F])", 0, 0, NULL, 1, 0 },
        { "figure", ARG_STRING, &figure, "F", "also draw data (left) beside model samples (right): .png, .svg or .pdf", 0, 0, NULL, 0, 0 },
        { "png", ARG_STRING, &png, "P.png", "the same as --figure P.png --format png", 0, 0, NULL, 0, 0 },
        { "format", ARG_CHOICE, &format, NULL, "figure format (default: from the extension)", 0, 0, "png|svg|pdf", 0, 0 },
        { "data", ARG_STRING, &data, "F.h5", "data for the figure's left panel (its 'test' split)", 0, 0, NULL, 0, 0 },
        { "color-nodes", ARG_FLAG, &color_nodes, NULL, "colour node i of every graph with colour i", 0, 0, NULL, 0, 0 },
        { "graphs", ARG_INT, &graphs, "K", "also draw K single graphs of each set, one panel each", 1, 32, NULL, 0, 0 },
        { "figure-size", ARG_STRING, &figure_size, "WxH", "figure size in pixels (points in a PDF)", 0, 0, NULL, 0, 0 },
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
        args_print_help("flowexp sample --checkpoint F.h5 --n N --out S.h5 [--figure F "
                        "[--data D.h5] [--color-nodes] [--graphs K]] [--temperature T]",
                        "Draw graphs x = f^-1(z), z ~ base with its scale times T, from a trained model.",
                        specs, n_specs);
        return 0;
    }
    /* the figure's options are checked before any work */
    plot_format fmt = PLOT_PNG;
    int fig_w = 0, fig_h = 0;
    if (png && figure) {
        tool_error("sample", "--png and --figure both name a figure; give one");
        return EXIT_USAGE;
    }
    if (png) {
        figure = png;
        if (format && strcmp(format, "png")) {
            tool_error("sample", "--png writes PNG, not %s (use --figure)", format);
            return EXIT_USAGE;
        }
        format = "png";
    }
    if (!figure && (data || color_nodes || graphs || format || figure_size)) {
        tool_error("sample", "--data, --color-nodes, --graphs, --format and --figure-size shape "
                             "the figure; name it with --figure");
        return EXIT_USAGE;
    }
    if (figure && (plot_format_pick(format, figure, &fmt, err, sizeof err) < 0 ||
                   (figure_size && plot_parse_size(figure_size, &fig_w, &fig_h, err, sizeof err) < 0))) {
        tool_error("sample", "%s", err);
        return EXIT_USAGE;
    }
    if (figure && plot_check("the sample figure", figure, err, sizeof err) < 0) {
        tool_error("sample", "%s", err);
        return 1;
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
    if (figure) {
        if (cfg.features < 2) {
            tool_error("sample", "the figure plots node features 0 and 1; this model has %d",
                       cfg.features);
            goto done;
        }
        if (sample_figure(ctx, figure, fmt, data, &x->value, &cfg, &st, temperature, color_nodes,
                          graphs, fig_w, fig_h, &ref) < 0)
            goto done;
    }
    printf("wrote %d graphs of %d nodes to %s%s%s\n", n, nodes, out, figure ? " and " : "",
           figure ? figure : "");
    rc = 0;
done:
    fxp_tape_free(t);
    tool_model_free(&m);
    fxp_tensor_release(&adj);
    fxp_tensor_release(&ref);
    fxp_ctx_free(ctx);
    return rc;
}
