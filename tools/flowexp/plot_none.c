/* The figures of plot.h in a build without cairo: each one fails with a
 * message saying which figure cannot be drawn and why. */
#include <stdio.h>

#include "plot.h"

int plot_available(void)
{
    return 0;
}

const char *plot_backend(void)
{
    return "none (built without cairo)";
}

int plot_check(const char *what, const char *path, char *err, size_t errsz)
{
    snprintf(err, errsz,
             "cannot draw %s (%s): this flowexp was built without cairo; install libcairo2-dev "
             "and rebuild (meson setup --reconfigure -Dcairo=enabled)",
             what, path ? path : "no file");
    return -1;
}

int plot_graph_samples(const char *path, plot_format fmt, const plot_graphs *data,
                       const plot_graphs *model, const plot_graph_opts *o, char *err, size_t errsz)
{
    (void)fmt, (void)data, (void)model, (void)o;
    return plot_check("the graph samples", path, err, errsz);
}

int plot_image_grid(const char *path, plot_format fmt, const uint8_t *pix, int n, int c, int h,
                    int w, int rows, const char *const *row_labels, const char *title, char *err,
                    size_t errsz)
{
    (void)fmt, (void)pix, (void)n, (void)c, (void)h, (void)w, (void)rows, (void)row_labels,
        (void)title;
    return plot_check("the image grid", path, err, errsz);
}

int plot_learning_curves(const char *log_csv, const char *out, plot_format fmt,
                         const plot_curve_opts *o, char *err, size_t errsz)
{
    (void)log_csv, (void)fmt, (void)o;
    return plot_check("the learning curves", out, err, errsz);
}

int plot_results(const char *results_csv, const char *out, plot_format fmt,
                 const plot_results_opts *o, char *err, size_t errsz)
{
    (void)results_csv, (void)fmt, (void)o;
    return plot_check("the results figure", out, err, errsz);
}
