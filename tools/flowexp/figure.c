/* The cairo drawing layer of the flowexp figures (see figure.h). */
#include "figure.h"

#include <cairo-pdf.h>
#include <cairo-svg.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FIG_FONT "DejaVu Sans"

int plot_available(void)
{
    return 1;
}

const char *plot_backend(void)
{
    return "cairo " CAIRO_VERSION_STRING;
}

int plot_check(const char *what, const char *path, char *err, size_t errsz)
{
    (void)what;
    (void)path;
    (void)err;
    (void)errsz;
    return 0;
}

/* ---- files ----------------------------------------------------------------- */

static cairo_status_t write_cb(void *closure, const unsigned char *data, unsigned int len)
{
    fig *f = closure;
    if (fwrite(data, 1, len, f->file) != len) {
        if (!f->write_errno) f->write_errno = errno ? errno : EIO;
        return CAIRO_STATUS_WRITE_ERROR;
    }
    return CAIRO_STATUS_SUCCESS;
}

/* Create "<path>.tmp.<pid>.<k>" exclusively, mode 0666 less the umask. */
static int open_temp(fig *f, char *err, size_t errsz)
{
    const size_t len = strlen(f->path) + 48;
    if (!(f->tmp = malloc(len))) {
        snprintf(err, errsz, "cannot write %s: out of memory", f->path);
        return -1;
    }
    int fd = -1;
    for (int k = 0; k < 100 && fd < 0; k++) {
        snprintf(f->tmp, len, "%s.tmp.%ld.%d", f->path, (long)getpid(), k);
        fd = open(f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0) {
        snprintf(err, errsz, "cannot write %s: %s", f->path, strerror(errno));
        free(f->tmp);
        f->tmp = NULL;
        return -1;
    }
    if (!(f->file = fdopen(fd, "wb"))) {
        snprintf(err, errsz, "cannot write %s: %s", f->path, strerror(errno));
        close(fd);
        unlink(f->tmp);
        free(f->tmp);
        f->tmp = NULL;
        return -1;
    }
    return 0;
}

int fig_open(fig *f, const char *path, plot_format fmt, int w, int h, const char *title, char *err,
             size_t errsz)
{
    memset(f, 0, sizeof *f);
    f->path = path;
    f->fmt = fmt;
    f->w = w;
    f->h = h;
    if (w < 16 || h < 16 || w > 20000 || h > 20000) {
        snprintf(err, errsz, "cannot draw %s: bad figure size %d x %d", path, w, h);
        return -1;
    }
    if (open_temp(f, err, errsz) < 0) return -1;
    switch (fmt) {
    case PLOT_PNG: f->surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h); break;
    case PLOT_SVG: f->surface = cairo_svg_surface_create_for_stream(write_cb, f, w, h);
#if CAIRO_VERSION >= CAIRO_VERSION_ENCODE(1, 15, 10)
        cairo_svg_surface_set_document_unit(f->surface, CAIRO_SVG_UNIT_PX);
#endif
        break;
    case PLOT_PDF: f->surface = cairo_pdf_surface_create_for_stream(write_cb, f, w, h);
#if CAIRO_VERSION >= CAIRO_VERSION_ENCODE(1, 15, 4)
        cairo_pdf_surface_set_metadata(f->surface, CAIRO_PDF_METADATA_CREATOR, "flowexp");
        if (title) cairo_pdf_surface_set_metadata(f->surface, CAIRO_PDF_METADATA_TITLE, title);
#endif
        break;
    }
    if (!f->surface || cairo_surface_status(f->surface) != CAIRO_STATUS_SUCCESS) {
        snprintf(err, errsz, "cannot draw %s: cairo: %s", path,
                 f->surface ? cairo_status_to_string(cairo_surface_status(f->surface))
                            : "no surface");
        fig_discard(f);
        return -1;
    }
    f->cr = cairo_create(f->surface);
    cairo_set_source_rgb(f->cr, 1, 1, 1);
    cairo_paint(f->cr);
    cairo_set_line_join(f->cr, CAIRO_LINE_JOIN_ROUND);
    return 0;
}

int fig_scratch(fig *f, char *err, size_t errsz)
{
    memset(f, 0, sizeof *f);
    f->fmt = PLOT_PNG;
    f->w = f->h = 1;
    f->surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 1, 1);
    f->cr = cairo_create(f->surface);
    if (cairo_status(f->cr) != CAIRO_STATUS_SUCCESS) {
        snprintf(err, errsz, "cairo: %s", cairo_status_to_string(cairo_status(f->cr)));
        fig_discard(f);
        return -1;
    }
    return 0;
}

