/* flowexp eval: per-node negative log-likelihood of a checkpoint on one
 * split of any HDF5 file holding float graphs [n, nodes, F]. */
#include <math.h>
#include <string.h>

#include "args.h"
#include "store.h"
#include "text.h"

/* Why the result may not mean what the user thinks: the data is not the
 * kind the model was trained on.  Warnings, not errors: a model of
 * permutation-invariant node densities can be evaluated on any graph size,
 * and doing so on purpose is a legitimate experiment. */
static int mismatch_warnings(const run_state *st, const char *dataset, int nodes,
                             char warn[2][256])
{
    int n = 0;
    if (st->dataset[0] && dataset[0] && strcmp(st->dataset, dataset) != 0)
        snprintf(warn[n++], 256, "the model was trained on %s but the data is %s: the NLL "
                 "measures a different distribution", st->dataset, dataset);
    if (st->nodes > 0 && nodes != st->nodes)
        snprintf(warn[n++], 256, "the model was trained on graphs of %d nodes; these have %d",
                 st->nodes, nodes);
    return n;
}

int cmd_eval(int argc, char **argv)
{
    const char *ckpt = NULL, *data = NULL, *split = "test";
    int json = 0, batch = 0, threads = 0;
    arg_spec specs[] = {
        { "checkpoint", ARG_STRING, &ckpt, "F.h5", "checkpoint written by flowexp train", 0, 0, NULL, 1, 0 },
        { "data", ARG_STRING, &data, "F.h5", "HDF5 file with a float dataset [n, nodes, F]", 0, 0, NULL, 1, 0 },
        { "split", ARG_STRING, &split, "NAME", "dataset name inside the file (default test)", 0, 0, NULL, 0, 0 },
        { "batch", ARG_INT, &batch, "B", "graphs per forward pass (default: 1024 nodes' worth; memory grows with it)", 1, 1e6, NULL, 0, 0 },
        { "threads", ARG_INT, &threads, "T", "threads (default: all cores, or OMP_NUM_THREADS)", 1, 256, NULL, 0, 0 },
        { "json", ARG_FLAG, &json, NULL, "print one JSON object instead of text", 0, 0, NULL, 0, 0 },
    };
    const int n_specs = (int)(sizeof specs / sizeof specs[0]);
    char err[512];
    int help;
    if (args_parse(specs, n_specs, argc, argv, NULL, 0, NULL, &help, err, sizeof err) < 0) {
        tool_error("eval", "%s", err);
        return EXIT_USAGE;
    }
    if (help) {
        args_print_help("flowexp eval --checkpoint F.h5 --data F.h5 [--split test] [--json]",
                        "Negative log-likelihood per node (nats) of the checkpoint's model on the\n"
                        "graphs of one split; the nodes of every graph are fully connected.\n"
                        "If the checkpoint records another dataset or node count than the data's,\n"
                        "a warning goes to stderr (and into the JSON's \"warnings\"); the NLL is\n"
                        "still computed.",
                        specs, n_specs);
        return 0;
    }
    int rc = 1;
    fxp_ctx *ctx = NULL;
    fxp_tape *tape = NULL;
    tool_model m;
    memset(&m, 0, sizeof m);
    fxp_tensor x = { 0 }, adj = { 0 };
    fxp_graph_model_config cfg;
    run_state st;
    if (fxp_ctx_new(&ctx) < 0 || (threads && fxp_ctx_set_threads(ctx, threads) < 0) ||
        store_read_config(ctx, ckpt, &cfg, &st, NULL) < 0 || tool_model_build(ctx, &cfg, 0, &m) < 0 ||
        store_load(ctx, ckpt, &m, NULL) < 0 || store_read_split(ctx, data, split, &x) < 0) {
        tool_error("eval", "%s", tool_message());
        goto done;
    }
    if (x.ndim != 3 || x.shape[2] != cfg.features) {
        tool_error("eval", "%s:%s has %d features per node; the model expects %d", data, split,
                   x.ndim == 3 ? x.shape[2] : 0, cfg.features);
        goto done;
    }
    double nll;
    if (tool_complete_graph(ctx, x.shape[1], &adj) < 0 || tool_eval_tape(ctx, &tape) < 0 ||
        tool_nll_per_node(tape, &m, &x, &adj, batch ? batch : tool_eval_batch(x.shape[1]), &nll) < 0) {
        tool_error("eval", "%s", tool_message());
        goto done;
    }
    char name[64], warn[2][256];
    double entropy;
    store_dataset_info(ctx, data, name, sizeof name, &entropy);
    const int n_warn = mismatch_warnings(&st, name, x.shape[1], warn);
    for (int i = 0; i < n_warn; i++) fprintf(stderr, "flowexp eval: warning: %s\n", warn[i]);
    if (json) {
        printf("{\"nll_nats_per_node\": %.9g, \"n_graphs\": %d, \"n_nodes\": %d, \"split\": ", nll,
               x.shape[0], x.shape[1]);
        json_string(stdout, split);
        printf(", \"model\": ");
        json_string(stdout, fxp_graph_model_kind_name(cfg.kind));
        printf(", \"step\": %lld, \"checkpoint\": ", st.step);
        json_string(stdout, ckpt);
        printf(", \"data\": ");
        json_string(stdout, data);
        if (name[0]) {
            printf(", \"dataset\": ");
            json_string(stdout, name);
        }
        if (isfinite(entropy)) printf(", \"entropy_per_node\": %.6f", entropy);
        if (st.dataset[0]) {
            printf(", \"model_dataset\": ");
            json_string(stdout, st.dataset);
        }
        if (st.nodes > 0) printf(", \"model_nodes\": %d", st.nodes);
        printf(", \"warnings\": [");
        for (int i = 0; i < n_warn; i++) {
            if (i) printf(", ");
            json_string(stdout, warn[i]);
        }
        printf("]}\n");
    } else {
        char c[256], d[256], s[128];
        printf("%s: %s on %s:%s (%d graphs of %d nodes): NLL %.4f nats/node",
               text_sanitize(c, sizeof c, ckpt), fxp_graph_model_kind_name(cfg.kind),
               text_sanitize(d, sizeof d, data), text_sanitize(s, sizeof s, split), x.shape[0],
               x.shape[1], nll);
        if (isfinite(entropy)) printf(" (dataset %s entropy %.4f)", name[0] ? name : "?", entropy);
        printf("\n");
    }
    rc = 0;
done:
    fxp_tape_free(tape);
    tool_model_free(&m);
    fxp_tensor_release(&x);
    fxp_tensor_release(&adj);
    fxp_ctx_free(ctx);
    return rc;
}
