/* Charts read from CSV files: learning curves from a training log, and
 * results over seeds beside the paper's numbers.  See plot.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "figure.h"

static const double margin = 14;

/* The title centred at the top; returns the y below it. */
static double draw_title(fig *f, const char *title)
{
    fig_text(f, f->w / 2, 12, FIG_FONT_TITLE, 1, 0.5, 0, 0, FIG_INK, title);
    return 12 + fig_text_height(FIG_FONT_TITLE) + 13;
}

/* A dashed horizontal line at y = v across the plot area. */
static void hline(fig *f, const fig_axes *a, double v, fig_rgb c)
{
    const double y = fig_ax_y(a, v), dash[2] = { 7, 4 };
    cairo_set_source_rgb(f->cr, c.r, c.g, c.b);
    cairo_set_line_width(f->cr, 1.6);
    cairo_set_dash(f->cr, dash, 2, 0);
    cairo_move_to(f->cr, a->x, y);
    cairo_line_to(f->cr, a->x + a->w, y);
    cairo_stroke(f->cr);
    cairo_set_dash(f->cr, NULL, 0, 0);
}

/* ---- learning curves ---------------------------------------------------------- */

typedef struct curve_point {
    double step, train, valid;
} curve_point;

static int cmp_step(const void *a, const void *b)
{
    const double x = ((const curve_point *)a)->step, y = ((const curve_point *)b)->step;
    return (x > y) - (x < y);
}

/* Rows of the log sorted by step (stable for equal steps is not needed: a
 * resumed run repeats a step only with the same values). */
static int read_log(const char *path, curve_point **out, int *n, int *bpd, char *err, size_t errsz)
{
    csv_table t;
    int rc = -1;
    curve_point *p = NULL;
    if (csv_read(path, &t, err, errsz) < 0) goto out;
    const int cs = csv_col(&t, "step");
    int ct = csv_col(&t, "train_bpd"), cv = csv_col(&t, "valid_bpd");
    *bpd = ct >= 0 || cv >= 0;
    if (!*bpd) {
        ct = csv_col(&t, "train_nll");
        cv = csv_col(&t, "valid_nll");
    }
    if (cs < 0 || ct < 0 || cv < 0) {
        snprintf(err, errsz,
                 "%s: not a training log: the header needs \"step\" and \"train_nll,valid_nll\" or "
                 "\"train_bpd,valid_bpd\"",
                 path);
        goto out;
    }
    if (t.n_rows < 1) {
        snprintf(err, errsz, "%s: no rows yet (training logs a row every --eval-every steps)",
                 path);
        goto out;
    }
    if (!(p = malloc((size_t)t.n_rows * sizeof *p))) {
        snprintf(err, errsz, "%s: out of memory", path);
        goto out;
    }
    int finite = 0;
    for (int r = 0; r < t.n_rows; r++) {
        if (csv_number(&t, r, cs, &p[r].step, err, errsz) != 0) {
            if (isnan(p[r].step)) snprintf(err, errsz, "%s:%d: empty step", path, t.line[r + 1]);
            goto out;
        }
        if (csv_number(&t, r, ct, &p[r].train, err, errsz) < 0 ||
            csv_number(&t, r, cv, &p[r].valid, err, errsz) < 0)
            goto out;
        finite += isfinite(p[r].train) || isfinite(p[r].valid);
    }
    if (!finite) {
        snprintf(err, errsz, "%s: no finite train or validation value", path);
        goto out;
    }
    qsort(p, (size_t)t.n_rows, sizeof *p, cmp_step);
    *out = p;
    *n = t.n_rows;
    p = NULL;
    rc = 0;
out:
    free(p);
    csv_free(&t);
    return rc;
}

/* One series as a polyline broken at missing values, with markers when the
 * points are few. */
