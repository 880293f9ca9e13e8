/* The learning curves `flowexp train` draws beside log.csv (curves.png), for
 * graph and image runs alike. */
#include <math.h>
#include <stdio.h>

#include "plot.h"
#include "tool.h"

void train_draw_curves(const char *log_path, const char *dir, const char *title, double reference,
                       const char *reference_label, int quiet)
{
    if (!plot_available()) return; /* a build without cairo draws nothing */
    char out[4200], err[512];
    if (snprintf(out, sizeof out, "%s/curves.png", dir) >= (int)sizeof out) return;
    plot_curve_opts o;
    plot_curve_opts_default(&o);
    o.title = title;
    if (isfinite(reference)) {
        o.reference = reference;
        o.reference_label = reference_label;
    }
    if (plot_learning_curves(log_path, out, PLOT_PNG, &o, err, sizeof err) < 0 && !quiet)
        fprintf(stderr, "flowexp train: warning: no learning curves: %s\n", err);
}