void fig_discard(fig *f)
{
    if (f->cr) cairo_destroy(f->cr);
    if (f->surface) cairo_surface_destroy(f->surface);
    if (f->file) fclose(f->file);
    if (f->tmp) {
        unlink(f->tmp);
        free(f->tmp);
    }
    memset(f, 0, sizeof *f);
}

int fig_close(fig *f, char *err, size_t errsz)
{
    cairo_status_t st = cairo_status(f->cr);
    cairo_destroy(f->cr);
    f->cr = NULL;
    if (st == CAIRO_STATUS_SUCCESS) {
        if (f->fmt == PLOT_PNG) {
            st = cairo_surface_write_to_png_stream(f->surface, write_cb, f);
        } else {
            cairo_surface_finish(f->surface);
            st = cairo_surface_status(f->surface);
        }
    }
    cairo_surface_destroy(f->surface);
    f->surface = NULL;
    int rc = 0;
    if (st != CAIRO_STATUS_SUCCESS) {
        snprintf(err, errsz, "cannot write %s: %s", f->path,
                 f->write_errno ? strerror(f->write_errno) : cairo_status_to_string(st));
        rc = -1;
    }
    if (fflush(f->file) != 0 || ferror(f->file)) {
        if (!rc) snprintf(err, errsz, "cannot write %s: %s", f->path, strerror(errno));
        rc = -1;
    }
    if (fclose(f->file) != 0 && !rc) {
        snprintf(err, errsz, "cannot write %s: %s", f->path, strerror(errno));
        rc = -1;
    }
    f->file = NULL;
    if (!rc && rename(f->tmp, f->path) != 0) {
        snprintf(err, errsz, "cannot write %s: %s", f->path, strerror(errno));
        rc = -1;
    }
    if (rc) unlink(f->tmp);
    free(f->tmp);
    memset(f, 0, sizeof *f);
    return rc;
}

/* ---- text ------------------------------------------------------------------ */