static void draw_series(fig *f, const fig_axes *a, const curve_point *p, int n, int valid,
                        fig_rgb c, fig_mark m)
{
    cairo_t *cr = f->cr;
    cairo_set_source_rgb(cr, c.r, c.g, c.b);
    cairo_set_line_width(cr, 2);
    int pen = 0;
    for (int i = 0; i < n; i++) {
        const double v = valid ? p[i].valid : p[i].train;
        if (!isfinite(v)) {
            pen = 0;
            continue;
        }
        const double x = fig_ax_x(a, p[i].step), y = fig_ax_y(a, v);
        if (pen)
            cairo_line_to(cr, x, y);
        else
            cairo_move_to(cr, x, y);
        pen = 1;
    }
    cairo_stroke(cr);
    if (n <= 60)
        for (int i = 0; i < n; i++) {
            const double v = valid ? p[i].valid : p[i].train;
            if (isfinite(v)) fig_marker(f, fig_ax_x(a, p[i].step), fig_ax_y(a, v), 3.2, m, c, 1, 1);
        }
}

int plot_learning_curves(const char *log_csv, const char *out, plot_format fmt,
                         const plot_curve_opts *opts, char *err, size_t errsz)
{
    plot_curve_opts o;
    if (opts)
        o = *opts;
    else
        plot_curve_opts_default(&o);
    curve_point *p;
    int n, bpd;
    if (read_log(log_csv, &p, &n, &bpd, err, errsz) < 0) return -1;

    double lo = INFINITY, hi = -INFINITY, x0 = p[0].step, x1 = p[n - 1].step;
    for (int i = 0; i < n; i++) {
        if (isfinite(p[i].train)) lo = fmin(lo, p[i].train), hi = fmax(hi, p[i].train);
        if (isfinite(p[i].valid)) lo = fmin(lo, p[i].valid), hi = fmax(hi, p[i].valid);
    }
    if (isfinite(o.reference)) lo = fmin(lo, o.reference), hi = fmax(hi, o.reference);
    fig_pad_range(&lo, &hi, 0.05);
    if (isfinite(o.ylo)) lo = o.ylo;
    if (isfinite(o.yhi)) hi = o.yhi;
    if (!(lo < hi)) {
        snprintf(err, errsz, "learning curves: the y range [%g, %g] is empty", lo, hi);
        free(p);
        return -1;
    }
    if (x0 == x1) x0 -= 1, x1 += 1;
    x0 = fmin(x0, 0);
    x1 += 0.02 * (x1 - x0); /* the last markers stay whole */

    char title[512], ref_label[256];
    if (o.title)
        snprintf(title, sizeof title, "%s", o.title);
    else
        snprintf(title, sizeof title, "Learning curves: %s", log_csv);
    snprintf(ref_label, sizeof ref_label, "%s (%.3f)",
             o.reference_label ? o.reference_label : "reference", o.reference);
    const char *ylabel = o.ylabel ? o.ylabel
                         : bpd    ? "bits per dimension"
                                  : "negative log-likelihood (nats per node)";
    const fig_key keys[3] = {
        { "train (mean over each interval)", fig_color(0), FIG_MARK_CIRCLE, 1, 1, 0 },
        { "validation", fig_color(1), FIG_MARK_SQUARE, 1, 1, 0 },
        { ref_label, FIG_MUTED, FIG_MARK_NONE, 0, 2, 0 },
    };
    const int nk = isfinite(o.reference) ? 3 : 2;
    const int W = o.width > 0 ? o.width : 760, H = o.height > 0 ? o.height : 480;
    fig_axes a = {
        0, 0, 100, 100, x0, x1, lo, hi, "optimizer step", ylabel, 1, 1, 7, 6, NULL, 0, 0
    };

    fig f;
    int rc = -1;
    if (fig_open(&f, out, fmt, W, H, title, err, errsz) < 0) goto out;
    const double top = draw_title(&f, title);
    const double lh = fig_legend_height(&f, keys, nk, W - 2 * margin);
    const double left = fig_axes_left(&f, &a), bottom = fig_axes_bottom(&f, &a);
    fig_legend(&f, margin, top, W - 2 * margin, keys, nk);
    a.x = margin + left;
    a.y = top + lh + 8;
    a.w = W - a.x - margin - 8;
    a.h = H - a.y - bottom - margin;
    if (a.w < 60 || a.h < 60) {
        snprintf(err, errsz, "learning curves: a figure of %d x %d is too small", W, H);
        fig_discard(&f);
        goto out;
    }
    fig_axes_back(&f, &a);
    fig_clip(&f, &a);
    if (isfinite(o.reference)) hline(&f, &a, o.reference, FIG_MUTED);
    draw_series(&f, &a, p, n, 0, fig_color(0), FIG_MARK_CIRCLE);
    draw_series(&f, &a, p, n, 1, fig_color(1), FIG_MARK_SQUARE);
    fig_unclip(&f);
    fig_axes_front(&f, &a);
    rc = fig_close(&f, err, errsz);
out:
    free(p);
    return rc;
}

