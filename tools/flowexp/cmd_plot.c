/* flowexp plot: figures from files a run leaves behind.
 *
 *   flowexp plot curves --log DIR/log.csv --out F     learning curves
 *   flowexp plot table --csv results.csv --out F      results beside the paper
 *
 * The format (png, svg, pdf) comes from --format or the extension of --out. */
#include <math.h>
#include <string.h>

#include "args.h"
#include "plot.h"
#include "tool.h"

/* Format and size options shared by the figures; 0, or an exit status. */
static int figure_options(const char *cmd, const char *out, const char *format, const char *size,
                          plot_format *fmt, int *w, int *h)
{
    char err[512];
    if (plot_format_pick(format, out, fmt, err, sizeof err) < 0 ||
        (size && plot_parse_size(size, w, h, err, sizeof err) < 0)) {
        tool_error(cmd, "%s", err);
        return EXIT_USAGE;
    }
    return 0;
}

static int plot_curves_cmd(int argc, char **argv)
{
    const char *log = NULL, *out = NULL, *format = NULL, *size = NULL, *title = NULL,
               *ref_label = NULL, *ylabel = NULL;
    double reference = NAN, ymin = NAN, ymax = NAN;
    arg_spec specs[] = {
        { "log", ARG_STRING, &log, "F.csv", "training log (log.csv of flowexp train)", 0, 0, NULL, 1, 0 },
        { "out", ARG_STRING, &out, "F", "figure file (.png, .svg or .pdf)", 0, 0, NULL, 1, 0 },
        { "format", ARG_CHOICE, &format, NULL, "figure format (default: from the extension)", 0, 0, "png|svg|pdf", 0, 0 },
        { "reference", ARG_DOUBLE, &reference, "V", "horizontal reference line, e.g. the dataset entropy", -1e30, 1e30, NULL, 0, 0 },
        { "reference-label", ARG_STRING, &ref_label, "TEXT", "its legend text (default \"reference\")", 0, 0, NULL, 0, 0 },
        { "title", ARG_STRING, &title, "TEXT", "title (default: the log's path)", 0, 0, NULL, 0, 0 },
        { "ylabel", ARG_STRING, &ylabel, "TEXT", "y-axis label (default: from the log's columns)", 0, 0, NULL, 0, 0 },
        { "ymin", ARG_DOUBLE, &ymin, "V", "lower end of the y axis (default: from the data)", -1e30, 1e30, NULL, 0, 0 },
        { "ymax", ARG_DOUBLE, &ymax, "V", "upper end of the y axis (default: from the data)", -1e30, 1e30, NULL, 0, 0 },
        { "size", ARG_STRING, &size, "WxH", "figure size in pixels (points in a PDF; default 760x480)", 0, 0, NULL, 0, 0 },
    };
    const int n_specs = (int)(sizeof specs / sizeof specs[0]);
    char err[1024];
    int help;
    if (args_parse(specs, n_specs, argc, argv, NULL, 0, NULL, &help, err, sizeof err) < 0) {
        tool_error("plot curves", "%s", err);
        return EXIT_USAGE;
    }
    if (help) {
        args_print_help("flowexp plot curves --log DIR/log.csv --out F [--reference V "
                        "--reference-label TEXT] [--title TEXT]",
                        "Train and validation loss against the optimizer step from a training log: "
                        "a CSV file whose\nheader names \"step\" and \"train_nll,valid_nll\" (nats per "
                        "node) or \"train_bpd,valid_bpd\" (bits/dim).",
                        specs, n_specs);
        return 0;
    }
    plot_curve_opts o;
    plot_curve_opts_default(&o);
    plot_format fmt;
    int rc = figure_options("plot curves", out, format, size, &fmt, &o.width, &o.height);
    if (rc) return rc;
    if (!isnan(ymin) && !isnan(ymax) && !(ymin < ymax)) {
        tool_error("plot curves", "--ymin %g is not below --ymax %g", ymin, ymax);
        return EXIT_USAGE;
    }
    if (ref_label && isnan(reference)) {
        tool_error("plot curves", "--reference-label needs --reference");
        return EXIT_USAGE;
    }
    o.title = title;
    o.reference = reference;
    o.reference_label = ref_label;
    o.ylabel = ylabel;
    o.ylo = ymin;
    o.yhi = ymax;
    if (plot_check("the learning curves", out, err, sizeof err) < 0 ||
        plot_learning_curves(log, out, fmt, &o, err, sizeof err) < 0) {
        tool_error("plot curves", "%s", err);
        return 1;
    }
    printf("wrote %s (%s)\n", out, plot_format_name(fmt));
    return 0;
}