static void set_font(fig *f, double size, int bold)
{
    cairo_select_font_face(f->cr, FIG_FONT, CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(f->cr, size);
}

static void set_rgb(fig *f, fig_rgb c, double alpha)
{
    if (alpha >= 1)
        cairo_set_source_rgb(f->cr, c.r, c.g, c.b);
    else
        cairo_set_source_rgba(f->cr, c.r, c.g, c.b, alpha);
}

double fig_text_width(fig *f, const char *s, double size, int bold)
{
    cairo_text_extents_t te;
    set_font(f, size, bold);
    cairo_text_extents(f->cr, s, &te);
    return te.x_advance;
}

/* Digits and capitals rise about 0.73 em above the baseline; descenders go
 * about 0.23 em below. */
double fig_text_height(double size)
{
    return 0.96 * size;
}

void fig_text(fig *f, double x, double y, double size, int bold, double ax, double ay, double angle,
              fig_rgb c, const char *s)
{
    const double rise = 0.73 * size;
    cairo_text_extents_t te;
    set_font(f, size, bold);
    cairo_text_extents(f->cr, s, &te);
    cairo_save(f->cr);
    cairo_translate(f->cr, x, y);
    if (angle != 0) cairo_rotate(f->cr, -angle);
    cairo_move_to(f->cr, -ax * te.x_advance, -ay * fig_text_height(size) + rise);
    set_rgb(f, c, 1);
    cairo_show_text(f->cr, s);
    cairo_restore(f->cr);
}

/* ---- colours and marks ------------------------------------------------------ */

fig_rgb fig_color(int i)
{
    /* Okabe & Ito's palette without its black and yellow */
    static const fig_rgb pal[] = { { 0.000, 0.447, 0.698 }, { 0.835, 0.369, 0.000 },
                                   { 0.000, 0.620, 0.451 }, { 0.800, 0.475, 0.655 },
                                   { 0.337, 0.706, 0.914 }, { 0.902, 0.624, 0.000 } };
    const int n = (int)(sizeof pal / sizeof pal[0]);
    return pal[((i % n) + n) % n];
}

static fig_rgb hsv(double h, double s, double v)
{
    h = 6 * (h - floor(h));
    const int k = (int)h;
    const double fr = h - k, p = v * (1 - s), q = v * (1 - s * fr), t = v * (1 - s * (1 - fr));
    switch (k) {
    case 0: return (fig_rgb){ v, t, p };
    case 1: return (fig_rgb){ q, v, p };
    case 2: return (fig_rgb){ p, v, t };
    case 3: return (fig_rgb){ p, q, v };
    case 4: return (fig_rgb){ t, p, v };
    default: return (fig_rgb){ v, p, q };
    }
}

fig_rgb fig_node_color(int i, int n)
{
    /* matplotlib's "tab10" colours, which people recognise */
    static const fig_rgb tab[10] = { { 0.122, 0.467, 0.706 }, { 1.000, 0.498, 0.055 },
                                     { 0.173, 0.627, 0.173 }, { 0.839, 0.153, 0.157 },
                                     { 0.580, 0.404, 0.741 }, { 0.549, 0.337, 0.294 },
                                     { 0.890, 0.467, 0.761 }, { 0.498, 0.498, 0.498 },
                                     { 0.737, 0.741, 0.133 }, { 0.090, 0.745, 0.812 } };
    if (n <= 10) return tab[((i % 10) + 10) % 10];
    return hsv((double)i / n, i % 2 ? 0.95 : 0.75, i % 2 ? 0.62 : 0.92);
}

static void marker_path(fig *f, double x, double y, double r, fig_mark m)
{
    cairo_t *cr = f->cr;
    cairo_new_sub_path(cr);
    switch (m) {
    case FIG_MARK_NONE: break;
    case FIG_MARK_CIRCLE: cairo_arc(cr, x, y, r, 0, 2 * FIG_PI); break;
    case FIG_MARK_DIAMOND:
        cairo_move_to(cr, x, y - 1.3 * r);
        cairo_line_to(cr, x + 1.3 * r, y);
        cairo_line_to(cr, x, y + 1.3 * r);
        cairo_line_to(cr, x - 1.3 * r, y);
        cairo_close_path(cr);
        break;
    case FIG_MARK_SQUARE: cairo_rectangle(cr, x - 0.9 * r, y - 0.9 * r, 1.8 * r, 1.8 * r); break;
    }
}

void fig_marker(fig *f, double x, double y, double r, fig_mark m, fig_rgb c, int filled,
                double alpha)
{
    if (m == FIG_MARK_NONE) return;
    marker_path(f, x, y, r, m);
    if (filled) {
        set_rgb(f, c, alpha);
        if (r >= 3) {
            cairo_fill_preserve(f->cr);
            set_rgb(f, (fig_rgb){ 0.6 * c.r, 0.6 * c.g, 0.6 * c.b }, alpha);
            cairo_set_line_width(f->cr, 0.8);
            cairo_stroke(f->cr);
        } else {
            cairo_fill(f->cr);
        }
    } else {
        cairo_set_source_rgb(f->cr, 1, 1, 1);
        cairo_fill_preserve(f->cr);
        set_rgb(f, c, alpha);
        cairo_set_line_width(f->cr, 1.6);
        cairo_stroke(f->cr);
    }
}

void fig_errbar(fig *f, double x, double y0, double y1, double cap, fig_rgb c)
{
    cairo_t *cr = f->cr;
    set_rgb(f, c, 1);
    cairo_set_line_width(cr, 1.4);
    cairo_move_to(cr, x, y0);
    cairo_line_to(cr, x, y1);
    cairo_move_to(cr, x - cap, y0);
    cairo_line_to(cr, x + cap, y0);
    cairo_move_to(cr, x - cap, y1);
    cairo_line_to(cr, x + cap, y1);
    cairo_stroke(cr);
}

/* ---- axes -------------------------------------------------------------------- */

enum { FIG_MAX_TICKS = 64 };
static const double tick_len = 5, tick_gap = 4, label_gap = 7;

/* A 1-unit line centred on a pixel in PNGs, so that it stays crisp. */
static double crisp(const fig *f, double v)
{
    return f->fmt == PLOT_PNG ? floor(v) + 0.5 : v;
}

static int axis_ticks(double lo, double hi, int target, double *t, double *step)
{
    return plot_ticks(lo, hi, target > 0 ? target : 6, t, FIG_MAX_TICKS, step);
}

double fig_ax_x(const fig_axes *a, double v)
{
    return a->x + (v - a->x0) / (a->x1 - a->x0) * a->w;
}

double fig_ax_y(const fig_axes *a, double v)
{
    return a->y + a->h - (v - a->y0) / (a->y1 - a->y0) * a->h;
}

static double max_ytick_width(fig *f, const fig_axes *a)
{
    double t[FIG_MAX_TICKS], step, wmax = 0;
    char buf[64];
    const int n = axis_ticks(a->y0, a->y1, a->yticks, t, &step);
    for (int i = 0; i < n; i++) {
        plot_tick_label(t[i], step, buf, sizeof buf);
        wmax = fmax(wmax, fig_text_width(f, buf, FIG_FONT_TICK, 0));
    }
    return wmax;
}

double fig_axes_left(fig *f, const fig_axes *a)
{
    double need = tick_len + 2;
    if (a->y_tick_labels) need += tick_gap + max_ytick_width(f, a);
    if (a->ylabel) need += label_gap + fig_text_height(FIG_FONT_LABEL);
    return need + 4;
}

/* Vertical room taken by the x tick labels. */
static double xtick_room(fig *f, const fig_axes *a)
{
    if (!a->x_tick_labels) return 0;
    const double th = fig_text_height(FIG_FONT_TICK);
    if (!a->xcats || a->xcat_angle == 0) return tick_gap + th;
    double wmax = 0;
    for (int i = 0; i < a->n_xcats; i++)
        wmax = fmax(wmax, fig_text_width(f, a->xcats[i], FIG_FONT_TICK, 0));
    return tick_gap + wmax * sin(a->xcat_angle) + th * cos(a->xcat_angle);
}

double fig_axes_bottom(fig *f, const fig_axes *a)
{
    double need = tick_len + xtick_room(f, a);
    if (a->xlabel) need += label_gap + fig_text_height(FIG_FONT_LABEL);
    return need + 4;
}

void fig_axes_back(fig *f, const fig_axes *a)
{
    cairo_t *cr = f->cr;
    double t[FIG_MAX_TICKS], step;
    cairo_set_line_width(cr, 1);
    set_rgb(f, FIG_GRID, 1);
    if (!a->xcats) {
        const int n = axis_ticks(a->x0, a->x1, a->xticks, t, &step);
        for (int i = 0; i < n; i++) {
            const double x = crisp(f, fig_ax_x(a, t[i]));
            cairo_move_to(cr, x, a->y);
            cairo_line_to(cr, x, a->y + a->h);
        }
    }
    const int n = axis_ticks(a->y0, a->y1, a->yticks, t, &step);
    for (int i = 0; i < n; i++) {
        const double y = crisp(f, fig_ax_y(a, t[i]));
        cairo_move_to(cr, a->x, y);
        cairo_line_to(cr, a->x + a->w, y);
    }
    cairo_stroke(cr);
}

void fig_axes_front(fig *f, const fig_axes *a)
{
    cairo_t *cr = f->cr;
    double t[FIG_MAX_TICKS], step;
    char buf[64];
    const double bottom = a->y + a->h, th = fig_text_height(FIG_FONT_TICK);
    set_rgb(f, FIG_INK, 1);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, crisp(f, a->x), crisp(f, a->y), round(a->w), round(a->h));
    cairo_stroke(cr);

    /* x ticks: numbers, or categories at 0..n-1 */
    int nx;
    if (a->xcats) {
        nx = a->n_xcats < FIG_MAX_TICKS ? a->n_xcats : FIG_MAX_TICKS;
        for (int i = 0; i < nx; i++) t[i] = i;
        step = 1;
    } else {
        nx = axis_ticks(a->x0, a->x1, a->xticks, t, &step);
    }
    for (int i = 0; i < nx; i++) {
        const double x = crisp(f, fig_ax_x(a, t[i]));
        set_rgb(f, FIG_INK, 1);
        cairo_move_to(cr, x, crisp(f, bottom));
        cairo_line_to(cr, x, bottom + tick_len);
        cairo_stroke(cr);
        if (!a->x_tick_labels) continue;
        const double y = bottom + tick_len + tick_gap;
        if (a->xcats && a->xcat_angle != 0)
            fig_text(f, x + 0.3 * th * sin(a->xcat_angle), y, FIG_FONT_TICK, 0, 1,
                     0.5 * cos(a->xcat_angle), a->xcat_angle, FIG_INK, a->xcats[i]);
        else if (a->xcats)
            fig_text(f, x, y, FIG_FONT_TICK, 0, 0.5, 0, 0, FIG_INK, a->xcats[i]);
        else {
            plot_tick_label(t[i], step, buf, sizeof buf);
            fig_text(f, x, y, FIG_FONT_TICK, 0, 0.5, 0, 0, FIG_INK, buf);
        }
    }

    const int ny = axis_ticks(a->y0, a->y1, a->yticks, t, &step);
    for (int i = 0; i < ny; i++) {
        const double y = crisp(f, fig_ax_y(a, t[i]));
        set_rgb(f, FIG_INK, 1);
        cairo_move_to(cr, crisp(f, a->x), y);
        cairo_line_to(cr, a->x - tick_len, y);
        cairo_stroke(cr);
        if (!a->y_tick_labels) continue;
        plot_tick_label(t[i], step, buf, sizeof buf);
        fig_text(f, a->x - tick_len - tick_gap, y, FIG_FONT_TICK, 0, 1, 0.5, 0, FIG_INK, buf);
    }

    if (a->xlabel)
        fig_text(f, a->x + a->w / 2, bottom + tick_len + xtick_room(f, a) + label_gap,
                 FIG_FONT_LABEL, 0, 0.5, 0, 0, FIG_INK, a->xlabel);
    if (a->ylabel) {
        double x = a->x - tick_len - label_gap;
        if (a->y_tick_labels) x -= tick_gap + max_ytick_width(f, a);
        fig_text(f, x, a->y + a->h / 2, FIG_FONT_LABEL, 0, 0.5, 1, FIG_PI / 2, FIG_INK, a->ylabel);
    }
}