/* ---- results beside the paper ----------------------------------------------------- */

enum { MAX_IDS = 32 };

typedef struct results {
    int nd, nm;
    const char *dataset[MAX_IDS], *model[MAX_IDS]; /* ids (point into the tables) */
    const char *dname[MAX_IDS], *mname[MAX_IDS];
    /* per [dataset][model] */
    int n[MAX_IDS][MAX_IDS];
    double sum[MAX_IDS][MAX_IDS], sum2[MAX_IDS][MAX_IDS];
    double paper[MAX_IDS][MAX_IDS], paper_std[MAX_IDS][MAX_IDS];
    double ref[MAX_IDS];
    int ref_n[MAX_IDS];
} results;

static int id_index(const char **ids, int *n, const char *id, const char *path, char *err,
                    size_t errsz)
{
    for (int i = 0; i < *n; i++)
        if (!strcmp(ids[i], id)) return i;
    if (!id[0]) {
        snprintf(err, errsz, "%s: an empty dataset or model name", path);
        return -1;
    }
    if (*n == MAX_IDS) {
        snprintf(err, errsz, "%s: more than %d datasets or models", path, MAX_IDS);
        return -1;
    }
    ids[*n] = id;
    return (*n)++;
}

static int need_col(const csv_table *t, const char *name, char *err, size_t errsz)
{
    const int c = csv_col(t, name);
    if (c < 0) snprintf(err, errsz, "%s: no column \"%s\" in the header", t->path, name);
    return c;
}

static int read_results(const csv_table *t, const plot_results_opts *o, results *R,
                        const char **value_name, char *err, size_t errsz)
{
    const int cd = need_col(t, "dataset", err, errsz),
              cm = cd < 0 ? -1 : need_col(t, "model", err, errsz);
    if (cd < 0 || cm < 0) return -1;
    const int cs = csv_col(t, "seed");
    int cv = -1, cr = -1;
    if (o->value) {
        if ((cv = need_col(t, o->value, err, errsz)) < 0) return -1;
    } else {
        for (int c = 0; c < t->n_cols && cv < 0; c++)
            if (c != cd && c != cm && c != cs) cv = c;
        if (cv < 0) {
            snprintf(err, errsz, "%s: no value column (only dataset, model, seed)", t->path);
            return -1;
        }
    }
    if (o->reference_column && (cr = need_col(t, o->reference_column, err, errsz)) < 0) return -1;
    *value_name = t->cell[cv];
    if (t->n_rows < 1) {
        snprintf(err, errsz, "%s: no rows", t->path);
        return -1;
    }
    for (int r = 0; r < t->n_rows; r++) {
        const int d = id_index(R->dataset, &R->nd, csv_cell(t, r, cd), t->path, err, errsz);
        const int m =
            d < 0 ? -1 : id_index(R->model, &R->nm, csv_cell(t, r, cm), t->path, err, errsz);
        if (m < 0) return -1;
        double v;
        const int st = csv_number(t, r, cv, &v, err, errsz);
        if (st < 0) return -1;
        if (st > 0) {
            snprintf(err, errsz, "%s:%d: no value in column \"%s\"", t->path, t->line[r + 1],
                     t->cell[cv]);
            return -1;
        }
        if (cs >= 0)
            for (int q = 0; q < r; q++)
                if (!strcmp(csv_cell(t, q, cd), csv_cell(t, r, cd)) &&
                    !strcmp(csv_cell(t, q, cm), csv_cell(t, r, cm)) &&
                    !strcmp(csv_cell(t, q, cs), csv_cell(t, r, cs))) {
                    snprintf(err, errsz, "%s:%d: dataset %s, model %s, seed %s again (line %d)",
                             t->path, t->line[r + 1], csv_cell(t, r, cd), csv_cell(t, r, cm),
                             csv_cell(t, r, cs), t->line[q + 1]);
                    return -1;
                }
        R->n[d][m]++;
        R->sum[d][m] += v;
        R->sum2[d][m] += v * v;
        if (cr >= 0) {
            double ref;
            const int rs = csv_number(t, r, cr, &ref, err, errsz);
            if (rs < 0) return -1;
            if (rs == 0) {
                R->ref[d] += ref;
                R->ref_n[d]++;
            }
        }
    }
    return 0;
}

