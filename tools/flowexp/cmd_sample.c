/* flowexp sample: draw graphs from a checkpoint into an HDF5 file, and
 * optionally a figure (PNG, SVG or PDF) of data beside model samples.
 *
 * Graphs are drawn in batches and appended to the output as they come
 * (fxp_h5_array_writer), so memory does not grow with --n; the disk space
 * of the whole output is reserved before the first batch.  The .h5 is
 * committed (renamed into place) only after the figure is written: a failing
 * run leaves neither file. */
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "plot.h"
#include "store.h"


/* The plot shows at most this many graphs of each kind. */
enum { PLOT_MAX_GRAPHS = 5000, MAX_NODES = 4096 };

int cmd_sample(int argc, char **argv)
{
    const char *ckpt = NULL, *out = NULL, *png = NULL, *data = NULL;
    const char *figure = NULL, *format = NULL, *figure_size = NULL;
    int color_nodes = 0, graphs = 0;
    int n = 1000, nodes = 0, seed = 1, threads = 0;
    double temperature = 1.0;
    arg_spec specs[] = {
        { "checkpoint", ARG_STRING, &ckpt, "F.h5", "checkpoint written by flowexp train", 0, 0, NULL, 1, 0 },
        { "n", ARG_INT, &n, "N", "graphs to draw (default 1000); drawn and written in batches", 1, 1e9, NULL, 0, 0 },
        { "out", ARG_STRING, &out, "S.h5", "output file (dataset 'samples' [n, nodes, F])", 0, 0, NULL, 1, 0 },
        { "figure", ARG_STRING, &figure, "F", "also draw data (left) beside model samples (right): .png, .svg or .pdf", 0, 0, NULL, 0, 0 },
        { "png", ARG_STRING, &png, "P.png", "the same as --figure P.png --format png", 0, 0, NULL, 0, 0 },
        { "format", ARG_CHOICE, &format, NULL, "figure format (default: from the extension)", 0, 0, "png|svg|pdf", 0, 0 },
        { "data", ARG_STRING, &data, "F.h5", "data for the figure's left panel (its 'test' split)", 0, 0, NULL, 0, 0 },
        { "color-nodes", ARG_FLAG, &color_nodes, NULL, "colour node i of every graph with colour i", 0, 0, NULL, 0, 0 },
        { "graphs", ARG_INT, &graphs, "K", "also draw K single graphs of each set, one panel each", 1, 32, NULL, 0, 0 },
        { "figure-size", ARG_STRING, &figure_size, "WxH", "figure size in pixels (points in a PDF)", 0, 0, NULL, 0, 0 },
        { "temperature", ARG_DOUBLE, &temperature, "T", "scale of the base noise (default 1)", 0, 100, NULL, 0, 0 },
        { "nodes", ARG_INT, &nodes, "N", "nodes per graph (default: as in training; at most 4096)", 1, MAX_NODES, NULL, 0, 0 },
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
        args_print_help("flowexp sample --checkpoint F.h5 --n N --out S.h5 [--figure F "
                        "[--data D.h5] [--color-nodes] [--graphs K]] [--temperature T]",
                        "Draw graphs x = f^-1(z), z ~ base with its scale times T, from a trained model.\n"
                        "Graphs are drawn and written in batches (memory does not grow with N); the\n"
                        "disk space of the whole output is reserved first, so an output that cannot\n"
                        "fit fails at once. The figure shows at most 5000 graphs of each kind. On any\n"
                        "failure no output is left (an existing S.h5 stays as it was); temporaries\n"
                        "S.h5.tmp.PID of killed sample runs (PID gone) are removed.",
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
    fxp_h5_array_writer *w = NULL;
    tool_model m;
    memset(&m, 0, sizeof m);
    fxp_tensor adj = { 0 }, ref = { 0 }, shown = { 0 };
    fxp_graph_model_config cfg;
    run_state st;
    if (fxp_ctx_new(&ctx) < 0 || (threads && fxp_ctx_set_threads(ctx, threads) < 0) ||
        store_read_config(ctx, ckpt, &cfg, &st, NULL) < 0 || tool_model_build(ctx, &cfg, 0, &m) < 0 ||
        store_load(ctx, ckpt, &m, NULL) < 0) {
        tool_error("sample", "%s", tool_message());
        goto done;
    }
    if (!nodes) nodes = st.nodes;
    if (nodes < 1 || nodes > MAX_NODES) {
        tool_error("sample", "the checkpoint does not record a usable node count (%d); pass --nodes",
                   nodes);
        rc = EXIT_USAGE;
        goto done;
    }
    /* everything the plot needs is checked before anything is drawn */
    if (figure && cfg.features < 2) {
        tool_error("sample", "the figure plots node features 0 and 1; this model has %d",
                   cfg.features);
        rc = EXIT_USAGE;
        goto done;
    }
    if (data) {
        if (store_read_split(ctx, data, "test", &ref) < 0) {
            tool_error("sample", "%s", tool_message());
            goto done;
        }
        if (ref.ndim != 3 || ref.shape[2] != cfg.features) {
            tool_error("sample", "--data %s: its test split has %d features per node; the model "
                       "has %d", data, ref.ndim == 3 ? ref.shape[2] : 0, cfg.features);
            goto done;
        }
    }
    /* a killed sample run leaves its temporary with the whole output's space
     * reserved: remove those of dead processes for this output */
    {
        char dir[4096];
        const char *slash = strrchr(out, '/');
        if (!slash) snprintf(dir, sizeof dir, ".");
        else snprintf(dir, sizeof dir, "%.*s", slash == out ? 1 : (int)(slash - out), out);
        store_remove_stale_temporaries(dir, slash ? slash + 1 : out);
    }
    const int B = n < tool_eval_batch(nodes) ? n : tool_eval_batch(nodes), keep = figure ? (n < PLOT_MAX_GRAPHS ? n : PLOT_MAX_GRAPHS) : 0;
    fxp_rng rng;
    fxp_rng_seed(&rng, (unsigned long long)seed);
    int event[2] = { nodes, cfg.features };
    fxp_flow_io io = { .training = 0, .adj = &adj };
    if (tool_complete_graph(ctx, nodes, &adj) < 0 || tool_eval_tape(ctx, &t) < 0 ||
        (keep && fxp_tensor_alloc(ctx, &shown, 3, (int[]){ keep, nodes, cfg.features }) < 0) ||
        store_samples_begin(ctx, out, n, nodes, cfg.features, ckpt, temperature, &w) < 0) {
        tool_error("sample", "%s", tool_message());
        goto done;
    }
    for (int done = 0; done < n;) {
        const int b = n - done < B ? n - done : B;
        fxp_var *x;
        fxp_tape_reset(t);
        if (fxp_model_sample(m.model, t, &io, b, event, (float)temperature, &rng, &x) < 0) {
            tool_error("sample", "%s", tool_message());
            goto done;
        }
        if (fxp_tensor_check_finite(ctx, &x->value, "samples") < 0) {
            tool_error("sample", "%s (the model is unstable at temperature %g)", fxp_last_error(),
                       temperature);
            goto done;
        }
        if (fxp_h5_array_writer_append(w, &x->value) < 0) {
            tool_error("sample", "%s", fxp_last_error());
            goto done;
        }
        if (done < keep) {
            const int k = keep - done < b ? keep - done : b;
            memcpy(shown.data + (size_t)done * nodes * cfg.features, x->value.data,
                   (size_t)k * nodes * cfg.features * sizeof(float));
        }
        done += b;
    }
    if (figure) {
        char ferr[1024];
        plot_graphs d = { 0 }, mg = { shown.data, keep, nodes, cfg.features, "model samples" };
        if (data) {
            const int rows = ref.shape[0] < keep ? ref.shape[0] : keep;
            d = (plot_graphs){ ref.data, rows, ref.shape[1], ref.shape[2], "data (test split)" };
        }
        const plot_graph_opts o = { fxp_graph_model_kind_name(cfg.kind), st.dataset, st.step,
                                    temperature, color_nodes, graphs, fig_w, fig_h };
        if (plot_graph_samples(figure, fmt, data ? &d : NULL, &mg, &o, ferr, sizeof ferr) < 0) {
            tool_error("sample", "%s", ferr);
            goto done;
        }
    }
    if (fxp_h5_array_writer_commit(w) < 0) {
        tool_error("sample", "%s", fxp_last_error());
        if (figure) unlink(figure); /* written by this run: no half of the output stays */
        goto done;
    }
    printf("wrote %d graphs of %d nodes to %s%s%s\n", n, nodes, out, figure ? " and " : "",
           figure ? figure : "");
    rc = 0;
done:
    fxp_h5_array_writer_free(w);
    fxp_tape_free(t);
    tool_model_free(&m);
    fxp_tensor_release(&adj);
    fxp_tensor_release(&ref);
    fxp_tensor_release(&shown);
    fxp_ctx_free(ctx);
    return rc;
}
