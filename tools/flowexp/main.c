/* flowexp: the command-line program of libflowexp.
 *
 *   flowexp data mog ...     generate a MoG graph dataset (HDF5)
 *   flowexp train ...        train a graph flow
 *   flowexp eval ...         per-node NLL of a checkpoint on a dataset split
 *   flowexp sample ...       draw graphs from a checkpoint (HDF5, and a figure)
 *   flowexp plot ...         figures: learning curves, results beside the paper
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "plot.h"
#include "tool.h"

void tool_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "flowexp %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: flowexp <command> [options]\n\n"
            "Normalizing flows with graph convolution exponentials (libflowexp %s).\n\n"
            "commands:\n"
            "  data mog   generate a MoG graph dataset into an HDF5 file\n"
            "  train      train a graph flow (coupling, gnf, gnf-gce) on a dataset\n"
            "  eval       per-node negative log-likelihood of a checkpoint on a split\n"
            "  sample     draw graphs from a checkpoint into HDF5 (and a figure)\n"
            "  plot       figures: learning curves (log.csv), results beside the paper\n"
            "  help       this text; `flowexp <command> --help` for a command's options\n"
            "  version    print the library version\n",
            fxp_version());
}

int main(int argc, char **argv)
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
    if (!strcmp(cmd, "train")) return cmd_train(argc - 2, argv + 2);
    if (!strcmp(cmd, "eval")) return cmd_eval(argc - 2, argv + 2);
    if (!strcmp(cmd, "sample")) return cmd_sample(argc - 2, argv + 2);
    if (!strcmp(cmd, "plot")) return cmd_plot(argc - 2, argv + 2);
    fprintf(stderr, "flowexp: unknown command \"%s\" (see flowexp help)\n", cmd);
    return EXIT_USAGE;
}