static int read_paper(const csv_table *t, results *R, char *err, size_t errsz)
{
    const int cd = need_col(t, "dataset", err, errsz),
              cm = cd < 0 ? -1 : need_col(t, "model", err, errsz);
    const int cv = cm < 0 ? -1 : need_col(t, "value", err, errsz), cs = csv_col(t, "std");
    if (cv < 0) return -1;
    for (int r = 0; r < t->n_rows; r++) {
        const int d = id_index(R->dataset, &R->nd, csv_cell(t, r, cd), t->path, err, errsz);
        const int m =
            d < 0 ? -1 : id_index(R->model, &R->nm, csv_cell(t, r, cm), t->path, err, errsz);
        if (m < 0) return -1;
        double v, s = NAN;
        if (csv_number(t, r, cv, &v, err, errsz) < 0 ||
            (cs >= 0 && csv_number(t, r, cs, &s, err, errsz) < 0))
            return -1;
        if (!isnan(R->paper[d][m])) {
            snprintf(err, errsz, "%s:%d: dataset %s, model %s given twice", t->path, t->line[r + 1],
                     R->dataset[d], R->model[m]);
            return -1;
        }
        R->paper[d][m] = v;
        R->paper_std[d][m] = s;
    }
    return 0;
}

static int read_names(const csv_table *t, results *R, char *err, size_t errsz)
{
    const int ci = need_col(t, "id", err, errsz),
              cn = ci < 0 ? -1 : need_col(t, "name", err, errsz);
    if (cn < 0) return -1;
    for (int r = 0; r < t->n_rows; r++) {
        for (int d = 0; d < R->nd; d++)
            if (!strcmp(R->dataset[d], csv_cell(t, r, ci))) R->dname[d] = csv_cell(t, r, cn);
        for (int m = 0; m < R->nm; m++)
            if (!strcmp(R->model[m], csv_cell(t, r, ci))) R->mname[m] = csv_cell(t, r, cn);
    }
    return 0;
}

static double cell_mean(const results *R, int d, int m)
{
    return R->sum[d][m] / R->n[d][m];
}

/* Sample standard deviation (0 for one seed). */
static double cell_std(const results *R, int d, int m)
{
    const int n = R->n[d][m];
    if (n < 2) return 0;
    const double mean = R->sum[d][m] / n, var = (R->sum2[d][m] - n * mean * mean) / (n - 1);
    return var > 0 ? sqrt(var) : 0;
}

/* Per-dataset value range: means +- std, the paper's values +- std, the
 * reference. */
static void panel_range(const results *R, int d, double *lo, double *hi, double *ref)
{
    *lo = INFINITY;
    *hi = -INFINITY;
    for (int m = 0; m < R->nm; m++) {
        if (R->n[d][m]) {
            const double mu = cell_mean(R, d, m), s = cell_std(R, d, m);
            *lo = fmin(*lo, mu - s);
            *hi = fmax(*hi, mu + s);
        }
        if (!isnan(R->paper[d][m])) {
            const double s = isnan(R->paper_std[d][m]) ? 0 : R->paper_std[d][m];
            *lo = fmin(*lo, R->paper[d][m] - s);
            *hi = fmax(*hi, R->paper[d][m] + s);
        }
    }
    *ref = R->ref_n[d] ? R->ref[d] / R->ref_n[d] : NAN;
    if (isfinite(*ref)) *lo = fmin(*lo, *ref), *hi = fmax(*hi, *ref);
    fig_pad_range(lo, hi, 0.08);
}

/* The panels side by side below `top`, each with its own y ticks, the y
 * label left of the first.  Returns -1 (message in err) if they do not fit. */
