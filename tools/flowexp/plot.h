/* Figures of the flowexp tools: graph samples, learning curves, image sample
 * grids and results beside the paper's numbers, drawn with cairo as PNG, SVG
 * or PDF.
 *
 * Every figure has a title, axes with ticks and tick labels, axis labels and
 * a legend where it shows more than one series.  Sizes are in figure units:
 * pixels in a PNG and in an SVG, points (1/72 in) in a PDF.  Files are
 * written atomically: the figure goes to a temporary file in the target's
 * directory, which is renamed onto the target only once complete; on failure
 * nothing is left behind.
 *
 * cairo is optional at build time (meson option `cairo`).  Without it these
 * functions still exist and fail with a message saying which figure cannot be
 * drawn and why; plot_available() tells in advance.  The library never
 * depends on cairo, only the tools do.
 *
 * Every function returns 0, or -1 with a message in err (size errsz).  None
 * is thread-safe with respect to a shared err buffer; otherwise they keep no
 * state. */
#ifndef FLOWEXP_TOOL_PLOT_H
#define FLOWEXP_TOOL_PLOT_H

#include <stddef.h>
#include <stdint.h>

typedef enum plot_format { PLOT_PNG, PLOT_SVG, PLOT_PDF } plot_format;

/* ---- availability, formats, sizes (plot.c: never needs cairo) ------------ */

/* 1 if this build draws figures (cairo was found), 0 if not. */
int plot_available(void);

/* "cairo 1.16.0" or "none (built without cairo)". */
const char *plot_backend(void);

/* 0 if the figure `what` (e.g. "the learning curves") can be drawn into
 * path; -1 with "cannot draw <what> (<path>): ... built without cairo ..."
 * otherwise.  Lets a command fail before it does any work. */
int plot_check(const char *what, const char *path, char *err, size_t errsz);

/* The format of a figure file: `name` ("png", "svg", "pdf"; NULL: infer it
 * from path's extension, case-insensitive).  A name that contradicts a known
 * extension of path, or no name and an unknown extension, is an error. */
int plot_format_pick(const char *name, const char *path, plot_format *fmt, char *err, size_t errsz);
const char *plot_format_name(plot_format fmt);

/* "WxH" (e.g. "900x500") into *w, *h, each in [64, 10000]. */
int plot_parse_size(const char *s, int *w, int *h, char *err, size_t errsz);

/* Nice axis ticks: multiples of a step of 1, 2 or 5 times a power of ten
 * inside [lo, hi], about `target` of them (at most max).  Returns the count
 * (0 if the range is empty or not finite) and the step in *step. */
int plot_ticks(double lo, double hi, int target, double *ticks, int max, double *step);

/* Tick label of v for ticks `step` apart: just enough decimals to tell the
 * ticks apart, "-0" printed as "0". */
void plot_tick_label(double v, double step, char *buf, size_t size);

/* ---- graph samples ------------------------------------------------------- */

/* A set of graphs [n, nodes, features] (row-major, features >= 2): nodes are
 * drawn at (feature 0, feature 1). */
typedef struct plot_graphs {
    const float *x;
    int n, nodes, features;
    const char *label; /* panel title, e.g. "data (test split)" */
} plot_graphs;

typedef struct plot_graph_opts {
    const char *model;   /* model name for the title (NULL: none) */
    const char *dataset; /* dataset name for the title (NULL or "": unknown) */
    long long step;      /* checkpoint step for the title (< 0: unknown) */
    double temperature;  /* of the model samples, in the subtitle */
    int color_nodes;     /* colour node i of every graph with colour i */
    int graphs;          /* K > 0: add K single graphs per set as small multiples */
    int width, height;   /* figure size (0: default, see plot_graph_samples) */
} plot_graph_opts;

/* Data beside model samples on one square axis range (data may be NULL: the
 * figure then says it shows model samples only).  Points are translucent so
 * that density shows; with color_nodes every graph's node i has colour i
 * (legend: node indices), else data and model get one colour each.  With
 * graphs = K, a second part shows the first K graphs of each set in small
 * panels on the same range, nodes coloured by index.  Default width 900
 * with data, 560 without; the default height follows from the width. */
