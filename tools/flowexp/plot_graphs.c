/* Figures of samples: graphs as point clouds (data beside model, and single
 * graphs as small multiples) and image grids.  See plot.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "figure.h"

enum { MAX_NODE_KEYS = 24 };
static const double margin = 14, panel_gap = 40, small_gap = 8;

/* Where everything of a graph-samples figure goes. */
typedef struct graph_layout {
    int w, h;
    int np;   /* overview panels: 1 (model) or 2 (data, model) */
    int rows; /* small-multiple rows (sets), 0 without --graphs */
    double title_y, subtitle_y, legend_y, legend_h;
    int legend_below; /* legend above the small multiples, not the overview */
    double panel_title_y, top, side, left_need, bottom_need, ov_x;
    double section_y, small_top, small_side, small_x;
} graph_layout;

static int set_nodes(const plot_graphs *d, const plot_graphs *m)
{
    return d && d->nodes > m->nodes ? d->nodes : m->nodes;
}

/* Shared square range of features 0 and 1 over both sets. */
static void graph_range(const plot_graphs *s, double *lo, double *hi)
{
    for (size_t i = 0; i < (size_t)s->n * s->nodes; i++) {
        const double x = s->x[i * s->features], y = s->x[i * s->features + 1];
        if (isfinite(x) && isfinite(y)) {
            *lo = fmin(*lo, fmin(x, y));
            *hi = fmax(*hi, fmax(x, y));
        }
    }
}

/* Legend keys "node i" (none for more than MAX_NODE_KEYS nodes). */
static void graph_keys(const plot_graphs *d, const plot_graphs *m, fig_key *keys, char (*names)[16],
                       int *nk)
{
    const int nn = set_nodes(d, m);
    *nk = 0;
    if (nn > MAX_NODE_KEYS) return;
    for (int i = 0; i < nn; i++) {
        snprintf(names[i], sizeof names[i], "node %d", i);
        keys[(*nk)++] = (fig_key){ names[i], fig_node_color(i, nn), FIG_MARK_CIRCLE, 1, 0, 0 };
    }
}

static int graph_layout_make(fig *f, const plot_graphs *d, const plot_graphs *m,
                             const plot_graph_opts *o, const fig_axes *proto, const fig_key *keys,
                             int nk, graph_layout *L, char *err, size_t errsz)
{
    memset(L, 0, sizeof *L);
    L->np = d ? 2 : 1;
    L->rows = o->graphs > 0 ? L->np : 0;
    L->w = o->width > 0 ? o->width : (d ? 900 : 560);
    const double tt = fig_text_height(FIG_FONT_TITLE), ts = fig_text_height(FIG_FONT_SUBTITLE),
                 tl = fig_text_height(FIG_FONT_LABEL);
    L->title_y = 12;
    L->subtitle_y = L->title_y + tt + 7;
    double y = L->subtitle_y + ts + 12;
    const int legend = nk > 0 && (o->color_nodes || o->graphs > 0);
    L->legend_below = legend && !o->color_nodes;
    if (legend) L->legend_h = fig_legend_height(f, keys, nk, L->w - 2 * margin);
    if (legend && !L->legend_below) {
        L->legend_y = y;
        y += L->legend_h + 8;
    }
    L->panel_title_y = y;
    y += tl + 8;
    L->top = y;
    L->left_need = fig_axes_left(f, proto);
    L->bottom_need = fig_axes_bottom(f, proto);

    /* widths decide the squares; a given height may shrink them */
    double side = (L->w - margin - L->left_need - (L->np - 1) * panel_gap) / L->np;
    if (o->height <= 0 && side > 440) side = 440;
    const double row_label = tl + 12;
    double small = 0, fixed = L->top + L->bottom_need + margin;
    if (L->rows) {
        small = (L->w - 2 * margin - row_label - (o->graphs - 1) * small_gap) / o->graphs;
        if (small > 150) small = 150;
        fixed += 14 + tl + 10 + (L->legend_below ? L->legend_h + 4 : 0) + L->rows * small_gap;
    }
    const double var = side + L->rows * small;
    if (o->height > 0) {
        const double k = (o->height - fixed) / var;
        if (k < 1) {
            side *= k;
            small *= k;
        }
        L->h = o->height;
    } else {
        L->h = (int)ceil(fixed + var);
    }
    if (side < 80 || (L->rows && small < 24)) {
        snprintf(err, errsz, "a figure of %d x %d is too small for %d panel(s)%s", L->w, L->h,
                 L->np, L->rows ? " and the single graphs" : "");
        return -1;
    }
    L->side = floor(side);
    L->small_side = floor(small);
    const double block = L->left_need + L->np * L->side + (L->np - 1) * panel_gap;
    L->ov_x = floor((L->w - block) / 2 + L->left_need);
    y = L->top + L->side + L->bottom_need;
    if (L->rows) {
        L->section_y = y + 14;
        y = L->section_y + tl + 10;
        if (L->legend_below) {
            L->legend_y = y;
            y += L->legend_h + 4;
        }
        L->small_top = y;
        const double sb = row_label + o->graphs * L->small_side + (o->graphs - 1) * small_gap;
        L->small_x = floor((L->w - sb) / 2 + row_label);
    }
    return 0;
}