static int draw_results(fig *f, const results *R, const char *ylabel, double top, int uniform_n,
                        char *err, size_t errsz)
{
    const double panel_gap = 18;
    fig_axes a[MAX_IDS];
    double ref[MAX_IDS], used = 0, wmax = 0;
    for (int d = 0; d < R->nd; d++) {
        double lo, hi;
        panel_range(R, d, &lo, &hi, &ref[d]);
        a[d] = (fig_axes){ 0, top, 100, 100, -0.6,     R->nm - 0.4, lo, hi, NULL, d ? NULL : ylabel,
                           1, 1,   0,   5,   R->mname, R->nm,       0 };
        used += fig_axes_left(f, &a[d]);
    }
    double pw = (f->w - 2 * margin - used - (R->nd - 1) * panel_gap) / R->nd;
    for (int m = 0; m < R->nm; m++)
        wmax = fmax(wmax, fig_text_width(f, R->mname[m], FIG_FONT_TICK, 0));
    const double angle = wmax + 8 > pw / R->nm ? 35 * FIG_PI / 180 : 0;
    /* a rotated first category label reaches left of its tick: keep it on
     * the figure by widening the left margin */
    double lead = 0;
    if (angle != 0) {
        const double reach = fig_text_width(f, R->mname[0], FIG_FONT_TICK, 0) * cos(angle);
        for (int it = 0; it < 3; it++) {
            const double room = fig_axes_left(f, &a[0]) + 0.6 / (R->nm + 0.2) * pw;
            lead = reach > room ? reach - room : 0;
            pw = (f->w - 2 * margin - lead - used - (R->nd - 1) * panel_gap) / R->nd;
        }
    }
    a[0].xcat_angle = angle;
    const double bottom = fig_axes_bottom(f, &a[0]), ph = f->h - top - bottom - margin;
    if (pw < 30.0 * R->nm || ph < 60) {
        snprintf(err, errsz, "results figure: %g x %g is too small for %d datasets of %d models",
                 f->w, f->h, R->nd, R->nm);
        return -1;
    }
    double x = margin + lead;
    const fig_rgb ours = fig_color(0), paper = FIG_INK;
    for (int d = 0; d < R->nd; d++) {
        fig_axes *p = &a[d];
        x += fig_axes_left(f, p);
        p->x = x;
        p->w = pw;
        p->h = ph;
        p->xcat_angle = angle;
        x += pw + panel_gap;
        fig_text(f, p->x + p->w / 2, top - fig_text_height(FIG_FONT_LABEL) - 8, FIG_FONT_LABEL, 1,
                 0.5, 0, 0, FIG_INK, R->dname[d]);
        fig_axes_back(f, p);
        fig_clip(f, p);
        if (isfinite(ref[d])) hline(f, p, ref[d], FIG_MUTED);
        /* ours left of the category, the paper right of it */
        const double off = 0.15;
        for (int m = 0; m < R->nm; m++) {
            const int both = R->n[d][m] && !isnan(R->paper[d][m]);
            if (R->n[d][m]) {
                const double cx = fig_ax_x(p, m - (both ? off : 0)), mu = cell_mean(R, d, m),
                             s = cell_std(R, d, m);
                if (s > 0) fig_errbar(f, cx, fig_ax_y(p, mu - s), fig_ax_y(p, mu + s), 4, ours);
                fig_marker(f, cx, fig_ax_y(p, mu), 5, FIG_MARK_CIRCLE, ours, 1, 1);
                if (!uniform_n) { /* the seed count under the bar */
                    char nb[16];
                    snprintf(nb, sizeof nb, "n=%d", R->n[d][m]);
                    fig_text(f, cx, fmax(fig_ax_y(p, mu - s), fig_ax_y(p, mu) + 5) + 4,
                             FIG_FONT_TICK - 2, 0, 0.5, 0, 0, FIG_MUTED, nb);
                }
            }
            if (!isnan(R->paper[d][m])) {
                const double cx = fig_ax_x(p, m + (both ? off : 0)), v = R->paper[d][m],
                             s = R->paper_std[d][m];
                if (s > 0) fig_errbar(f, cx, fig_ax_y(p, v - s), fig_ax_y(p, v + s), 4, paper);
                fig_marker(f, cx, fig_ax_y(p, v), 5, FIG_MARK_DIAMOND, paper, 0, 1);
            }
        }
        fig_unclip(f);
        fig_axes_front(f, p);
    }
    return 0;
}

