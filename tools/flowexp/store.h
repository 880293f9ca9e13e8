/* The flowexp program's files: dataset splits, checkpoints (model,
 * optimizer, RNG and run state) and sample files, on top of the library's
 * HDF5 I/O (datasets.h, checkpoint.h). */
#ifndef FLOWEXP_TOOL_STORE_H
#define FLOWEXP_TOOL_STORE_H

#include "tool.h"

/* What a training run keeps beside the model and the optimizer. */
typedef struct run_state {
    unsigned long long seed;   /* everything random derives from it */
    long long step;            /* optimizer steps done */
    double best_valid;         /* best validation NLL per node so far (INFINITY: none) */
    long long best_step;
    double train_seconds;      /* wall time spent training so far */
    char dataset[64];          /* dataset name from the data file ("" if unknown) */
    double entropy;            /* its entropy per node (NAN if unknown) */
    int nodes;                 /* nodes per training graph */
} run_state;

/* One split [n, N, F] of an HDF5 file as an owning tensor. */
int store_read_split(fxp_ctx *ctx, const char *path, const char *split, fxp_tensor *out);

/* The dataset name and entropy per node stored in a file written by
 * `flowexp data` (name "" and entropy NAN for other files). */
void store_dataset_info(fxp_ctx *ctx, const char *path, char *name, size_t size, double *entropy);

/* Save model + optimizer (may be NULL) + run state + configuration to path
 * atomically. */
int store_save(fxp_ctx *ctx, const char *path, tool_model *m, fxp_optim *opt, const run_state *st);

/* Read the configuration and run state of a checkpoint (before building its
 * model). */
int store_read_config(fxp_ctx *ctx, const char *path, fxp_graph_model_config *cfg, run_state *st);

/* Load a checkpoint into a model built from its configuration (and the
 * optimizer, if non-NULL). */
int store_load(fxp_ctx *ctx, const char *path, tool_model *m, fxp_optim *opt);

/* Write graphs [n, N, F] as dataset "samples" with a few attributes,
 * atomically. */
int store_write_samples(fxp_ctx *ctx, const char *path, const fxp_tensor *x, const char *source,
                        double temperature);

#endif