void fig_clip(fig *f, const fig_axes *a)
{
    cairo_save(f->cr);
    cairo_rectangle(f->cr, a->x, a->y, a->w, a->h);
    cairo_clip(f->cr);
}

void fig_unclip(fig *f)
{
    cairo_restore(f->cr);
}

void fig_pad_range(double *lo, double *hi, double frac)
{
    if (!isfinite(*lo) || !isfinite(*hi) || *lo > *hi) {
        *lo = -1;
        *hi = 1;
        return;
    }
    double span = *hi - *lo;
    if (span <= 1e-12 * fmax(1, fabs(*lo))) {
        const double half = fabs(*lo) > 0 ? 0.05 * fabs(*lo) : 0.5;
        *lo -= half;
        *hi += half;
        return;
    }
    *lo -= frac * span;
    *hi += frac * span;
}

/* ---- legends ------------------------------------------------------------------- */

static const double key_symbol = 28, key_gap = 6, key_sep = 20, key_row = 21;

static double key_width(fig *f, const fig_key *k)
{
    return key_symbol + key_gap + fig_text_width(f, k->label, FIG_FONT_LEGEND, 0);
}

/* Number of keys from i that fit on one row of the given width (at least 1). */
static int row_fill(fig *f, const fig_key *k, int n, int i, double width, double *row_w)
{
    double w = key_width(f, &k[i]);
    int j = i + 1;
    while (j < n && w + key_sep + key_width(f, &k[j]) <= width)
        w += key_sep + key_width(f, &k[j++]);
    *row_w = w;
    return j - i;
}

