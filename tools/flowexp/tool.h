/* Shared declarations of the flowexp command-line program. */
#ifndef FLOWEXP_TOOL_H
#define FLOWEXP_TOOL_H

#include <stdio.h>

#include "flowexp.h"
#include "flowexp/graphflow.h"

/* Exit codes: 0 ok, 1 runtime failure (I/O, numerics), 2 usage error,
 * 130 interrupted (after saving a checkpoint). */
enum { EXIT_USAGE = 2, EXIT_INTERRUPTED = 130 };

/* Print "flowexp <cmd>: <message>" to stderr. */
void tool_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

int cmd_data(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_sample(int argc, char **argv);
int cmd_plot(int argc, char **argv);

/* ---- models and data (model.c) ---------------------------------------------- */

/* A graph model with its parameter set and configuration. */
typedef struct tool_model {
    fxp_graph_model_config cfg;
    fxp_params *ps;
    fxp_model *model;
} tool_model;

/* Build cfg's model (parameters drawn from a stream seeded with `seed`). */
int tool_model_build(fxp_ctx *ctx, const fxp_graph_model_config *cfg, unsigned long long seed,
                     tool_model *m);
void tool_model_free(tool_model *m);

/* Apply "key = value" lines of a config file (# comments) to cfg. */
int tool_config_file(const char *path, fxp_graph_model_config *cfg, char *err, size_t errsz);

/* Fully connected adjacency [n, n] (zero diagonal) in an owning tensor. */
int tool_complete_graph(fxp_ctx *ctx, int n, fxp_tensor *adj);

/* Mean negative log-likelihood per node (nats) of graphs x [n, N, F] under the
 * model, in batches of `batch`, gradients off. */
int tool_nll_per_node(fxp_ctx *ctx, tool_model *m, const fxp_tensor *x, const fxp_tensor *adj,
                      int batch, double *nll);

#endif
