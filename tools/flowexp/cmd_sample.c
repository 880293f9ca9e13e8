/* flowexp sample: draw graphs from a checkpoint into an HDF5 file, and
 * optionally a PNG scatter plot of data beside model samples.
 *
 * Graphs are drawn in batches and appended to the output as they come
 * (fxp_h5_array_writer), so memory does not grow with --n; the disk space
 * of the whole output is reserved before the first batch.  The .h5 is
 * committed (renamed into place) only after the PNG is written: a failing
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
    int n = 1000, nodes = 0, seed = 1, threads = 0;
    double temperature = 1.0;
    arg_spec specs[] = {
        { "checkpoint", ARG_STRING, &ckpt, "F.h5", "checkpoint written by flowexp train", 0, 0, NULL, 1, 0 },
        { "n", ARG_INT, &n, "N", "graphs to draw (default 1000); drawn and written in batches", 1, 1e9, NULL, 0, 0 },
        { "out", ARG_STRING, &out, "S.h5", "output file (dataset 'samples' [n, nodes, F])", 0, 0, NULL, 1, 0 },
        { "png", ARG_STRING, &png, "P.png", "also plot data (left) and model samples (right)", 0, 0, NULL, 0, 0 },
        { "data", ARG_STRING, &data, "F.h5", "with --png: data for the left panel (its 'test' split)", 0, 0, NULL, 0, 0 },
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
        args_print_help("flowexp sample --checkpoint F.h5 --n N --out S.h5 [--png P.png] "
                        "[--temperature T]",
                        "Draw graphs x = f^-1(z), z ~ base with its scale times T, from a trained model.\n"
                        "Graphs are drawn and written in batches (memory does not grow with N); the\n"
                        "disk space of the whole output is reserved first, so an output that cannot\n"
                        "fit fails at once. The plot shows at most 5000 graphs of each kind. On any\n"
                        "failure no output is left (an existing S.h5 stays as it was); temporaries\n"
                        "S.h5.tmp.PID of killed sample runs (PID gone) are removed.",
                        specs, n_specs);
        return 0;
    }
    if (data && !png) {
        tool_error("sample", "--data is the plot's left panel; it needs --png");
        return EXIT_USAGE;
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
    if (png && cfg.features != 2) {
        tool_error("sample", "--png plots 2-D node features; this model has %d", cfg.features);
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
    const int B = n < tool_eval_batch(nodes) ? n : tool_eval_batch(nodes), keep = png ? (n < PLOT_MAX_GRAPHS ? n : PLOT_MAX_GRAPHS) : 0;
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
    if (png) {
        plot_panel panels[2];
        int np = 0;
        if (data) {
            int rows = ref.shape[0] < keep ? ref.shape[0] : keep;
            panels[np++] = (plot_panel){ "data", ref.data, (size_t)rows * ref.shape[1],
                                         { 30, 90, 200 } };
        }
        panels[np++] = (plot_panel){ "model", shown.data, (size_t)keep * nodes, { 210, 60, 40 } };
        if (plot_scatter_png(png, panels, np, 512, err, sizeof err) < 0) {
            tool_error("sample", "%s", err);
            goto done;
        }
    }
    if (fxp_h5_array_writer_commit(w) < 0) {
        tool_error("sample", "%s", fxp_last_error());
        if (png) unlink(png); /* written by this run: no half of the output stays */
        goto done;
    }
    printf("wrote %d graphs of %d nodes to %s%s%s\n", n, nodes, out, png ? " and " : "", png ? png : "");
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
