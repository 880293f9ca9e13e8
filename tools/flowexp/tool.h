/* Shared declarations of the flowexp command-line program. */
#ifndef FLOWEXP_TOOL_H
#define FLOWEXP_TOOL_H

#include <stdio.h>

#include "flowexp.h"
#include "flowexp/graphflow.h"

/* Exit codes: 0 ok, 1 runtime failure (I/O, numerics), 2 usage error,
 * 130 interrupted (after saving a checkpoint). */
enum { EXIT_USAGE = 2, EXIT_INTERRUPTED = 130 };

/* Print "flowexp <cmd>: <message>" to stderr, with control characters and
 * invalid UTF-8 escaped (messages quote file contents). */
void tool_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Errors found by the program itself (not the library): tool_fail records
 * the message and returns code; tool_message() returns that message once
 * (then forgets it), or the library's fxp_last_error() if there is none. */
int tool_fail(int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
const char *tool_message(void);

/* From now on SIGINT and SIGTERM only set a flag, which tool_interrupted()
 * reads: training loops stop at the next step and save a checkpoint. */
void tool_catch_interrupts(void);
int tool_interrupted(void);

int cmd_data(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_sample(int argc, char **argv);
int cmd_plot(int argc, char **argv);

/* DIR/curves.png from the run's log.csv with an optional reference line
 * (NAN: none); a figure that cannot be drawn is a warning on stderr (unless
 * quiet), never a failure of the run; nothing without cairo (curves.c). */
void train_draw_curves(const char *log_path, const char *dir, const char *title, double reference,
                       const char *reference_label, int quiet);
int cmd_info(int argc, char **argv);

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

/* Apply "key = value" lines (# starts a comment, blank lines are skipped) to
 * cfg.  The text must be a regular file of at most 1 MiB (tool_config_file)
 * without NUL bytes, each line at most 4095 bytes, each key set once; a bad
 * line is an error naming file and line.  tool_config_parse takes the text
 * itself (len bytes, no terminator needed; `name` is used in messages).
 * Return 0, or -1 with a message in err. */
int tool_config_file(const char *path, fxp_graph_model_config *cfg, char *err, size_t errsz);
int tool_config_parse(const char *text, size_t len, const char *name, fxp_graph_model_config *cfg,
                      char *err, size_t errsz);
/* The same for any configuration: its keys (n_keys, key(i)) and a setter. */
typedef struct tool_keys {
    int (*set)(void *cfg, const char *key, const char *value);
    int (*n_keys)(void);
    const char *(*key)(int i);
    void *cfg;
} tool_keys;
int tool_config_file_keys(const char *path, const tool_keys *k, char *err, size_t errsz);
int tool_config_parse_keys(const char *text, size_t len, const char *name, const tool_keys *k,
                           char *err, size_t errsz);

/* The permutation of the training set used in epoch `epoch`: a pure function
 * of (seed, epoch), so a resumed run (and every MPI rank) draws the same
 * batches. */
void tool_epoch_order(unsigned long long seed, long long epoch, int *perm, int n);
/* "dir/file" into buf (-1 if it does not fit); stat() succeeds. */
int tool_join(char *buf, size_t n, const char *dir, const char *file);
int tool_file_exists(const char *path);
/* Apply --set KEY=VALUE items through set(cfg, ...); a bad one is reported
 * as `cmd`'s error (-1). */
struct arg_list;
int tool_apply_sets(const char *cmd, const struct arg_list *sets,
                    int (*set)(void *cfg, const char *key, const char *value), void *cfg);
int tool_graph_set(void *cfg, const char *key, const char *value);
/* Under MPI, at the end of training: check that every rank holds the same
 * parameters (a message and -1 otherwise) and report the reduction's share. */
int tool_dist_identical(fxp_dist *dist, fxp_params *ps, const char *cmd, double comm_seconds,
                        double run_seconds);

/* FNV-1a (64 bit) of the parameter values, trainable then state: equal
 * hashes mean bit-identical models (cmd_info.c). */
unsigned long long tool_params_hash(const fxp_params *ps);

/* Fully connected adjacency [n, n] (zero diagonal) in an owning tensor. */
int tool_complete_graph(fxp_ctx *ctx, int n, fxp_tensor *adj);

/* Mean negative log-likelihood per node (nats) of graphs x [n, N, F] under the
 * model, in batches of `batch` on tape t (gradients off; reset before and
 * after, so one tape serves every call and its memory is reused). */
int tool_nll_per_node(fxp_tape *t, tool_model *m, const fxp_tensor *x, const fxp_tensor *adj,
                      int batch, double *nll);

/* Graphs per forward pass in evaluation and sampling for graphs of `nodes`
 * nodes: about 1024 nodes per pass.  The tape keeps every activation of a
 * pass (about 45 kB per node for the default gnf-gce model), and larger
 * passes are no faster. */
int tool_eval_batch(int nodes);

/* A tape for evaluation (gradients off). */
int tool_eval_tape(fxp_ctx *ctx, fxp_tape **t);

#endif
