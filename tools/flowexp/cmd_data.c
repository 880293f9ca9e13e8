/* flowexp data: build dataset files.
 *   data mog             generate a MoG graph dataset (train/valid/test) with
 *                        its exact entropy per node into an HDF5 file
 *   data cifar10         convert the CIFAR10 binary version into an HDF5
 *                        image dataset file
 *   data fashion-mnist   convert the Fashion-MNIST IDX files likewise */
#include <string.h>

#include "args.h"
#include "tool.h"

static int cmd_data_mog(int argc, char **argv);
static int cmd_data_images(int argc, char **argv, int cifar);

int cmd_data(int argc, char **argv)
{
    if (argc < 1 || strncmp(argv[0], "-", 1) == 0) {
        if (argc >= 1 && (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h"))) {
            printf("usage: flowexp data mog --dataset {mog4,mog9,mog16,ring} --seed S --out F.h5 "
                   "[--n-train N --n-valid N --n-test N]\n"
                   "       flowexp data cifar10 --from DIR --out F.h5 [--valid N]\n"
                   "       flowexp data fashion-mnist [--from DIR] --out F.h5 [--valid N]\n\n"
                   "see flowexp data <name> --help\n");
            return 0;
        }
        tool_error("data", "expected a dataset name: mog, cifar10 or fashion-mnist");
        return EXIT_USAGE;
    }
    if (!strcmp(argv[0], "mog")) return cmd_data_mog(argc, argv);
    if (!strcmp(argv[0], "cifar10")) return cmd_data_images(argc, argv, 1);
    if (!strcmp(argv[0], "fashion-mnist")) return cmd_data_images(argc, argv, 0);
    tool_error("data", "unknown dataset \"%s\" (available: mog, cifar10, fashion-mnist)", argv[0]);
    return EXIT_USAGE;
}

static int cmd_data_mog(int argc, char **argv)
{
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

/* data cifar10 / data fashion-mnist: read the official files, split off the
 * validation images, write the HDF5 image dataset file. */
static int cmd_data_images(int argc, char **argv, int cifar)
{
    const char *name = cifar ? "cifar10" : "fashion-mnist";
    const char *from = cifar ? NULL : FXP_FASHION_MNIST_DIR, *out = NULL;
    int n_valid = 10000;
    arg_spec specs[] = {
        { "from", ARG_STRING, &from, "DIR",
          cifar ? "directory with data_batch_1.bin .. data_batch_5.bin and test_batch.bin"
                : "directory with the four IDX files, plain or .gz (default " FXP_FASHION_MNIST_DIR ")",
          0, 0, NULL, cifar, 0 },
        { "out", ARG_STRING, &out, "F.h5", "output file", 0, 0, NULL, 1, 0 },
        { "valid", ARG_INT, &n_valid, "N", "validation images: the last N of the training files "
          "(default 10000)", 1, 2147483647, NULL, 0, 0 },
    };
    const int n_specs = (int)(sizeof specs / sizeof specs[0]);
    char err[512], cmd[64];
    int help;
    snprintf(cmd, sizeof cmd, "data %s", name);
    if (args_parse(specs, n_specs, argc - 1, argv + 1, NULL, 0, NULL, &help, err, sizeof err) < 0) {
        tool_error(cmd, "%s", err);
        return EXIT_USAGE;
    }
    if (help) {
        if (cifar)
            args_print_help("flowexp data cifar10 --from DIR --out F.h5 [--valid N]",
                            "Convert the CIFAR-10 binary version (data_batch_1..5.bin, test_batch.bin)\n"
                            "into uint8 datasets train [T-N,3,32,32] (the first training records in\n"
                            "file order), valid [N,3,32,32] (the last N), test [10000,3,32,32] and\n"
                            "train_labels, valid_labels, test_labels; T = 50000 officially.",
                            specs, n_specs);
        else
            args_print_help("flowexp data fashion-mnist [--from DIR] --out F.h5 [--valid N]",
                            "Convert Fashion-MNIST (train-images-idx3-ubyte, train-labels-idx1-ubyte,\n"
                            "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, plain or .gz) into uint8\n"
                            "datasets train [60000-N,1,28,28], valid [N,1,28,28] (the last N of the\n"
                            "training file), test [10000,1,28,28] and their _labels.",
                            specs, n_specs);
        return 0;
    }
    fxp_images train = { 0 }, valid = { 0 }, test = { 0 };
    fxp_ctx *ctx = NULL;
    int rc = 1;
    if (fxp_ctx_new(&ctx) < 0) goto fail;
    if ((cifar ? fxp_cifar10_load(ctx, from, n_valid, &train, &valid, &test)
               : fxp_fashion_mnist_load(ctx, from, n_valid, &train, &valid, &test)) < 0 ||
        fxp_image_dataset_write(ctx, out, name, from, &train, &valid, &test) < 0)
        goto fail;
    printf("wrote %s: %s from %s, train/valid/test %d/%d/%d images of [%d,%d,%d] uint8 with "
           "labels\n", out, name, from, train.n, valid.n, test.n, train.channels, train.height,
           train.width);
    rc = 0;
    goto done;
fail:
    tool_error(cmd, "%s", fxp_last_error());
done:
    fxp_images_free(&test);
    fxp_images_free(&valid);
    fxp_images_free(&train);
    fxp_ctx_free(ctx);
    return rc;
}