/* Translucent dots of every node of every graph of s: colour by node index or
 * one colour for the set. */
static void cloud_dots(fig *f, const fig_axes *a, const plot_graphs *s, int by_node, int nn,
                       fig_rgb one)
{
    const size_t count = (size_t)s->n * s->nodes;
    const double r = count <= 2000 ? 2.2 : count <= 10000 ? 1.7 : 1.3;
    const double alpha = count <= 2000 ? 0.55 : 0.4;
    for (int g = 0; g < s->n; g++)
        for (int i = 0; i < s->nodes; i++) {
            const float *p = s->x + ((size_t)g * s->nodes + i) * s->features;
            if (!isfinite(p[0]) || !isfinite(p[1])) continue;
            fig_marker(f, fig_ax_x(a, p[0]), fig_ax_y(a, p[1]), r, FIG_MARK_CIRCLE,
                       by_node ? fig_node_color(i, nn) : one, 1, alpha);
        }
}

/* The cloud inside the plot area.  In SVG and PDF, thousands of dots would
 * make a file of megabytes: there the dots are drawn into an image at twice
 * the resolution, embedded in the otherwise vector figure. */
static void draw_cloud(fig *f, const fig_axes *a, const plot_graphs *s, int by_node, int nn,
                       fig_rgb one)
{
    fig_clip(f, a);
    cairo_surface_t *img = NULL;
    if (f->fmt != PLOT_PNG && (size_t)s->n * s->nodes > 3000)
        img = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, (int)ceil(2 * a->w),
                                         (int)ceil(2 * a->h));
    if (img && cairo_surface_status(img) == CAIRO_STATUS_SUCCESS) {
        fig raster = *f;
        raster.cr = cairo_create(img);
        raster.fmt = PLOT_PNG;
        cairo_scale(raster.cr, 2, 2);
        cairo_translate(raster.cr, -a->x, -a->y);
        cloud_dots(&raster, a, s, by_node, nn, one);
        cairo_destroy(raster.cr);
        cairo_surface_flush(img);
        cairo_translate(f->cr, a->x, a->y);
        cairo_scale(f->cr, 0.5, 0.5);
        cairo_set_source_surface(f->cr, img, 0, 0);
        cairo_paint(f->cr);
    } else {
        cloud_dots(f, a, s, by_node, nn, one);
    }
    if (img) cairo_surface_destroy(img);
    fig_unclip(f);
}

/* Graph g of s: its nodes as opaque dots coloured by index. */
static void draw_graph(fig *f, const fig_axes *a, const plot_graphs *s, int g, int nn)
{
    fig_clip(f, a);
    for (int i = 0; i < s->nodes; i++) {
        const float *p = s->x + ((size_t)g * s->nodes + i) * s->features;
        if (!isfinite(p[0]) || !isfinite(p[1])) continue;
        fig_marker(f, fig_ax_x(a, p[0]), fig_ax_y(a, p[1]), s->nodes > 30 ? 2.5 : 4,
                   FIG_MARK_CIRCLE, fig_node_color(i, nn), 1, 0.9);
    }
    fig_unclip(f);
}

static int check_set(const plot_graphs *s, const char *what, char *err, size_t errsz)
{
    if (!s->x || s->n < 1 || s->nodes < 1 || s->features < 2) {
        snprintf(err, errsz, "%s: expected graphs [n, nodes, features >= 2], got [%d, %d, %d]",
                 what, s->n, s->nodes, s->features);
        return -1;
    }
    return 0;
}

