/* The drawing layer of the flowexp figures, on cairo: a figure written
 * atomically as PNG, SVG or PDF, text, markers, axes with nice ticks and
 * legends.  Built only when cairo is found (plot_none.c otherwise); the
 * figure kinds of plot.h are drawn with it in plot_graphs.c and
 * plot_charts.c.  Coordinates are figure units from the top-left corner
 * (pixels in PNG and SVG, points in PDF). */
#ifndef FLOWEXP_TOOL_FIGURE_H
#define FLOWEXP_TOOL_FIGURE_H

#include <cairo.h>
#include <stdio.h>

#include "plot.h"

typedef struct fig_rgb {
    double r, g, b;
} fig_rgb;

static const fig_rgb FIG_INK = { 0.13, 0.13, 0.13 };   /* text, frames */
static const fig_rgb FIG_MUTED = { 0.40, 0.40, 0.40 }; /* subtitles, notes */
static const fig_rgb FIG_GRID = { 0.90, 0.90, 0.90 };

/* Font sizes. */
#define FIG_FONT_TITLE 17.0
#define FIG_FONT_SUBTITLE 13.0
#define FIG_FONT_LABEL 14.0
#define FIG_FONT_TICK 12.5
#define FIG_FONT_LEGEND 13.0
#define FIG_PI 3.14159265358979323846

typedef struct fig {
    cairo_surface_t *surface;
    cairo_t *cr;
    plot_format fmt;
    double w, h;
    const char *path;
    char *tmp; /* the temporary file beside path */
    FILE *file;
    int write_errno; /* first failed write's errno */
} fig;

/* Start a w x h figure to be written to path: creates the temporary file
 * (so a bad path fails here, before any drawing) and a white page.  title
 * goes into the PDF's metadata.  Returns 0, or -1 with a message. */
int fig_open(fig *f, const char *path, plot_format fmt, int w, int h, const char *title, char *err,
             size_t errsz);

/* Finish the figure: write it, then rename the temporary file onto path.
 * On any failure the temporary file is removed and -1 returned with a
 * message.  f is released either way. */
int fig_close(fig *f, char *err, size_t errsz);

/* Abandon the figure (removes the temporary file); f may be half opened. */
void fig_discard(fig *f);

/* A context for measuring text only (no file): lays a figure out before its
 * size is known.  Release with fig_discard. */
int fig_scratch(fig *f, char *err, size_t errsz);

/* ---- text ---------------------------------------------------------------- */

/* Advance width of s at the given size. */
double fig_text_width(fig *f, const char *s, double size, int bold);

/* Height of a line of text (digits/capitals plus descenders). */
double fig_text_height(double size);

/* Draw s with its box anchored at (x, y): ax = 0, 0.5, 1 puts the left edge,
 * centre or right edge there, ay = 0, 0.5, 1 the top, middle or bottom;
 * `angle` (radians, counter-clockwise) rotates about the anchor. */
void fig_text(fig *f, double x, double y, double size, int bold, double ax, double ay, double angle,
              fig_rgb c, const char *s);

/* ---- colours and marks ----------------------------------------------------- */

/* Series colours (colour-blind safe), cycling. */
fig_rgb fig_color(int i);

/* Colour of node i of graphs with n nodes: distinct for n <= 10, spread
 * hues with alternating lightness above. */
fig_rgb fig_node_color(int i, int n);

typedef enum fig_mark {
    FIG_MARK_NONE,
    FIG_MARK_CIRCLE,
    FIG_MARK_DIAMOND,
    FIG_MARK_SQUARE
} fig_mark;

/* A marker of radius r at (x, y), filled (with a thin darker rim) or hollow. */
void fig_marker(fig *f, double x, double y, double r, fig_mark m, fig_rgb c, int filled,
                double alpha);

/* A vertical error bar from y0 to y1 at x with caps of half-width cap. */
void fig_errbar(fig *f, double x, double y0, double y1, double cap, fig_rgb c);

/* ---- axes ------------------------------------------------------------------ */

typedef struct fig_axes {
    double x, y, w, h;                /* plot area on the figure */
    double x0, x1, y0, y1;            /* data range shown */
    const char *xlabel, *ylabel;      /* NULL: none */
    int x_tick_labels, y_tick_labels; /* draw tick labels (else tick marks only) */
    int xticks, yticks;               /* about this many ticks (0: 6) */
    const char *const *xcats;         /* categorical x axis: labels at x = 0..n_xcats-1 */
    int n_xcats;
    double xcat_angle; /* their rotation (radians; 0 horizontal) */
} fig_axes;

/* Room needed left of the plot area (y tick labels and y label) and below
 * it (x tick labels and x label). */
double fig_axes_left(fig *f, const fig_axes *a);
double fig_axes_bottom(fig *f, const fig_axes *a);

/* Figure coordinates of data coordinates. */
double fig_ax_x(const fig_axes *a, double v);
double fig_ax_y(const fig_axes *a, double v);

/* Grid lines at the ticks (draw first), then frame, ticks and labels (draw
 * last, over the data). */
void fig_axes_back(fig *f, const fig_axes *a);
void fig_axes_front(fig *f, const fig_axes *a);

/* Restrict drawing to the plot area / lift the restriction. */
void fig_clip(fig *f, const fig_axes *a);
void fig_unclip(fig *f);

/* [lo, hi] widened by frac of its length on each side (or to a unit-ish
 * interval if empty); NAN bounds become [-1, 1]. */
void fig_pad_range(double *lo, double *hi, double frac);

/* ---- legends --------------------------------------------------------------- */

typedef struct fig_key {
    const char *label;
    fig_rgb color;
    fig_mark marker;
    int filled;
    int line;   /* 0 none, 1 solid, 2 dashed */
    int errbar; /* draw an error bar through the marker */
} fig_key;

/* Height of the legend of n keys laid out in centred rows within width. */
double fig_legend_height(fig *f, const fig_key *k, int n, double width);

/* Draw it with its top at y, centred in [x, x + width]. */
void fig_legend(fig *f, double x, double y, double width, const fig_key *k, int n);

#endif
