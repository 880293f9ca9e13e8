/* flowexp data mog: generate a MoG graph dataset (train/valid/test) with its
 * exact entropy per node into an HDF5 file. */
#include <string.h>

#include "args.h"
#include "tool.h"

int cmd_data(int argc, char **argv)
{
    if (argc < 1 || strncmp(argv[0], "-", 1) == 0) {
        if (argc >= 1 && (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h"))) {
            printf("usage: flowexp data mog --dataset {mog4,mog9,mog16,ring} --seed S --out F.h5 "
                   "[--n-train N --n-valid N --n-test N]\n\nsee flowexp data mog --help\n");
            return 0;
        }
        tool_error("data", "expected a generator name: mog");
        return EXIT_USAGE;
    }
    if (strcmp(argv[0], "mog") != 0) {
        tool_error("data", "unknown generator \"%s\" (available: mog)", argv[0]);
        return EXIT_USAGE;
    }
    const char *dataset = NULL, *out = NULL;
    int seed = 0, n_train = 20000, n_valid = 2000, n_test = 10000, n_entropy = 20000, threads = 0;
    arg_spec specs[] = {
        { "dataset", ARG_CHOICE, &dataset, NULL, "which mixture", 0, 0, "mog4|mog9|mog16|ring", 1, 0 },
        { "seed", ARG_INT, &seed, "S", "generator seed (default 0)", 0, 2147483647, NULL, 0, 0 },
        { "out", ARG_STRING, &out, "F.h5", "output file", 0, 0, NULL, 1, 0 },
        { "n-train", ARG_INT, &n_train, "N", "training graphs (default 20000)", 1, 1e8, NULL, 0, 0 },
        { "n-valid", ARG_INT, &n_valid, "N", "validation graphs (default 2000)", 1, 1e8, NULL, 0, 0 },
        { "n-test", ARG_INT, &n_test, "N", "test graphs (default 10000)", 1, 1e8, NULL, 0, 0 },
        { "entropy-samples", ARG_INT, &n_entropy, "N", "Monte-Carlo samples for the entropy (default 20000)", 2, 1e7, NULL, 0, 0 },
        { "threads", ARG_INT, &threads, "T", "threads (default: all cores, or OMP_NUM_THREADS)", 1, 256, NULL, 0, 0 },
    };
    const int n_specs = (int)(sizeof specs / sizeof specs[0]);
    char err[512];
    int help;
    if (args_parse(specs, n_specs, argc - 1, argv + 1, NULL, 0, NULL, &help, err, sizeof err) < 0) {
        tool_error("data mog", "%s", err);
        return EXIT_USAGE;
    }
    if (help) {
        args_print_help("flowexp data mog --dataset NAME --seed S --out F.h5 [options]",
                        "Mixture-of-Gaussians graphs (one node per mode, random node order, fully\n"
                        "connected): datasets train/valid/test float32 [n, nodes, 2] and root\n"
                        "attributes dataset, seed, sizes, entropy_per_node (exact, Monte Carlo).",
                        specs, n_specs);
        return 0;
    }
    fxp_mog_dataset_config cfg = { .seed = (uint64_t)seed, .n_train = n_train,
                                   .n_valid = n_valid, .n_test = n_test, .n_entropy = n_entropy };
    fxp_mog_parse(dataset, &cfg.kind);
    const int N = fxp_mog_nodes(cfg.kind);
    int rc = 1;
    fxp_ctx *ctx = NULL;
    double h, se;
    if (fxp_ctx_new(&ctx) < 0 || (threads && fxp_ctx_set_threads(ctx, threads) < 0) ||
        fxp_mog_dataset_write(ctx, out, &cfg, &h, &se) < 0)
        goto fail;
    printf("wrote %s: %s, %d nodes, train/valid/test %d/%d/%d; entropy %.4f +- %.4f nats/node\n",
           out, dataset, N, n_train, n_valid, n_test, h, se);
    rc = 0;
    goto done;
fail:
    tool_error("data mog", "%s", fxp_last_error());
done:
    fxp_ctx_free(ctx);
    return rc;
}