int plot_results(const char *results_csv, const char *out, plot_format fmt,
                 const plot_results_opts *opts, char *err, size_t errsz)
{
    plot_results_opts o;
    if (opts)
        o = *opts;
    else
        plot_results_opts_default(&o);
    csv_table tr, tp, tn;
    memset(&tp, 0, sizeof tp);
    memset(&tn, 0, sizeof tn);
    results *R = calloc(1, sizeof *R);
    int rc = -1;
    const char *value_name = NULL;
    if (!R) {
        snprintf(err, errsz, "results figure: out of memory");
        return -1;
    }
    for (int d = 0; d < MAX_IDS; d++)
        for (int m = 0; m < MAX_IDS; m++) R->paper[d][m] = R->paper_std[d][m] = NAN;
    if (csv_read(results_csv, &tr, err, errsz) < 0 ||
        read_results(&tr, &o, R, &value_name, err, errsz) < 0)
        goto out;
    if (o.paper_csv &&
        (csv_read(o.paper_csv, &tp, err, errsz) < 0 || read_paper(&tp, R, err, errsz) < 0))
        goto out;
    for (int d = 0; d < R->nd; d++) R->dname[d] = R->dataset[d];
    for (int m = 0; m < R->nm; m++) R->mname[m] = R->model[m];
    if (o.names_csv &&
        (csv_read(o.names_csv, &tn, err, errsz) < 0 || read_names(&tn, R, err, errsz) < 0))
        goto out;

    /* one n for all cells, or n per point */
    int n_all = -1, uniform = 1, have_paper = 0, have_ref = 0;
    for (int d = 0; d < R->nd; d++) {
        have_ref |= R->ref_n[d] > 0;
        for (int m = 0; m < R->nm; m++) {
            have_paper |= !isnan(R->paper[d][m]);
            if (!R->n[d][m]) continue;
            if (n_all < 0) n_all = R->n[d][m];
            uniform &= R->n[d][m] == n_all;
        }
    }
    char ours_label[128], ref_label[128];
    if (uniform)
        snprintf(ours_label, sizeof ours_label, "ours: mean %s std over %d seed%s", "\xc2\xb1",
                 n_all, n_all == 1 ? "" : "s");
    else
        snprintf(ours_label, sizeof ours_label, "ours: mean %s std over n seeds", "\xc2\xb1");
    snprintf(ref_label, sizeof ref_label, "%s",
             o.reference_label    ? o.reference_label
             : o.reference_column ? o.reference_column
                                  : "");
    fig_key keys[3];
    int nk = 0;
    keys[nk++] = (fig_key){ ours_label, fig_color(0), FIG_MARK_CIRCLE, 1, 0, 1 };
    if (have_paper)
        keys[nk++] = (fig_key){
            o.paper_label ? o.paper_label : "paper", FIG_INK, FIG_MARK_DIAMOND, 0, 0, 1
        };
    if (have_ref) keys[nk++] = (fig_key){ ref_label, FIG_MUTED, FIG_MARK_NONE, 0, 2, 0 };

    const char *title = o.title ? o.title : "Results beside the paper";
    const char *ylabel = o.ylabel ? o.ylabel : value_name;
    const int W = o.width > 0 ? o.width : 120 + 230 * R->nd, H = o.height > 0 ? o.height : 480;
    fig f;
    if (fig_open(&f, out, fmt, W, H, title, err, errsz) < 0) goto out;
    double top = draw_title(&f, title);
    fig_legend(&f, margin, top, W - 2 * margin, keys, nk);
    top +=
        fig_legend_height(&f, keys, nk, W - 2 * margin) + 10 + fig_text_height(FIG_FONT_LABEL) + 8;
    if (draw_results(&f, R, ylabel, top, uniform, err, errsz) < 0) {
        fig_discard(&f);
        goto out;
    }
    rc = fig_close(&f, err, errsz);
out:
    csv_free(&tr);
    csv_free(&tp);
    csv_free(&tn);
    free(R);
    return rc;
}
