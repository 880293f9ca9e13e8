/* im2col / col2im (see im2col.h). Columns of one row are filled one image
 * row at a time: the in-bounds span is a contiguous copy, the border is zero
 * (or the wrapped values for circular padding). */
#include <string.h>

#include "ops/im2col.h"

static inline int wrap(int v, int n) { return ((v % n) + n) % n; }

void fxp__im2col(const fxp__conv_shape *s, const float *x, float *col)
{
    const int H = s->h, W = s->w, pa = (s->kh - 1) / 2, pb = (s->kw - 1) / 2;
    const int64_t HW = (int64_t)H * W;
    for (int c = 0; c < s->c_in; c++) {
        const float *xc = x + c * HW;
        for (int a = 0; a < s->kh; a++)
            for (int b = 0; b < s->kw; b++) {
                float *row = col + ((int64_t)(c * s->kh + a) * s->kw + b) * HW;
                const int db = b - pb;
                /* output columns j with 0 <= j + db < W */
                const int j0 = db < 0 ? -db : 0, j1 = db > 0 ? W - db : W;
                for (int i = 0; i < H; i++) {
                    int ii = i + a - pa;
                    float *r = row + (int64_t)i * W;
                    if (s->padding == FXP_PAD_CIRCULAR) {
                        const float *src = xc + (int64_t)wrap(ii, H) * W;
                        for (int j = 0; j < W; j++) r[j] = src[wrap(j + db, W)];
                        continue;
                    }
                    if (ii < 0 || ii >= H || j0 >= j1) {
                        memset(r, 0, (size_t)W * sizeof(float));
                        continue;
                    }
                    const float *src = xc + (int64_t)ii * W;
                    for (int j = 0; j < j0; j++) r[j] = 0;
                    memcpy(r + j0, src + j0 + db, (size_t)(j1 - j0) * sizeof(float));
                    for (int j = j1; j < W; j++) r[j] = 0;
                }
            }
    }
}

void fxp__col2im(const fxp__conv_shape *s, const float *col, float *x)
{
    const int H = s->h, W = s->w, pa = (s->kh - 1) / 2, pb = (s->kw - 1) / 2;
    const int64_t HW = (int64_t)H * W;
    for (int c = 0; c < s->c_in; c++) {
        float *xc = x + c * HW;
        for (int a = 0; a < s->kh; a++)
            for (int b = 0; b < s->kw; b++) {
                const float *row = col + ((int64_t)(c * s->kh + a) * s->kw + b) * HW;
                const int db = b - pb;
                const int j0 = db < 0 ? -db : 0, j1 = db > 0 ? W - db : W;
                for (int i = 0; i < H; i++) {
                    int ii = i + a - pa;
                    const float *r = row + (int64_t)i * W;
                    if (s->padding == FXP_PAD_CIRCULAR) {
                        float *dst = xc + (int64_t)wrap(ii, H) * W;
                        for (int j = 0; j < W; j++) dst[wrap(j + db, W)] += r[j];
                        continue;
                    }
                    if (ii < 0 || ii >= H) continue;
                    float *dst = xc + (int64_t)ii * W + db;
                    for (int j = j0; j < j1; j++) dst[j] += r[j];
                }
            }
    }
}
