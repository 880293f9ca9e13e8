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
        { "threads", ARG_INT, &threads, "T", "threads (default: all cores)", 1, 256, NULL, 0, 0 },
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
    fxp_mog_kind kind;
    fxp_mog_parse(dataset, &kind);
    const int N = fxp_mog_nodes(kind);
    int rc = 1;
    fxp_ctx *ctx = NULL;
    fxp_tensor split[3] = { { 0 } };
    const int sizes[3] = { n_train, n_valid, n_test };
    if (fxp_ctx_new(&ctx) < 0 || (threads && fxp_ctx_set_threads(ctx, threads) < 0)) goto fail;
    /* three independent streams derived from the seed */
    fxp_rng root, streams[3];
    fxp_rng_seed(&root, (unsigned long long)seed);
    for (int k = 0; k < 3; k++) streams[k] = fxp_rng_split(&root);
    for (int k = 0; k < 3; k++) {
        int shape[3] = { sizes[k], N, 2 };
        if (fxp_tensor_alloc(ctx, &split[k], 3, shape) < 0 ||
            fxp_mog_sample(ctx, kind, &streams[k], sizes[k], split[k].data) < 0)
            goto fail;
    }
    double h, se;
    if (fxp_mog_entropy(ctx, kind, (unsigned long long)seed + 0x5eedull, n_entropy, &h, &se) < 0)
        goto fail;
    const char *names[3] = { "train", "valid", "test" };
    const fxp_tensor *arrays[3] = { &split[0], &split[1], &split[2] };
    const fxp_attr attrs[] = {
        { "dataset", FXP_ATTR_STRING, dataset, 0, 0 },
        { "seed", FXP_ATTR_INT, NULL, 0, seed },
        { "n_nodes", FXP_ATTR_INT, NULL, 0, N },
        { "n_train", FXP_ATTR_INT, NULL, 0, n_train },
        { "n_valid", FXP_ATTR_INT, NULL, 0, n_valid },
        { "n_test", FXP_ATTR_INT, NULL, 0, n_test },
        { "entropy_per_node", FXP_ATTR_DOUBLE, NULL, h, 0 },
        { "entropy_stderr", FXP_ATTR_DOUBLE, NULL, se, 0 },
        { "entropy_samples", FXP_ATTR_INT, NULL, 0, n_entropy },
        { "entropy_separated", FXP_ATTR_DOUBLE, NULL, fxp_mog_entropy_separated(kind), 0 },
        { "marginal_bound", FXP_ATTR_DOUBLE, NULL, fxp_mog_marginal_bound(kind), 0 },
        { "spacing", FXP_ATTR_DOUBLE, NULL, 10.0, 0 },
        { "noise_std", FXP_ATTR_DOUBLE, NULL, 1.0, 0 },
        { "library_version", FXP_ATTR_STRING, fxp_version(), 0, 0 },
    };
    if (fxp_h5_write_arrays(ctx, out, 3, names, arrays, (int)(sizeof attrs / sizeof attrs[0]),
                            attrs) < 0)
        goto fail;
    printf("wrote %s: %s, %d nodes, train/valid/test %d/%d/%d; entropy %.4f +- %.4f nats/node\n",
           out, dataset, N, n_train, n_valid, n_test, h, se);
    rc = 0;
    goto done;
fail:
    tool_error("data mog", "%s", fxp_last_error());
done:
    for (int k = 0; k < 3; k++) fxp_tensor_release(&split[k]);
    fxp_ctx_free(ctx);
    return rc;
}