static int plot_table_cmd(int argc, char **argv)
{
    plot_results_opts o;
    plot_results_opts_default(&o);
    const char *csv = NULL, *out = NULL, *format = NULL, *size = NULL;
    arg_spec specs[] = {
        { "csv", ARG_STRING, &csv, "F.csv", "results: header with dataset, model, [seed,] value columns", 0, 0, NULL, 1, 0 },
        { "out", ARG_STRING, &out, "F", "figure file (.png, .svg or .pdf)", 0, 0, NULL, 1, 0 },
        { "format", ARG_CHOICE, &format, NULL, "figure format (default: from the extension)", 0, 0, "png|svg|pdf", 0, 0 },
        { "value", ARG_STRING, &o.value, "COLUMN", "value column (default: the first not named dataset, model, seed)", 0, 0, NULL, 0, 0 },
        { "paper", ARG_STRING, &o.paper_csv, "F.csv", "the paper's numbers: dataset,model,value[,std]", 0, 0, NULL, 0, 0 },
        { "paper-label", ARG_STRING, &o.paper_label, "TEXT", "legend text for them (default \"paper\")", 0, 0, NULL, 0, 0 },
        { "names", ARG_STRING, &o.names_csv, "F.csv", "display names of the ids: id,name", 0, 0, NULL, 0, 0 },
        { "reference-column", ARG_STRING, &o.reference_column, "COLUMN", "per-dataset reference line from this column (its mean)", 0, 0, NULL, 0, 0 },
        { "reference-label", ARG_STRING, &o.reference_label, "TEXT", "its legend text (default: the column name)", 0, 0, NULL, 0, 0 },
        { "title", ARG_STRING, &o.title, "TEXT", "title", 0, 0, NULL, 0, 0 },
        { "ylabel", ARG_STRING, &o.ylabel, "TEXT", "y-axis label (default: the value column's name)", 0, 0, NULL, 0, 0 },
        { "size", ARG_STRING, &size, "WxH", "figure size in pixels (points in a PDF; default 120 + 230 per dataset x 480)", 0, 0, NULL, 0, 0 },
    };
    const int n_specs = (int)(sizeof specs / sizeof specs[0]);
    char err[1024];
    int help;
    if (args_parse(specs, n_specs, argc, argv, NULL, 0, NULL, &help, err, sizeof err) < 0) {
        tool_error("plot table", "%s", err);
        return EXIT_USAGE;
    }
    if (help) {
        args_print_help("flowexp plot table --csv results.csv [--paper paper.csv] [--names names.csv] "
                        "--out F",
                        "Per dataset, the mean over seeds of every model with an error bar of the "
                        "standard deviation,\nbeside the paper's value (a hollow diamond).  CSV files "
                        "have a header row; see the README.",
                        specs, n_specs);
        return 0;
    }
    plot_format fmt;
    int rc = figure_options("plot table", out, format, size, &fmt, &o.width, &o.height);
    if (rc) return rc;
    if (o.reference_label && !o.reference_column) {
        tool_error("plot table", "--reference-label needs --reference-column");
        return EXIT_USAGE;
    }
    if (plot_check("the results figure", out, err, sizeof err) < 0 ||
        plot_results(csv, out, fmt, &o, err, sizeof err) < 0) {
        tool_error("plot table", "%s", err);
        return 1;
    }
    printf("wrote %s (%s)\n", out, plot_format_name(fmt));
    return 0;
}

int cmd_plot(int argc, char **argv)
{
    const char *what = argc > 0 ? argv[0] : "";
    if (!strcmp(what, "curves")) return plot_curves_cmd(argc - 1, argv + 1);
    if (!strcmp(what, "table")) return plot_table_cmd(argc - 1, argv + 1);
    if (!strcmp(what, "--help") || !strcmp(what, "-h") || !strcmp(what, "help")) {
        printf("usage: flowexp plot curves|table [options]  (figures: %s)\n\n"
               "  curves   learning curves from a training log (log.csv)\n"
               "  table    results over seeds beside the paper's numbers\n\n"
               "`flowexp plot <figure> --help` lists a figure's options.\n",
               plot_backend());
        return 0;
    }
    tool_error("plot", "%s%s%s (expected curves or table; see flowexp plot --help)",
               what[0] ? "unknown figure \"" : "which figure?", what, what[0] ? "\"" : "");
    return EXIT_USAGE;
}