int plot_graph_samples(const char *path, plot_format fmt, const plot_graphs *data,
                       const plot_graphs *model, const plot_graph_opts *o, char *err, size_t errsz)
{
    if (check_set(model, "model samples", err, errsz) < 0 ||
        (data && check_set(data, "data", err, errsz) < 0))
        return -1;
    if (data && data->features != model->features) {
        snprintf(err, errsz, "data have %d features per node, model samples %d", data->features,
                 model->features);
        return -1;
    }
    if (o->graphs < 0 || o->graphs > 32) {
        snprintf(err, errsz, "single graphs: %d is not in [0, 32]", o->graphs);
        return -1;
    }
    const int nn = set_nodes(data, model), F = model->features;

    /* title, subtitle, axis labels */
    char title[256], subtitle[256], xl[64], yl[64], dlabel[128], mlabel[128];
    snprintf(title, sizeof title, "%s%s%s", o->model ? o->model : "Samples",
             o->dataset && o->dataset[0] ? " on " : "", o->dataset ? o->dataset : "");
    if (o->step >= 0)
        snprintf(title + strlen(title), sizeof title - strlen(title), ", checkpoint step %lld",
                 o->step);
    if (data && (data->n != model->n || data->nodes != model->nodes))
        snprintf(subtitle, sizeof subtitle,
                 "data: %d graphs of %d nodes; model: %d graphs of %d nodes at temperature %g",
                 data->n, data->nodes, model->n, model->nodes, o->temperature);
    else
        snprintf(subtitle, sizeof subtitle, "%d graphs of %d nodes per panel%s, temperature %g",
                 model->n, model->nodes, data ? "" : " (model only)", o->temperature);
    if (nn > MAX_NODE_KEYS && (o->color_nodes || o->graphs))
        snprintf(subtitle + strlen(subtitle), sizeof subtitle - strlen(subtitle),
                 "; colour = node index 0..%d", nn - 1);
    if (F > 2) {
        snprintf(xl, sizeof xl, "feature 0 (of %d features)", F);
        snprintf(yl, sizeof yl, "feature 1 (of %d features)", F);
    } else {
        snprintf(xl, sizeof xl, "feature 0");
        snprintf(yl, sizeof yl, "feature 1");
    }
    snprintf(dlabel, sizeof dlabel, "%s", data && data->label ? data->label : "data");
    if (data)
        snprintf(mlabel, sizeof mlabel, "%s", model->label ? model->label : "model samples");
    else
        snprintf(mlabel, sizeof mlabel, "%s only (no data given)",
                 model->label ? model->label : "model samples");

    double lo = INFINITY, hi = -INFINITY;
    graph_range(model, &lo, &hi);
    if (data) graph_range(data, &lo, &hi);
    fig_pad_range(&lo, &hi, 0.05);
    fig_axes proto = { 0, 0, 100, 100, lo, hi, lo, hi, xl, yl, 1, 1, 6, 6, NULL, 0, 0 };

    fig_key keys[MAX_NODE_KEYS];
    char key_names[MAX_NODE_KEYS][16];
    int nk;
    graph_keys(data, model, keys, key_names, &nk);
    graph_layout L;
    fig f;
    if (fig_scratch(&f, err, errsz) < 0) return -1;
    int rc = graph_layout_make(&f, data, model, o, &proto, keys, nk, &L, err, errsz);
    fig_discard(&f);
    if (rc < 0 || fig_open(&f, path, fmt, L.w, L.h, title, err, errsz) < 0) return -1;

    fig_text(&f, L.w / 2.0, L.title_y, FIG_FONT_TITLE, 1, 0.5, 0, 0, FIG_INK, title);
    fig_text(&f, L.w / 2.0, L.subtitle_y, FIG_FONT_SUBTITLE, 0, 0.5, 0, 0, FIG_MUTED, subtitle);
    if (L.legend_h > 0) fig_legend(&f, margin, L.legend_y, L.w - 2 * margin, keys, nk);

    const plot_graphs *sets[2] = { data ? data : model, model };
    const char *labels[2] = { data ? dlabel : mlabel, mlabel };
    const fig_rgb one[2] = { data ? fig_color(0) : fig_color(1), fig_color(1) };
    for (int p = 0; p < L.np; p++) {
        fig_axes a = proto;
        a.x = L.ov_x + p * (L.side + panel_gap);
        a.y = L.top;
        a.w = a.h = L.side;
        if (p > 0) {
            a.y_tick_labels = 0;
            a.ylabel = NULL;
        }
        fig_text(&f, a.x + a.w / 2, L.panel_title_y, FIG_FONT_LABEL, 1, 0.5, 0, 0, FIG_INK,
                 labels[p]);
        fig_axes_back(&f, &a);
        draw_cloud(&f, &a, sets[p], o->color_nodes, nn, one[p]);
        fig_axes_front(&f, &a);
    }

    if (L.rows) {
        char sec[160];
        snprintf(sec, sizeof sec, "%d single graphs per set, nodes coloured by index (same axes)",
                 o->graphs);
        fig_text(&f, L.w / 2.0, L.section_y, FIG_FONT_LABEL, 1, 0.5, 0, 0, FIG_INK, sec);
        for (int r = 0; r < L.rows; r++) {
            const double y = L.small_top + r * (L.small_side + small_gap);
            fig_text(&f, L.small_x - 8, y + L.small_side / 2, FIG_FONT_LABEL, 0, 0.5, 1, FIG_PI / 2,
                     FIG_INK, r == 0 && data ? "data" : "model");
            for (int g = 0; g < o->graphs && g < sets[r]->n; g++) {
                fig_axes a = proto;
                a.x = L.small_x + g * (L.small_side + small_gap);
                a.y = y;
                a.w = a.h = L.small_side;
                a.x_tick_labels = a.y_tick_labels = 0;
                a.xlabel = a.ylabel = NULL;
                a.xticks = a.yticks = 4;
                fig_axes_back(&f, &a);
                draw_graph(&f, &a, sets[r], g, nn);
                fig_axes_front(&f, &a);
            }
        }
    }
    return fig_close(&f, err, errsz);
}

