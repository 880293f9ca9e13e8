/* Figure formats, sizes and axis ticks: the parts of plot.h that do not need
 * cairo (the drawing is in figure.c and plot_*.c, or plot_none.c). */
#include "plot.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const format_names[] = { "png", "svg", "pdf" };

const char *plot_format_name(plot_format fmt)
{
    return (unsigned)fmt < 3 ? format_names[fmt] : "?";
}

/* The format named by path's extension, or -1. */
static int format_of_path(const char *path)
{
    const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
    if (!dot || (slash && dot < slash)) return -1;
    for (int k = 0; k < 3; k++)
        if (!strcasecmp(dot + 1, format_names[k])) return k;
    return -1;
}

int plot_format_pick(const char *name, const char *path, plot_format *fmt, char *err, size_t errsz)
{
    const int by_ext = format_of_path(path);
    if (name) {
        int k = -1;
        for (int i = 0; i < 3; i++)
            if (!strcasecmp(name, format_names[i])) k = i;
        if (k < 0) {
            snprintf(err, errsz, "unknown figure format \"%s\" (png, svg or pdf)", name);
            return -1;
        }
        if (by_ext >= 0 && by_ext != k) {
            snprintf(err, errsz, "%s: the format is %s but the file name ends in .%s", path, name,
                     format_names[by_ext]);
            return -1;
        }
        *fmt = (plot_format)k;
        return 0;
    }
    if (by_ext < 0) {
        snprintf(
            err, errsz,
            "cannot tell the figure format of %s: name it .png, .svg or .pdf, or pass --format",
            path);
        return -1;
    }
    *fmt = (plot_format)by_ext;
    return 0;
}

int plot_parse_size(const char *s, int *w, int *h, char *err, size_t errsz)
{
    char *end;
    errno = 0;
    long a = strtol(s, &end, 10), b = 0;
    int ok = end != s && (*end == 'x' || *end == 'X');
    if (ok) {
        const char *p = end + 1;
        b = strtol(p, &end, 10);
        ok = end != p && !*end && !errno;
    }
    if (!ok || a < 64 || a > 10000 || b < 64 || b > 10000) {
        snprintf(err, errsz, "figure size: expected WxH with W and H in [64, 10000], got \"%s\"",
                 s);
        return -1;
    }
    *w = (int)a;
    *h = (int)b;
    return 0;
}

/* The 1-2-5 step closest above raw. */
static double nice_step(double raw)
{
    const double p = pow(10, floor(log10(raw))), m = raw / p;
    return (m <= 1.0001 ? 1 : m <= 2.0001 ? 2 : m <= 5.0001 ? 5 : 10) * p;
}

int plot_ticks(double lo, double hi, int target, double *ticks, int max, double *step)
{
    *step = 0;
    if (!isfinite(lo) || !isfinite(hi) || !(hi > lo) || target < 1 || max < 1) return 0;
    const double s = nice_step((hi - lo) / target);
    const double first = ceil(lo / s - 1e-9);
    int n = 0;
    for (double k = first; n < max; k += 1) {
        double v = k * s;
        if (v > hi + 1e-9 * s) break;
        ticks[n++] = fabs(v) < 1e-9 * s ? 0 : v;
    }
    *step = s;
    return n;
}

void plot_tick_label(double v, double step, char *buf, size_t size)
{
    int dec = 0;
    if (step > 0 && isfinite(step))
        while (dec < 8 && fabs(step * pow(10, dec) - nearbyint(step * pow(10, dec))) >
                              1e-6 * step * pow(10, dec))
            dec++;
    snprintf(buf, size, "%.*f", dec, v);
    if (!strcmp(buf, "-0") || (buf[0] == '-' && strspn(buf + 1, "0.") == strlen(buf + 1)))
        memmove(buf, buf + 1, strlen(buf));
}

void plot_curve_opts_default(plot_curve_opts *o)
{
    memset(o, 0, sizeof *o);
    o->reference = NAN;
    o->ylo = o->yhi = NAN;
}

void plot_results_opts_default(plot_results_opts *o)
{
    memset(o, 0, sizeof *o);
}