double fig_legend_height(fig *f, const fig_key *k, int n, double width)
{
    int rows = 0;
    double w;
    for (int i = 0; i < n; i += row_fill(f, k, n, i, width, &w)) rows++;
    return rows * key_row;
}

static void key_symbol_draw(fig *f, const fig_key *k, double x, double y)
{
    cairo_t *cr = f->cr;
    if (k->line) {
        set_rgb(f, k->color, 1);
        cairo_set_line_width(cr, 2);
        if (k->line == 2) {
            const double dash[2] = { 6, 4 };
            cairo_set_dash(cr, dash, 2, 0);
        }
        cairo_move_to(cr, x, y);
        cairo_line_to(cr, x + key_symbol, y);
        cairo_stroke(cr);
        cairo_set_dash(cr, NULL, 0, 0);
    }
    if (k->errbar) fig_errbar(f, x + key_symbol / 2, y - 7, y + 7, 3, k->color);
    fig_marker(f, x + key_symbol / 2, y, 4.5, k->marker, k->color, k->filled, 1);
}

void fig_legend(fig *f, double x, double y, double width, const fig_key *k, int n)
{
    for (int i = 0; i < n;) {
        double row_w;
        const int m = row_fill(f, k, n, i, width, &row_w);
        double cx = x + (width - row_w) / 2;
        const double cy = y + key_row / 2;
        for (int j = i; j < i + m; j++) {
            key_symbol_draw(f, &k[j], cx, cy);
            fig_text(f, cx + key_symbol + key_gap, cy, FIG_FONT_LEGEND, 0, 0, 0.5, 0, FIG_INK,
                     k[j].label);
            cx += key_width(f, &k[j]) + key_sep;
        }
        i += m;
        y += key_row;
    }
}
