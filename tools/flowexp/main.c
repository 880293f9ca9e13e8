/* flowexp: the command-line program of libflowexp.
 *
 *   flowexp data mog ...     generate a MoG graph dataset (HDF5)
 *   flowexp train ...        train a graph flow
 *   flowexp eval ...         per-node NLL of a checkpoint on a dataset split
 *   flowexp sample ...       draw graphs from a checkpoint (HDF5, PNG)
 *   flowexp info ...         what a checkpoint holds
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "text.h"
#include "tool.h"

void tool_error(const char *cmd, const char *fmt, ...)
{
    char msg[2048], safe[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "flowexp %s: %s\n", cmd, text_sanitize(safe, sizeof safe, msg));
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

static void usage(FILE *out)
{
    fprintf(out,
            "usage: flowexp <command> [options]\n\n"
            "Normalizing flows with graph convolution exponentials (libflowexp %s).\n\n"
            "commands:\n"
            "  data mog   generate a MoG graph dataset into an HDF5 file\n"
            "  train      train a graph flow (coupling, gnf, gnf-gce) on a dataset\n"
            "  eval       per-node negative log-likelihood of a checkpoint on a split\n"
            "  sample     draw graphs from a checkpoint into HDF5 (and a PNG plot)\n"
            "  info       what a checkpoint holds: model, configuration, dataset, progress\n"
            "  help       this text; `flowexp <command> --help` for a command's options\n"
            "  version    print the library version\n\n"
            "Threads: every command uses all cores unless --threads T is given or\n"
            "OMP_NUM_THREADS is set (--threads wins). Results are bit-identical for a given\n"
            "thread count.\n",
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
        printf("flowexp %s\n", fxp_version());
        return 0;
    }
    if (!strcmp(cmd, "data")) return cmd_data(argc - 2, argv + 2);
    if (!strcmp(cmd, "train")) return cmd_train(argc - 2, argv + 2);
    if (!strcmp(cmd, "eval")) return cmd_eval(argc - 2, argv + 2);
    if (!strcmp(cmd, "sample")) return cmd_sample(argc - 2, argv + 2);
    if (!strcmp(cmd, "info")) return cmd_info(argc - 2, argv + 2);
    char safe[128];
    fprintf(stderr, "flowexp: unknown command \"%s\" (see flowexp help)\n",
            text_sanitize(safe, sizeof safe, cmd));
    return EXIT_USAGE;
}
