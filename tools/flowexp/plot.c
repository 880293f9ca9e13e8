/* Scatter plots as PNG (libpng), written atomically. */
#include "plot.h"

#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct canvas {
    unsigned char *px; /* RGB, row-major */
    int w, h;
} canvas;

static void put(canvas *c, int x, int y, const unsigned char rgb[3], float alpha)
{
    if (x < 0 || y < 0 || x >= c->w || y >= c->h) return;
    unsigned char *p = c->px + 3 * ((size_t)y * c->w + x);
    for (int k = 0; k < 3; k++) p[k] = (unsigned char)lrintf(p[k] * (1 - alpha) + rgb[k] * alpha);
}

static void line_h(canvas *c, int x0, int x1, int y, const unsigned char rgb[3])
{
    for (int x = x0; x <= x1; x++) put(c, x, y, rgb, 1);
}

static void line_v(canvas *c, int x, int y0, int y1, const unsigned char rgb[3])
{
    for (int y = y0; y <= y1; y++) put(c, x, y, rgb, 1);
}

/* A soft disc of radius r at (cx, cy): translucent so dense regions darken. */
static void disc(canvas *c, float cx, float cy, float r, const unsigned char rgb[3])
{
    for (int y = (int)floorf(cy - r); y <= (int)ceilf(cy + r); y++)
        for (int x = (int)floorf(cx - r); x <= (int)ceilf(cx + r); x++) {
            float d = hypotf(x - cx, y - cy);
            if (d <= r) put(c, x, y, rgb, 0.35f);
        }
}

static int write_png(const char *path, const canvas *c, char *err, size_t errsz)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        snprintf(err, errsz, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(&png, NULL);
        fclose(f);
        snprintf(err, errsz, "libpng: cannot allocate a writer");
        return -1;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(f);
        snprintf(err, errsz, "libpng failed while writing %s", path);
        return -1;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)c->w, (png_uint_32)c->h, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < c->h; y++) png_write_row(png, c->px + 3 * (size_t)y * c->w);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    if (fclose(f) != 0) {
        snprintf(err, errsz, "cannot finish %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

int plot_scatter_png(const char *path, const plot_panel *panels, int n_panels, int size,
                     char *err, size_t errsz)
{
    if (n_panels < 1 || size < 64 || size > 4096) {
        snprintf(err, errsz, "bad plot geometry (%d panels of %d px)", n_panels, size);
        return -1;
    }
    /* One square range for all panels so they can be compared by eye. */
    float lo = INFINITY, hi = -INFINITY;
    for (int p = 0; p < n_panels; p++)
        for (size_t i = 0; i < 2 * panels[p].n; i++)
            if (isfinite(panels[p].xy[i])) {
                lo = fminf(lo, panels[p].xy[i]);
                hi = fmaxf(hi, panels[p].xy[i]);
            }
    if (!(lo <= hi)) lo = -1, hi = 1;
    float pad = 0.05f * (hi - lo) + 1e-3f;
    lo -= pad;
    hi += pad;

    canvas c = { NULL, n_panels * size, size };
    c.px = malloc((size_t)c.w * c.h * 3);
    if (!c.px) {
        snprintf(err, errsz, "out of memory for a %dx%d image", c.w, c.h);
        return -1;
    }
    memset(c.px, 255, (size_t)c.w * c.h * 3);
    const unsigned char frame[3] = { 40, 40, 40 }, axis[3] = { 200, 200, 200 };
    const float scale = (size - 1) / (hi - lo);
    for (int p = 0; p < n_panels; p++) {
        int x0 = p * size;
        int ax = x0 + (int)lrintf((0 - lo) * scale), ay = (int)lrintf((hi - 0) * scale);
        if (ax > x0 && ax < x0 + size - 1) line_v(&c, ax, 0, size - 1, axis);
        if (ay > 0 && ay < size - 1) line_h(&c, x0, x0 + size - 1, ay, axis);
        for (size_t i = 0; i < panels[p].n; i++) {
            float x = panels[p].xy[2 * i], y = panels[p].xy[2 * i + 1];
            if (!isfinite(x) || !isfinite(y)) continue;
            disc(&c, x0 + (x - lo) * scale, (hi - y) * scale, 1.6f, panels[p].rgb);
        }
        line_h(&c, x0, x0 + size - 1, 0, frame);
        line_h(&c, x0, x0 + size - 1, size - 1, frame);
        line_v(&c, x0, 0, size - 1, frame);
        line_v(&c, x0 + size - 1, 0, size - 1, frame);
    }

    /* temporary file next to the target, then rename: never a partial PNG */
    size_t len = strlen(path) + 32;
    char *tmp = malloc(len);
    if (!tmp) {
        free(c.px);
        snprintf(err, errsz, "out of memory");
        return -1;
    }
    snprintf(tmp, len, "%s.tmp.%ld", path, (long)getpid());
    int rc = write_png(tmp, &c, err, errsz);
    if (rc == 0 && rename(tmp, path) != 0) {
        snprintf(err, errsz, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        rc = -1;
    }
    if (rc != 0) unlink(tmp);
    free(tmp);
    free(c.px);
    return rc;
}
