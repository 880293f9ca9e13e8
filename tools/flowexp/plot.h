/* Scatter plots of 2-D node coordinates written as PNG through libpng. */
#ifndef FLOWEXP_TOOL_PLOT_H
#define FLOWEXP_TOOL_PLOT_H

#include <stddef.h>

/* One panel: n points (x, y) interleaved in xy[2*i], xy[2*i+1]. */
typedef struct plot_panel {
    const char *title;  /* drawn nowhere (no font); kept for the caller's log */
    const float *xy;
    size_t n;
    unsigned char rgb[3];
} plot_panel;

/* Draw the panels side by side (each size x size pixels) on one shared
 * square axis range covering every point (plus a margin), with a frame and
 * the axes x = 0, y = 0, and write a PNG to `path` atomically (temporary
 * file in the same directory, then rename).  Returns 0, or -1 with a message
 * in err (size errsz). */
int plot_scatter_png(const char *path, const plot_panel *panels, int n_panels, int size,
                     char *err, size_t errsz);

#endif
