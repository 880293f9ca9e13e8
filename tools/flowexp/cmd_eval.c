/* flowexp eval: per-node negative log-likelihood of a checkpoint on one
 * split of any HDF5 file holding float graphs [n, nodes, F]. */
#include <math.h>
#include <string.h>

#include "args.h"
#include "store.h"

int cmd_eval(int argc, char **argv)
{
    const char *ckpt = NULL, *data = NULL, *split = "test";
    int json = 0, batch = 1000, threads = 0;
    arg_spec specs[] = {
        { "checkpoint", ARG_STRING, &ckpt, "F.h5", "checkpoint written by flowexp train", 0, 0, NULL, 1, 0 },
        { "data", ARG_STRING, &data, "F.h5", "HDF5 file with a float dataset [n, nodes, F]", 0, 0, NULL, 1, 0 },
        { "split", ARG_STRING, &split, "NAME", "dataset name inside the file (default test)", 0, 0, NULL, 0, 0 },
        { "batch", ARG_INT, &batch, "B", "graphs per forward pass (default 1000)", 1, 1e7, NULL, 0, 0 },
        { "threads", ARG_INT, &threads, "T", "threads (default: all cores)", 1, 256, NULL, 0, 0 },
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
                        "graphs of one split; the nodes of every graph are fully connected.",
                        specs, n_specs);
        return 0;
    }
    int rc = 1;
    fxp_ctx *ctx = NULL;
    tool_model m;
    memset(&m, 0, sizeof m);
    fxp_tensor x = { 0 }, adj = { 0 };
    fxp_graph_model_config cfg;
    run_state st;
    if (fxp_ctx_new(&ctx) < 0 || (threads && fxp_ctx_set_threads(ctx, threads) < 0) ||
        store_read_config(ctx, ckpt, &cfg, &st) < 0 || tool_model_build(ctx, &cfg, 0, &m) < 0 ||
        store_load(ctx, ckpt, &m, NULL) < 0 || store_read_split(ctx, data, split, &x) < 0) {
        tool_error("eval", "%s", fxp_last_error());
        goto done;
    }
    if (x.shape[2] != cfg.features) {
        tool_error("eval", "%s:%s has %d features per node; the model expects %d", data, split,
                   x.shape[2], cfg.features);
        goto done;
    }
    double nll;
    if (tool_complete_graph(ctx, x.shape[1], &adj) < 0) {
        tool_error("eval", "%s", fxp_last_error());
        goto done;
    }
    if (tool_nll_per_node(ctx, &m, &x, &adj, batch, &nll) < 0) {
        tool_error("eval", "%s", fxp_last_error()[0] ? fxp_last_error() : "the NLL is not finite");
        goto done;
    }
    char name[64];
    double entropy;
    store_dataset_info(ctx, data, name, sizeof name, &entropy);
    if (json) {
        printf("{\"nll_nats_per_node\": %.9g, \"n_graphs\": %d, \"n_nodes\": %d, \"split\": \"%s\", "
               "\"model\": \"%s\", \"step\": %lld",
               nll, x.shape[0], x.shape[1], split, fxp_graph_model_kind_name(cfg.kind), st.step);
        if (isfinite(entropy)) printf(", \"dataset\": \"%s\", \"entropy_per_node\": %.6f", name, entropy);
        printf("}\n");
    } else {
        printf("%s: %s on %s:%s (%d graphs of %d nodes): NLL %.4f nats/node", ckpt,
               fxp_graph_model_kind_name(cfg.kind), data, split, x.shape[0], x.shape[1], nll);
        if (isfinite(entropy)) printf(" (dataset %s entropy %.4f)", name, entropy);
        printf("\n");
    }
    rc = 0;
done:
    tool_model_free(&m);
    fxp_tensor_release(&x);
    fxp_tensor_release(&adj);
    fxp_ctx_free(ctx);
    return rc;
}
