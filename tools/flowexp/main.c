/* flowexp: the command-line program of libflowexp.
 *
 *   flowexp data mog ...     generate a MoG graph dataset (HDF5)
 *   flowexp data cifar10 ... convert CIFAR10 / Fashion-MNIST into an HDF5
 *   flowexp data fashion-mnist ...  image dataset file
 *   flowexp train ...        train a graph flow
 *   flowexp eval ...         per-node NLL of a checkpoint on a dataset split
 *   flowexp sample ...       draw graphs from a checkpoint (HDF5, and a figure)
 *   flowexp plot ...         figures: learning curves, results beside the paper
 *   flowexp info ...         what a checkpoint holds
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "image.h"
#include "plot.h"
#include "text.h"
#include "tool.h"
#include "dist.h"

void tool_error(const char *cmd, const char *fmt, ...)
{
    char msg[2048], safe[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "flowexp %s: %s\n", cmd, text_sanitize(safe, sizeof safe, msg));
}

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

void tool_catch_interrupts(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int tool_interrupted(void)
{
    return interrupted;
}

static char tool_msg[1024];
static int tool_msg_set;

int tool_fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tool_msg, sizeof tool_msg, fmt, ap);
    va_end(ap);
    tool_msg_set = 1;
    return code;
}

const char *tool_message(void)
{
    if (tool_msg_set) {
        tool_msg_set = 0;
        return tool_msg;
    }
    return fxp_last_error();
}

/* The value of option `name` ("--name V" or "--name=V") in argv, or NULL. */
static const char *arg_value(int argc, char **argv, const char *name)
{
    const size_t n = strlen(name);
    for (int i = 0; i < argc; i++)
        if (!strncmp(argv[i], name, n)) {
            if (argv[i][n] == '=') return argv[i] + n + 1;
            if (argv[i][n] == '\0' && i + 1 < argc) return argv[i + 1];
        }
    return NULL;
}

static int has_flag(int argc, char **argv, const char *name)
{
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], name)) return 1;
    return 0;
}

/* Image models have their own subcommand bodies (image.c): chosen by the
 * model name, or by the checkpoint (eval, sample, train --resume). */
static int is_image_checkpoint(const char *path)
{
    fxp_ctx *ctx;
    if (!path || fxp_ctx_new(&ctx) < 0) return 0;
    const int r = image_checkpoint_is_image(ctx, path);
    fxp_ctx_free(ctx);
    return r;
}

static int image_train_job(int argc, char **argv)
{
    if (image_is_model_name(arg_value(argc, argv, "--model"))) return 1;
    const char *out = arg_value(argc, argv, "--out");
    char ck[4200];
    if (!has_flag(argc, argv, "--resume") || !out ||
        snprintf(ck, sizeof ck, "%s/checkpoint.h5", out) >= (int)sizeof ck)
        return 0;
    return is_image_checkpoint(ck);
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: flowexp <command> [options]\n\n"
            "Normalizing flows with graph convolution exponentials (libflowexp %s).\n\n"
            "commands:\n"
            "  data mog   generate a MoG graph dataset into an HDF5 file\n"
            "  data cifar10, data fashion-mnist\n"
            "             convert an image dataset's official files into an HDF5 file\n"
            "  train      train a graph flow (coupling, gnf, gnf-gce) or an image flow\n"
            "             (flow-1x1, flow-lu, flow-householder, flow-emerging, flow-woodbury,\n"
            "             flow-convexp; sylvester, sylvester-nobasis, sylvester-nogen, resflow,\n"
            "             resflow-half, coupling-flow) on a dataset\n"
            "  eval       NLL per node (graphs) or -ELBO / IW NLL in bits/dim (images)\n"
            "  sample     draw graphs or images from a checkpoint into HDF5 (and a figure)\n"
            "  verify     check every layer of a tiny model: inverse and brute-force logdet\n"
            "  bench      time a configuration: training step, sampling, peak memory\n"
            "  plot       figures: learning curves (log.csv), results beside the paper\n"
            "  info       what a checkpoint holds: model, configuration, dataset, progress\n"
            "  help       this text; `flowexp <command> --help` for a command's options\n"
            "  version    print the library version\n\n"
            "Threads: every command uses all cores unless --threads T is given or\n"
            "OMP_NUM_THREADS is set (--threads wins). Results are bit-identical for a given\n"
            "thread count.\n",
            fxp_version());
}

static int run(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("flowexp %s (figures: %s)\n", fxp_version(), plot_backend());
        return 0;
    }
    if (!strcmp(cmd, "data")) return cmd_data(argc - 2, argv + 2);
    int ac = argc - 2;
    char **av = argv + 2;
    if (!strcmp(cmd, "verify")) return cmd_verify(ac, av);
    if (!strcmp(cmd, "bench")) return cmd_bench(ac, av);
    if (!strcmp(cmd, "train"))
        return image_train_job(ac, av) ? cmd_train_image(ac, av) : cmd_train(ac, av);
    if (!strcmp(cmd, "eval"))
        return is_image_checkpoint(arg_value(ac, av, "--checkpoint")) ? cmd_eval_image(ac, av)
                                                                       : cmd_eval(ac, av);
    if (!strcmp(cmd, "sample"))
        return is_image_checkpoint(arg_value(ac, av, "--checkpoint")) ? cmd_sample_image(ac, av)
                                                                       : cmd_sample(ac, av);
    if (!strcmp(cmd, "plot")) return cmd_plot(ac, av);
    if (!strcmp(cmd, "info")) return cmd_info(ac, av);
    char safe[128];
    fprintf(stderr, "flowexp: unknown command \"%s\" (see flowexp help)\n",
            text_sanitize(safe, sizeof safe, cmd));
    return EXIT_USAGE;
}

int main(int argc, char **argv)
{
    if (tool_dist_init(&argc, &argv) < 0) return 1;
    /* under MPI only rank 0 prints results; every rank's errors reach stderr */
    if (tool_rank() > 0 && !freopen("/dev/null", "w", stdout)) return 1;
    const int rc = run(argc, argv);
    /* a rank that fails, wherever it failed, ends the whole job: its peers
     * may be waiting for it in a collective */
    if (rc != 0 && rc != EXIT_INTERRUPTED) tool_dist_fail(rc);
    tool_dist_finish();
    return rc;
}