/* ---- image grids ----------------------------------------------------------- */

int plot_image_grid(const char *path, plot_format fmt, const uint8_t *pix, int n, int c, int h,
                    int w, int rows, const char *const *row_labels, const char *title, char *err,
                    size_t errsz)
{
    if (!pix || n < 1 || (c != 1 && c != 3) || h < 1 || w < 1 || h > 4096 || w > 4096 || rows < 1 ||
        rows > n) {
        snprintf(
            err, errsz,
            "image grid %s: expected images [n, 1 or 3, h, w] in 1..n rows, got [%d, %d, %d, %d] "
            "in %d rows",
            path, n, c, h, w, rows);
        return -1;
    }
    const int cols = (n + rows - 1) / rows, big = h > w ? h : w, s = (64 + big - 1) / big;
    const int gap = 4, edge = 12, cw = w * s, ch = h * s;
    fig f;
    if (fig_scratch(&f, err, errsz) < 0) return -1;
    double label_w = 0, title_w = 0;
    for (int r = 0; row_labels && r < rows; r++)
        if (row_labels[r])
            label_w = fmax(label_w, fig_text_width(&f, row_labels[r], FIG_FONT_LABEL, 0));
    if (title) title_w = fig_text_width(&f, title, FIG_FONT_TITLE, 1);
    fig_discard(&f);
    const int lab = row_labels ? (int)ceil(label_w) + 12 : 0;
    const int top = edge + (title ? 30 : 0);
    const int grid_w = cols * (cw + gap) - gap;
    int W = 2 * edge + lab + grid_w;
    if (title && W < (int)ceil(title_w) + 2 * edge) W = (int)ceil(title_w) + 2 * edge;
    const int H = top + rows * (ch + gap) - gap + edge;
    const int x0 = (W - lab - grid_w) / 2 + lab;

    if (fig_open(&f, path, fmt, W, H, title, err, errsz) < 0) return -1;
    if (title) fig_text(&f, W / 2.0, edge, FIG_FONT_TITLE, 1, 0.5, 0, 0, FIG_INK, title);
    /* each image as an RGB24 surface, drawn scaled with the nearest-neighbour
     * filter (a fresh surface each: vector surfaces may keep the source) */
    const size_t plane = (size_t)h * w;
    for (int k = 0; k < n; k++) {
        cairo_surface_t *tile = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
        if (cairo_surface_status(tile) != CAIRO_STATUS_SUCCESS) {
            snprintf(err, errsz, "image grid %s: cairo: %s", path,
                     cairo_status_to_string(cairo_surface_status(tile)));
            cairo_surface_destroy(tile);
            fig_discard(&f);
            return -1;
        }
        const uint8_t *img = pix + (size_t)k * c * plane;
        unsigned char *dst = cairo_image_surface_get_data(tile);
        const int stride = cairo_image_surface_get_stride(tile);
        for (int y = 0; y < h; y++) {
            uint32_t *row = (uint32_t *)(void *)(dst + (size_t)y * stride);
            for (int x = 0; x < w; x++) {
                const size_t i = (size_t)y * w + x;
                const uint32_t R = img[i], G = c == 3 ? img[plane + i] : R,
                               B = c == 3 ? img[2 * plane + i] : R;
                row[x] = R << 16 | G << 8 | B;
            }
        }
        cairo_surface_mark_dirty(tile);
        cairo_t *cr = f.cr;
        cairo_save(cr);
        cairo_translate(cr, x0 + (k % cols) * (cw + gap), top + (k / cols) * (ch + gap));
        cairo_scale(cr, s, s);
        cairo_set_source_surface(cr, tile, 0, 0);
        cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_NEAREST);
        cairo_rectangle(cr, 0, 0, w, h);
        cairo_fill(cr);
        cairo_restore(cr);
        cairo_surface_destroy(tile);
    }
    for (int r = 0; row_labels && r < rows; r++)
        if (row_labels[r])
            fig_text(&f, x0 - 10, top + r * (ch + gap) + ch / 2.0, FIG_FONT_LABEL, 0, 1, 0.5, 0,
                     FIG_INK, row_labels[r]);
    return fig_close(&f, err, errsz);
}
