/* The figure module of the flowexp tools (tools/flowexp/plot.h, csv.h): axis
 * ticks and labels, formats and sizes, the CSV reader, and every figure kind
 * in every format (file signature, PNG size, image-grid pixels read back),
 * with the error paths: bad shapes, bad tables, bad output paths (a message,
 * nothing left behind).  In a build without cairo every figure must fail
 * with a message naming cairo. */
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "csv.h"
#include "plot.h"
#include "tool_config.h"

#if FLOWEXP_HAVE_CAIRO
#include <cairo.h>
#endif

static char dir[64];
static char err[1024];

static void setup_dir(void)
{
    snprintf(dir, sizeof dir, "/tmp/fxp-plot-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    err[0] = '\0';
}

static void teardown_dir(void)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            if (unlink(p) != 0) rmdir(p);
        }
    closedir(d);
    rmdir(dir);
}

static const char *in_dir(const char *name)
{
    static char p[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

/* Files in the test directory (to see that failures leave nothing). */
static int dir_entries(void)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

/* The file starts with the signature of its format; a PNG's IHDR size is
 * returned in *w, *h. */
static void check_file(const char *path, plot_format fmt, int *w, int *h)
{
    unsigned char b[4096] = { 0 };
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "%s missing", path);
    const size_t n = fread(b, 1, sizeof b - 1, f);
    fseek(f, -32, SEEK_END);
    char tail[33] = { 0 };
    const size_t nt = fread(tail, 1, 32, f);
    fclose(f);
    switch (fmt) {
    case PLOT_PNG:
        ck_assert_uint_ge(n, 24);
        ck_assert_int_eq(memcmp(b, "\x89PNG\r\n\x1a\n", 8), 0);
        ck_assert_int_eq(memcmp(b + 12, "IHDR", 4), 0);
        *w = b[16] << 24 | b[17] << 16 | b[18] << 8 | b[19];
        *h = b[20] << 24 | b[21] << 16 | b[22] << 8 | b[23];
        break;
    case PLOT_SVG:
        ck_assert_ptr_nonnull(strstr((char *)b, "<svg"));
        ck_assert_ptr_nonnull(strstr(tail, "</svg>"));
        break;
    case PLOT_PDF:
        ck_assert_int_eq(memcmp(b, "%PDF-", 5), 0);
        ck_assert_uint_gt(nt, 6);
        ck_assert_ptr_nonnull(strstr(tail, "%%EOF"));
        break;
    }
}

/* ---- ticks, formats, sizes ------------------------------------------------------ */

START_TEST(test_ticks)
{
    double t[64], step;
    int n = plot_ticks(0, 1, 5, t, 64, &step);
    ck_assert_int_eq(n, 6);
    ck_assert_double_eq_tol(step, 0.2, 1e-12);
    for (int i = 0; i < n; i++) ck_assert_double_eq_tol(t[i], 0.2 * i, 1e-12);
    n = plot_ticks(3.57, 4.31, 6, t, 64, &step);
    ck_assert_double_eq_tol(step, 0.2, 1e-12);
    ck_assert_int_eq(n, 4);
    ck_assert_double_eq_tol(t[0], 3.6, 1e-12);
    ck_assert_double_eq_tol(t[3], 4.2, 1e-12);
    n = plot_ticks(-17.3, 17.3, 6, t, 64, &step);
    ck_assert_double_eq(step, 10);
    ck_assert_int_eq(n, 3);
    ck_assert(t[1] == 0 && !signbit(t[1]));
    n = plot_ticks(0, 20000, 7, t, 64, &step);
    ck_assert_double_eq(step, 5000);
    ck_assert_int_eq(n, 5);
    /* a step of 1, 2 or 5 times a power of ten, always inside the range */
    for (int k = 0; k < 200; k++) {
        const double lo = -50 + 0.37 * k, hi = lo + 0.01 + 0.13 * k * k;
        n = plot_ticks(lo, hi, 6, t, 64, &step);
        ck_assert_int_ge(n, 2);
        ck_assert_int_le(n, 14);
        const double m = step / pow(10, floor(log10(step) + 1e-12));
        ck_assert_msg(fabs(m - 1) < 1e-9 || fabs(m - 2) < 1e-9 || fabs(m - 5) < 1e-9, "step %g",
                      step);
        ck_assert(t[0] >= lo - 1e-9 * step && t[n - 1] <= hi + 1e-9 * step);
    }
    ck_assert_int_eq(plot_ticks(1, 1, 6, t, 64, &step), 0);
    ck_assert_int_eq(plot_ticks(2, 1, 6, t, 64, &step), 0);
    ck_assert_int_eq(plot_ticks(NAN, 1, 6, t, 64, &step), 0);
    ck_assert_int_eq(plot_ticks(0, INFINITY, 6, t, 64, &step), 0);
}
END_TEST

START_TEST(test_tick_labels)
{
    char b[64];
    plot_tick_label(0.6000000001, 0.2, b, sizeof b);
    ck_assert_str_eq(b, "0.6");
    plot_tick_label(-0.0, 0.1, b, sizeof b);
    ck_assert_str_eq(b, "0.0");
    plot_tick_label(-1e-17, 1, b, sizeof b);
    ck_assert_str_eq(b, "0");
    plot_tick_label(15000, 5000, b, sizeof b);
    ck_assert_str_eq(b, "15000");
    plot_tick_label(-10, 10, b, sizeof b);
    ck_assert_str_eq(b, "-10");
    plot_tick_label(0.005, 0.005, b, sizeof b);
    ck_assert_str_eq(b, "0.005");
    plot_tick_label(4.25, 0.05, b, sizeof b);
    ck_assert_str_eq(b, "4.25");
}
END_TEST

START_TEST(test_formats_and_sizes)
{
    plot_format f;
    ck_assert_int_eq(plot_format_pick(NULL, "a/b.PNG", &f, err, sizeof err), 0);
    ck_assert_int_eq(f, PLOT_PNG);
    ck_assert_int_eq(plot_format_pick(NULL, "b.svg", &f, err, sizeof err), 0);
    ck_assert_int_eq(f, PLOT_SVG);
    ck_assert_int_eq(plot_format_pick("pdf", "figure", &f, err, sizeof err), 0);
    ck_assert_int_eq(f, PLOT_PDF);
    ck_assert_int_eq(plot_format_pick("PDF", "x.pdf", &f, err, sizeof err), 0);
    ck_assert_int_eq(f, PLOT_PDF);
    ck_assert_str_eq(plot_format_name(PLOT_SVG), "svg");
    err[0] = '\0';
    ck_assert_int_eq(plot_format_pick(NULL, "runs.v2/figure", &f, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "--format"));
    err[0] = '\0';
    ck_assert_int_eq(plot_format_pick(NULL, "x.gif", &f, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "x.gif"));
    err[0] = '\0';
    ck_assert_int_eq(plot_format_pick("pdf", "x.png", &f, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, ".png"));
    err[0] = '\0';
    ck_assert_int_eq(plot_format_pick("gif", "x", &f, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "gif"));

    int w, h;
    ck_assert_int_eq(plot_parse_size("900x500", &w, &h, err, sizeof err), 0);
    ck_assert_int_eq(w, 900);
    ck_assert_int_eq(h, 500);
    const char *bad[] = { "900",       "900x",     "x500",  "10x500",
                          "900x50000", "900x500x", "a x b", "-900x500" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        ck_assert_int_eq(plot_parse_size(bad[i], &w, &h, err, sizeof err), -1);
        ck_assert_ptr_nonnull(strstr(err, "WxH"));
    }
}
END_TEST

/* ---- CSV tables --------------------------------------------------------------------- */

START_TEST(test_csv_read)
{
    write_text(in_dir("t.csv"), "a, b ,c\r\n\n1,\"x, \"\"y\"\"\",nan\r\n  \n2.5,,-3\n");
    csv_table t;
    ck_assert_int_eq(csv_read(in_dir("t.csv"), &t, err, sizeof err), 0);
    ck_assert_int_eq(t.n_cols, 3);
    ck_assert_int_eq(t.n_rows, 2);
    ck_assert_int_eq(csv_col(&t, "b"), 1);
    ck_assert_int_eq(csv_col(&t, "d"), -1);
    ck_assert_str_eq(csv_cell(&t, 0, 1), "x, \"y\"");
    ck_assert_str_eq(csv_cell(&t, 1, 1), "");
    double v;
    ck_assert_int_eq(csv_number(&t, 1, 0, &v, err, sizeof err), 0);
    ck_assert_double_eq(v, 2.5);
    ck_assert_int_eq(csv_number(&t, 0, 2, &v, err, sizeof err), 1);
    ck_assert(isnan(v));
    ck_assert_int_eq(csv_number(&t, 1, 1, &v, err, sizeof err), 1);
    err[0] = '\0';
    ck_assert_int_eq(csv_number(&t, 0, 1, &v, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, ":3:")); /* the file's line 3 */
    csv_free(&t);

    write_text(in_dir("inf.csv"), "a\ninf\n");
    ck_assert_int_eq(csv_read(in_dir("inf.csv"), &t, err, sizeof err), 0);
    ck_assert_int_eq(csv_number(&t, 0, 0, &v, err, sizeof err), -1);
    csv_free(&t);

    struct {
        const char *text, *want;
    } bad[] = {
        { "", "empty" },
        { "\n\n", "empty" },
        { "a,b\n1,2,3\n", ":2: 3 fields" },
        { "a,b\n1\n", ":2: 1 fields" },
        { "a,\"b\n", "unterminated" },
        { "a,\"b\"c\n", "after a quoted" },
        { "a,,c\n", "no name" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_text(in_dir("bad.csv"), bad[i].text);
        err[0] = '\0';
        ck_assert_int_eq(csv_read(in_dir("bad.csv"), &t, err, sizeof err), -1);
        ck_assert_msg(strstr(err, bad[i].want) != NULL, "\"%s\": %s", bad[i].text, err);
        csv_free(&t);
    }
    err[0] = '\0';
    ck_assert_int_eq(csv_read(in_dir("none.csv"), &t, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "none.csv"));
    csv_free(&t);
}
END_TEST

/* ---- figures ----------------------------------------------------------------------------- */

/* Graphs [n, N, 3]: node i of graph g near mode i of a circle. */
static float *make_graphs(int n, int N)
{
    float *x = malloc((size_t)n * N * 3 * sizeof *x);
    ck_assert_ptr_nonnull(x);
    for (int g = 0; g < n; g++)
        for (int i = 0; i < N; i++) {
            float *p = x + ((size_t)g * N + i) * 3;
            p[0] = 5 * cosf(6.2832f * i / N) + 0.3f * sinf(g * 1.7f + i);
            p[1] = 5 * sinf(6.2832f * i / N) + 0.3f * cosf(g * 2.3f + i);
            p[2] = 100; /* a third feature, not drawn */
        }
    return x;
}

static const char *const log_nll = "step,epoch,train_nll,valid_nll,lr,seconds\n"
                                   "30,0.5,6.04,5.99,0.0015,0.02\n"
                                   "60,1.0,5.72,5.41,0.0015,0.07\n"
                                   "90,1.5,5.20,,0.0015,0.11\n"
                                   "120,2.0,4.71,4.59,0.0015,0.15\n";

static const char *const results_csv = "dataset,model,seed,nll,entropy\n"
                                       "mog4,gnf,0,3.70,3.63\nmog4,gnf,1,3.68,3.63\n"
                                       "mog4,coupling,0,4.25,3.63\nmog4,coupling,1,4.27,3.63\n"
                                       "mog9,gnf,0,4.61,4.26\nmog9,gnf,1,4.60,4.26\n"
                                       "mog9,coupling,0,5.17,4.26\n";

static const char *const paper_csv =
    "dataset,model,value,std\n"
    "mog4,gnf,3.69,0.016\nmog9,coupling,6.14,\nmog9,other,5.0,0.1\n";

START_TEST(test_every_figure_every_format)
{
    if (!plot_available()) return;
    float *x = make_graphs(40, 5);
    const plot_graphs data = { x, 40, 5, 3, "data" }, model = { x, 30, 5, 3, NULL };
    write_text(in_dir("log.csv"), log_nll);
    write_text(in_dir("results.csv"), results_csv);
    write_text(in_dir("paper.csv"), paper_csv);
    write_text(in_dir("names.csv"), "id,name\nmog4,MoG-4\ngnf,GNF\n");
    uint8_t pix[6 * 3 * 8 * 8];
    for (size_t i = 0; i < sizeof pix; i++) pix[i] = (uint8_t)(i * 7);
    const char *ext[3] = { "png", "svg", "pdf" };
    for (int k = 0; k < 3; k++) {
        const plot_format fmt = (plot_format)k;
        char name[64];
        int w = 0, h = 0;

        plot_graph_opts go = { "gnf-gce", "mog4", 600, 1.0, 1, 3, 700, 620 };
        snprintf(name, sizeof name, "graphs.%s", ext[k]);
        ck_assert_msg(plot_graph_samples(in_dir(name), fmt, &data, &model, &go, err, sizeof err) ==
                          0,
                      "%s", err);
        check_file(in_dir(name), fmt, &w, &h);
        if (fmt == PLOT_PNG) ck_assert(w == 700 && h == 620);
        go.width = go.height = 0;
        go.color_nodes = go.graphs = 0;
        snprintf(name, sizeof name, "model-only.%s", ext[k]);
        ck_assert_msg(plot_graph_samples(in_dir(name), fmt, NULL, &model, &go, err, sizeof err) ==
                          0,
                      "%s", err);
        check_file(in_dir(name), fmt, &w, &h);
        if (fmt == PLOT_PNG) ck_assert_int_eq(w, 560);

        plot_curve_opts co;
        plot_curve_opts_default(&co);
        co.reference = 3.63;
        co.reference_label = "dataset entropy";
        co.width = 500;
        co.height = 300;
        snprintf(name, sizeof name, "curves.%s", ext[k]);
        ck_assert_msg(
            plot_learning_curves(in_dir("log.csv"), in_dir(name), fmt, &co, err, sizeof err) == 0,
            "%s", err);
        check_file(in_dir(name), fmt, &w, &h);
        if (fmt == PLOT_PNG) ck_assert(w == 500 && h == 300);

        plot_results_opts ro;
        plot_results_opts_default(&ro);
        ro.paper_csv = in_dir("paper.csv");
        ro.names_csv = in_dir("names.csv");
        ro.reference_column = "entropy";
        snprintf(name, sizeof name, "results.%s", ext[k]);
        ck_assert_msg(
            plot_results(in_dir("results.csv"), in_dir(name), fmt, &ro, err, sizeof err) == 0, "%s",
            err);
        check_file(in_dir(name), fmt, &w, &h);
        if (fmt == PLOT_PNG) ck_assert(w == 120 + 230 * 2 && h == 480);

        snprintf(name, sizeof name, "grid.%s", ext[k]);
        const char *labels[2] = { "T = 0.5", "T = 1" };
        ck_assert_msg(plot_image_grid(in_dir(name), fmt, pix, 6, 3, 8, 8, 2, labels,
                                      "grid, temperatures 0.5 and 1", err, sizeof err) == 0,
                      "%s", err);
        check_file(in_dir(name), fmt, &w, &h);
    }
    /* nothing but the figures and the inputs */
    ck_assert_int_eq(dir_entries(), 4 + 5 * 3);
    free(x);
}
END_TEST

START_TEST(test_image_grid_pixels)
{
    if (!plot_available()) return;
    /* 5 grey 4x6 images in 2 rows (3 + 2), no title or labels: scale
     * s = ceil(64 / 6) = 11, tiles 66 x 44, 4 apart, 12 from the edges */
    enum { N = 5, H = 4, W = 6 };
    uint8_t grey[N * H * W];
    for (int k = 0; k < N; k++)
        for (int i = 0; i < H * W; i++) grey[k * H * W + i] = (uint8_t)(40 * k + i);
    ck_assert_msg(plot_image_grid(in_dir("g.png"), PLOT_PNG, grey, N, 1, H, W, 2, NULL, NULL, err,
                                  sizeof err) == 0,
                  "%s", err);
    int w, h;
    check_file(in_dir("g.png"), PLOT_PNG, &w, &h);
    ck_assert_int_eq(w, 24 + 3 * (66 + 4) - 4);
    ck_assert_int_eq(h, 24 + 2 * (44 + 4) - 4);
    /* RGB: channel planes land in the right channels */
    uint8_t rgb[2 * 3 * H * W];
    for (int i = 0; i < (int)sizeof rgb; i++)
        rgb[i] = (uint8_t)(i < 3 * H * W ? 10 * (i / (H * W)) + 1 : 200);
    ck_assert_msg(plot_image_grid(in_dir("c.png"), PLOT_PNG, rgb, 2, 3, H, W, 1, NULL, NULL, err,
                                  sizeof err) == 0,
                  "%s", err);
#if FLOWEXP_HAVE_CAIRO
    cairo_surface_t *s = cairo_image_surface_create_from_png(in_dir("g.png"));
    ck_assert_int_eq(cairo_surface_status(s), CAIRO_STATUS_SUCCESS);
    const unsigned char *d = cairo_image_surface_get_data(s);
    const int stride = cairo_image_surface_get_stride(s);
    for (int k = 0; k < N; k++)
        for (int y = 0; y < H; y++)
            for (int xx = 0; xx < W; xx++) {
                /* centre of image pixel (y, xx) of tile k */
                const int px = 12 + (k % 3) * 70 + xx * 11 + 5, py = 12 + (k / 3) * 48 + y * 11 + 5;
                const uint32_t v =
                    *(const uint32_t *)(const void *)(d + (size_t)py * stride + 4 * px);
                const uint32_t want = grey[k * H * W + y * W + xx];
                ck_assert_uint_eq((v >> 16) & 255, want);
                ck_assert_uint_eq((v >> 8) & 255, want);
                ck_assert_uint_eq(v & 255, want);
            }
    cairo_surface_destroy(s);
    s = cairo_image_surface_create_from_png(in_dir("c.png"));
    ck_assert_int_eq(cairo_surface_status(s), CAIRO_STATUS_SUCCESS);
    d = cairo_image_surface_get_data(s);
    const uint32_t v =
        *(const uint32_t *)(const void *)(d + (size_t)(12 + 5) * cairo_image_surface_get_stride(s) +
                                          4 * (12 + 5));
    ck_assert_uint_eq((v >> 16) & 255, 1);
    ck_assert_uint_eq((v >> 8) & 255, 11);
    ck_assert_uint_eq(v & 255, 21);
    cairo_surface_destroy(s);
#endif
}
END_TEST

START_TEST(test_bad_inputs)
{
    if (!plot_available()) return;
    float x[2 * 3 * 2] = { 0 };
    const plot_graphs one = { x, 2, 3, 1, NULL }, ok = { x, 2, 3, 2, NULL },
                      odd = { x, 1, 2, 3, NULL };
    plot_graph_opts go = { NULL, NULL, -1, 1, 0, 0, 0, 0 };
    err[0] = '\0';
    ck_assert_int_eq(
        plot_graph_samples(in_dir("a.png"), PLOT_PNG, NULL, &one, &go, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "features >= 2"));
    err[0] = '\0';
    ck_assert_int_eq(plot_graph_samples(in_dir("a.png"), PLOT_PNG, &odd, &ok, &go, err, sizeof err),
                     -1);
    ck_assert_ptr_nonnull(strstr(err, "features"));
    go.width = 100;
    go.graphs = 8;
    err[0] = '\0';
    ck_assert_int_eq(plot_graph_samples(in_dir("a.png"), PLOT_PNG, &ok, &ok, &go, err, sizeof err),
                     -1);
    ck_assert_ptr_nonnull(strstr(err, "too small"));
    uint8_t pix[16] = { 0 };
    err[0] = '\0';
    ck_assert_int_eq(
        plot_image_grid(in_dir("a.png"), PLOT_PNG, pix, 1, 2, 2, 2, 1, NULL, NULL, err, sizeof err),
        -1);
    ck_assert_ptr_nonnull(strstr(err, "1 or 3"));
    err[0] = '\0';
    ck_assert_int_eq(
        plot_image_grid(in_dir("a.png"), PLOT_PNG, pix, 2, 1, 2, 2, 3, NULL, NULL, err, sizeof err),
        -1);
    ck_assert_ptr_nonnull(strstr(err, "rows"));

    /* training logs */
    struct {
        const char *text, *want;
    } logs[] = {
        { "step,loss\n1,2\n", "not a training log" },
        { "step,train_nll,valid_nll\n", "no rows" },
        { "step,train_nll,valid_nll\n1,x,2\n", ":2: column \"train_nll\"" },
        { "step,train_nll,valid_nll\n,1,2\n", "empty step" },
        { "step,train_nll,valid_nll\n1,nan,\n", "no finite" },
    };
    for (size_t i = 0; i < sizeof logs / sizeof logs[0]; i++) {
        write_text(in_dir("log.csv"), logs[i].text);
        err[0] = '\0';
        ck_assert_int_eq(plot_learning_curves(in_dir("log.csv"), in_dir("c.png"), PLOT_PNG, NULL,
                                              err, sizeof err),
                         -1);
        ck_assert_msg(strstr(err, logs[i].want) != NULL, "%s", err);
    }
    /* image models log bits/dim */
    write_text(in_dir("log.csv"), "step,train_bpd,valid_bpd\n100,4.1,4.0\n200,3.8,3.7\n");
    ck_assert_msg(plot_learning_curves(in_dir("log.csv"), in_dir("c.png"), PLOT_PNG, NULL, err,
                                       sizeof err) == 0,
                  "%s", err);
    plot_curve_opts co;
    plot_curve_opts_default(&co);
    co.ylo = 5;
    co.yhi = 4;
    err[0] = '\0';
    ck_assert_int_eq(
        plot_learning_curves(in_dir("log.csv"), in_dir("c.png"), PLOT_PNG, &co, err, sizeof err),
        -1);
    ck_assert_ptr_nonnull(strstr(err, "empty"));

    /* results tables */
    plot_results_opts ro;
    plot_results_opts_default(&ro);
    struct {
        const char *text, *want;
    } res[] = {
        { "model,seed,nll\ngnf,0,1\n", "no column \"dataset\"" },
        { "dataset,model,seed\nmog4,gnf,0\n", "no value column" },
        { "dataset,model,seed,nll\n", "no rows" },
        { "dataset,model,seed,nll\nmog4,gnf,0,1\nmog4,gnf,0,2\n", "seed 0 again (line 2)" },
        { "dataset,model,seed,nll\nmog4,gnf,0,\n", "no value" },
        { "dataset,model,seed,nll\nmog4,,0,1\n", "empty dataset or model" },
    };
    for (size_t i = 0; i < sizeof res / sizeof res[0]; i++) {
        write_text(in_dir("r.csv"), res[i].text);
        err[0] = '\0';
        ck_assert_int_eq(
            plot_results(in_dir("r.csv"), in_dir("r.png"), PLOT_PNG, &ro, err, sizeof err), -1);
        ck_assert_msg(strstr(err, res[i].want) != NULL, "%s", err);
    }
    write_text(in_dir("r.csv"), "dataset,model,seed,nll\nmog4,gnf,0,1\n");
    ro.value = "bpd";
    err[0] = '\0';
    ck_assert_int_eq(plot_results(in_dir("r.csv"), in_dir("r.png"), PLOT_PNG, &ro, err, sizeof err),
                     -1);
    ck_assert_ptr_nonnull(strstr(err, "no column \"bpd\""));
    ro.value = NULL;
    write_text(in_dir("p.csv"), "dataset,model,value\nmog4,gnf,1\nmog4,gnf,2\n");
    ro.paper_csv = in_dir("p.csv");
    err[0] = '\0';
    ck_assert_int_eq(plot_results(in_dir("r.csv"), in_dir("r.png"), PLOT_PNG, &ro, err, sizeof err),
                     -1);
    ck_assert_ptr_nonnull(strstr(err, "given twice"));
    /* no figure was written by any failure */
    struct stat st;
    ck_assert_int_ne(stat(in_dir("a.png"), &st), 0);
    ck_assert_int_ne(stat(in_dir("r.png"), &st), 0);
}
END_TEST

START_TEST(test_bad_paths_leave_nothing)
{
    if (!plot_available()) return;
    write_text(in_dir("log.csv"), log_nll);
    write_text(in_dir("file"), "x");
    ck_assert_int_eq(mkdir(in_dir("isdir.png"), 0777), 0);
    const char *paths[3] = { in_dir("no/such/dir/c.png"), in_dir("file/c.png"),
                             in_dir("isdir.png") };
    for (int i = 0; i < 3; i++) {
        err[0] = '\0';
        ck_assert_int_eq(
            plot_learning_curves(in_dir("log.csv"), paths[i], PLOT_PNG, NULL, err, sizeof err), -1);
        ck_assert_msg(strstr(err, "cannot write") && strstr(err, paths[i]), "%s", err);
        float x[8] = { 0, 1, 2, 3, 4, 5, 6, 7 };
        const plot_graphs g = { x, 2, 2, 2, NULL };
        const plot_graph_opts go = { NULL, NULL, -1, 1, 0, 0, 0, 0 };
        err[0] = '\0';
        ck_assert_int_eq(plot_graph_samples(paths[i], PLOT_SVG, NULL, &g, &go, err, sizeof err),
                         -1);
        ck_assert_ptr_nonnull(strstr(err, "cannot write"));
        uint8_t pix[4] = { 0 };
        err[0] = '\0';
        ck_assert_int_eq(
            plot_image_grid(paths[i], PLOT_PDF, pix, 1, 1, 2, 2, 1, NULL, "t", err, sizeof err),
            -1);
        ck_assert_ptr_nonnull(strstr(err, "cannot write"));
    }
    /* log.csv, file, the directory (still empty): no temporary files */
    ck_assert_int_eq(dir_entries(), 3);
    DIR *d = opendir(in_dir("isdir.png"));
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    ck_assert_int_eq(n, 0);
}
END_TEST

START_TEST(test_without_cairo)
{
    if (plot_available()) {
        ck_assert_ptr_nonnull(strstr(plot_backend(), "cairo"));
        ck_assert_int_eq(plot_check("x", "y.png", err, sizeof err), 0);
        return;
    }
    float x[4] = { 0 };
    const plot_graphs g = { x, 1, 2, 2, NULL };
    const plot_graph_opts go = { NULL, NULL, -1, 1, 0, 0, 0, 0 };
    uint8_t pix[4] = { 0 };
    write_text(in_dir("log.csv"), log_nll);
    int rc[5];
    char msg[5][1024];
    rc[0] = plot_check("the sample figure", in_dir("s.png"), msg[0], sizeof msg[0]);
    rc[1] = plot_graph_samples(in_dir("s.png"), PLOT_PNG, NULL, &g, &go, msg[1], sizeof msg[1]);
    rc[2] = plot_image_grid(in_dir("s.png"), PLOT_PNG, pix, 1, 1, 2, 2, 1, NULL, NULL, msg[2],
                            sizeof msg[2]);
    rc[3] = plot_learning_curves(in_dir("log.csv"), in_dir("s.png"), PLOT_PNG, NULL, msg[3],
                                 sizeof msg[3]);
    rc[4] = plot_results(in_dir("log.csv"), in_dir("s.png"), PLOT_PNG, NULL, msg[4], sizeof msg[4]);
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(rc[i], -1);
        ck_assert_msg(strstr(msg[i], "cannot draw") && strstr(msg[i], "without cairo"), "%s",
                      msg[i]);
    }
    ck_assert_int_eq(dir_entries(), 1);
}
END_TEST

static Suite *plot_suite(void)
{
    Suite *s = suite_create("plot");
    TCase *pure = tcase_create("axes");
    tcase_add_test(pure, test_ticks);
    tcase_add_test(pure, test_tick_labels);
    tcase_add_test(pure, test_formats_and_sizes);
    suite_add_tcase(s, pure);
    TCase *files = tcase_create("files");
    tcase_add_checked_fixture(files, setup_dir, teardown_dir);
    tcase_add_test(files, test_csv_read);
    tcase_add_test(files, test_every_figure_every_format);
    tcase_add_test(files, test_image_grid_pixels);
    tcase_add_test(files, test_bad_inputs);
    tcase_add_test(files, test_bad_paths_leave_nothing);
    tcase_add_test(files, test_without_cairo);
    suite_add_tcase(s, files);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(plot_suite());
    srunner_run_all(sr, CK_NORMAL);
    const int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