int plot_graph_samples(const char *path, plot_format fmt, const plot_graphs *data,
                       const plot_graphs *model, const plot_graph_opts *o, char *err, size_t errsz);

/* ---- image sample grids -------------------------------------------------- */

/* Images pix [n, c, h, w] (uint8, c = 1 grey or 3 RGB) tiled in `rows` rows
 * of ceil(n / rows) images, each scaled by the integer s = ceil(64 / max(h, w))
 * (nearest neighbour, so pixels stay visible), 4 apart.  row_labels (NULL, or
 * `rows` strings, e.g. "T = 0.7") are drawn left of the rows; title (may be
 * NULL) above, e.g. "glow on cifar10, step 2000, temperature 0.7".  Figure
 * size: width 24 + cols (w s + 4) - 4 (+ label column), height 24 + rows
 * (h s + 4) - 4 (+ 30 for a title), widened to fit the title. */
int plot_image_grid(const char *path, plot_format fmt, const uint8_t *pix, int n, int c, int h,
                    int w, int rows, const char *const *row_labels, const char *title, char *err,
                    size_t errsz);

/* ---- learning curves ----------------------------------------------------- */

typedef struct plot_curve_opts {
    const char *title;           /* NULL: "Learning curves: <log path>" */
    double reference;            /* horizontal reference line (NAN: none) */
    const char *reference_label; /* its legend text, e.g. "dataset entropy" */
    const char *ylabel;          /* NULL: from the columns */
    double ylo, yhi;             /* ends of the y range (NAN: from the data) */
    int width, height;           /* 0: 760 x 480 */
} plot_curve_opts;

void plot_curve_opts_default(plot_curve_opts *o);

/* Train and validation loss against the optimizer step from a training log:
 * a CSV file with a header naming its columns; "step" and either
 * "train_nll,valid_nll" (nats per node, flowexp train's log.csv) or
 * "train_bpd,valid_bpd" (bits per dimension) are read by name, other columns
 * ignored.  Empty or "nan" cells leave a point out.  o may be NULL. */
int plot_learning_curves(const char *log_csv, const char *out, plot_format fmt,
                         const plot_curve_opts *o, char *err, size_t errsz);

/* ---- results beside the paper ---------------------------------------------- */

typedef struct plot_results_opts {
    const char *value;            /* value column (NULL: the first one not named
                                     dataset, model or seed) */
    const char *paper_csv;        /* the paper's numbers (NULL: none) */
    const char *paper_label;      /* legend text for them (NULL: "paper") */
    const char *names_csv;        /* display names "id,name" (NULL: the ids) */
    const char *reference_column; /* per-dataset reference line (NULL: none) */
    const char *reference_label;  /* its legend text (NULL: the column name) */
    const char *title;            /* NULL: "Results beside the paper" */
    const char *ylabel;           /* NULL: the value column's name */
    int width, height;            /* 0: 120 + 230 per dataset, 480 */
} plot_results_opts;

void plot_results_opts_default(plot_results_opts *o);

/* One panel per dataset; in each, per model, the mean over seeds with an
 * error bar of the sample standard deviation (legend: "ours: mean +- std
 * over n seeds", or n per point when it varies), the paper's value (with its
 * +- if given) as a hollow diamond beside it, and the reference line.
 *
 *   results CSV: header naming at least "dataset", "model" and the value
 *     column; "seed" optional (one row per dataset, model and seed); other
 *     columns ignored.
 *   paper CSV:   "dataset,model,value[,std]" (std may be empty).
 *   names CSV:   "id,name": display names of dataset and model ids.
 *
 * Datasets and models appear in the order they first occur (results first,
 * then models only the paper has). */
int plot_results(const char *results_csv, const char *out, plot_format fmt,
                 const plot_results_opts *o, char *err, size_t errsz);

#endif
