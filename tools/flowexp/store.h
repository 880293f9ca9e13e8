/* The flowexp program's files: dataset splits, checkpoints (model,
 * optimizer, RNG and run state) and sample files, on top of the library's
 * HDF5 I/O (datasets.h, checkpoint.h). */
#ifndef FLOWEXP_TOOL_STORE_H
#define FLOWEXP_TOOL_STORE_H

#include "tool.h"

/* What a training run keeps beside the model and the optimizer, saved as
 * "run.<field>" strings in the checkpoint's /config group.  The options that
 * define a run are its model configuration (with batch, lr and train_steps)
 * plus seed, eval_every, ckpt_every and data; `train --resume` takes them
 * from here.  threads is the count of the last invocation (results are
 * bit-identical only at the same count). */
typedef struct run_state {
    unsigned long long seed;   /* everything random derives from it */
    long long step;            /* optimizer steps done */
    double best_valid;         /* best validation NLL per node so far (INFINITY: none) */
    long long best_step;       /* -1: none */
    double train_seconds;      /* wall time spent training so far */
    char dataset[64];          /* dataset name from the data file ("" if unknown) */
    double entropy;            /* its entropy per node (NAN if unknown) */
    int nodes;                 /* nodes per training graph */
    int eval_every;            /* validate and log every eval_every steps */
    int ckpt_every;            /* write checkpoint.h5 every ckpt_every steps */
    double window_loss;        /* sum of the training losses since the last log row */
    long long window_steps;    /* ... over this many steps */
    int threads;               /* threads of the last invocation (0: unknown) */
    char data[4096];           /* the data file as given at the start ("" if unknown) */
} run_state;

/* A fresh run state: no steps, no best, unknowns as documented above. */
void run_state_init(run_state *st, unsigned long long seed);

/* Key flags of store_read_config's *seen: which run.* keys the file held. */
enum { RUN_SEEN_CORE = 1, RUN_SEEN_ALL = 2 };

/* Remove the temporaries "<name>.tmp.<pid>" in dir (writes atomic by
 * rename leave them when killed) whose process no longer exists; those of a
 * live process (a writer at work) are kept.  stem NULL: the files of a run
 * directory ("*.h5.tmp.PID" and "log.csv.tmp.PID"); otherwise only
 * "<stem>.tmp.PID".  Returns how many were removed. */
int store_remove_stale_temporaries(const char *dir, const char *stem);

/* One split [n, N, F] of an HDF5 file as an owning tensor. */
int store_read_split(fxp_ctx *ctx, const char *path, const char *split, fxp_tensor *out);

/* The dataset name and entropy per node stored in a file written by
 * `flowexp data` (name "" and entropy NAN for other files; a name that is
 * not a plain identifier, or an entropy that is not a finite number, counts
 * as absent). */
void store_dataset_info(fxp_ctx *ctx, const char *path, char *name, size_t size, double *entropy);

/* Save model + optimizer (may be NULL) + run state + configuration to path
 * atomically. */
int store_save(fxp_ctx *ctx, const char *path, tool_model *m, fxp_optim *opt, const run_state *st);

/* Read and validate the configuration and run state of a checkpoint (before
 * building its model).  Every value is checked (numbers fully parsed and in
 * range, names printable, fields consistent with each other); a bad one is
 * FXP_EFORMAT with a message naming the file, the key and the value.
 * *seen (may be NULL) receives RUN_SEEN_CORE if the file holds the run
 * state every flowexp version wrote, RUN_SEEN_ALL if it also holds the keys
 * added later (eval_every ...); absent keys keep run_state_init's values. */
int store_read_config(fxp_ctx *ctx, const char *path, fxp_graph_model_config *cfg, run_state *st,
                      int *seen);

/* Load a checkpoint into a model built from its configuration (and the
 * optimizer, if non-NULL). */
int store_load(fxp_ctx *ctx, const char *path, tool_model *m, fxp_optim *opt);

/* A samples file written in pieces: dataset "samples" [n, N, F] with the
 * attributes source_checkpoint, temperature, n_graphs, library_version
 * (see fxp_h5_array_writer_new: the disk space is reserved up front). */
int store_samples_begin(fxp_ctx *ctx, const char *path, int n, int nodes, int features,
                        const char *source, double temperature, fxp_h5_array_writer **w);

#endif
