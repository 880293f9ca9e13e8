/* im2col / col2im (see im2col.h).
 *
 * Row (c, a, b) of col is channel c of the image moved by the offset
 * (da, db) = (a - (kh-1)/2, b - (kw-1)/2): col[p] = x[c, p + sh] with the flat
 * shift sh = da*W + db, for every pixel p = i*W + j whose source
 * (i + da, j + db) lies in the image.  With zero padding the in-image part of
 * a row is therefore one contiguous copy of HW - |sh| floats; the only
 * entries that copy gets wrong are those whose column j + db leaves [0, W)
 * (the flat index wraps into the neighbouring image row), and they are
 * zeroed afterwards, a strip of |db| entries per image row.  Circular padding
 * wraps both coordinates, so each image row is two contiguous pieces. */
#include <string.h>

#include "ops/im2col.h"

static inline int wrap(int v, int n) { return ((v % n) + n) % n; }

/* Flat range [lo, hi) of pixels p with 0 <= p + sh < HW. */
static void flat_range(int64_t HW, int64_t sh, int64_t *lo, int64_t *hi)
{
    int64_t l = sh < 0 ? -sh : 0, h = sh > 0 ? HW - sh : HW;
    if (l > HW) l = HW;
    if (h < l) h = l;
    *lo = l;
    *hi = h;
}

/* Zero the entries of one col row r[H*W] whose column j + db is outside
 * [0, W): columns [0, -db) for db < 0, [W - db, W) for db > 0. */
static void zero_border(float *r, int H, int W, int db)
{
    if (db == 0) return;
    const int len = db < 0 ? (-db < W ? -db : W) : (db < W ? db : W);
    const int j0 = db < 0 ? 0 : W - len;
    for (int i = 0; i < H; i++) memset(r + (int64_t)i * W + j0, 0, (size_t)len * sizeof(float));
}

/* One row of col: r[p] = xc[p + sh] in the image, 0 outside (zero padding). */
static void row_zero(const float *xc, float *r, int H, int W, int da, int db)
{
    const int64_t HW = (int64_t)H * W, sh = (int64_t)da * W + db;
    int64_t lo, hi;
    flat_range(HW, sh, &lo, &hi);
    memset(r, 0, (size_t)lo * sizeof(float));
    memcpy(r + lo, xc + lo + sh, (size_t)(hi - lo) * sizeof(float));
    memset(r + hi, 0, (size_t)(HW - hi) * sizeof(float));
    zero_border(r, H, W, db);
}

/* One row of col with circular padding: r[i, j] = xc[(i+da) mod H, (j+db) mod W]. */
static void row_circular(const float *xc, float *r, int H, int W, int da, int db)
{
    const int d = wrap(db, W);
    for (int i = 0; i < H; i++) {
        const float *src = xc + (int64_t)wrap(i + da, H) * W;
        float *dst = r + (int64_t)i * W;
        for (int j = 0; j < W - d; j++) dst[j] = src[j + d];
        for (int j = W - d; j < W; j++) dst[j] = src[j + d - W];
    }
}

void fxp__im2col(const fxp__conv_shape *s, const float *x, float *col)
{
    const int H = s->h, W = s->w, pa = (s->kh - 1) / 2, pb = (s->kw - 1) / 2;
    const int64_t HW = (int64_t)H * W;
    for (int c = 0; c < s->c_in; c++)
        for (int a = 0; a < s->kh; a++)
            for (int b = 0; b < s->kw; b++) {
                float *r = col + ((int64_t)(c * s->kh + a) * s->kw + b) * HW;
                if (s->padding == FXP_PAD_CIRCULAR)
                    row_circular(x + c * HW, r, H, W, a - pa, b - pb);
                else
                    row_zero(x + c * HW, r, H, W, a - pa, b - pb);
            }
}

void fxp__col2im(const fxp__conv_shape *s, float *col, float *x)
{
    const int H = s->h, W = s->w, pa = (s->kh - 1) / 2, pb = (s->kw - 1) / 2;
    const int64_t HW = (int64_t)H * W;
    for (int c = 0; c < s->c_in; c++) {
        float *xc = x + c * HW;
        for (int a = 0; a < s->kh; a++)
            for (int b = 0; b < s->kw; b++) {
                float *r = col + ((int64_t)(c * s->kh + a) * s->kw + b) * HW;
                const int da = a - pa, db = b - pb;
                if (s->padding == FXP_PAD_CIRCULAR) {
                    const int d = wrap(db, W);
                    for (int i = 0; i < H; i++) {
                        float *dst = xc + (int64_t)wrap(i + da, H) * W;
                        const float *src = r + (int64_t)i * W;
                        for (int j = 0; j < W - d; j++) dst[j + d] += src[j];
                        for (int j = W - d; j < W; j++) dst[j + d - W] += src[j];
                    }
                    continue;
                }
                /* x[p + sh] += r[p] over the flat range, with the entries of r
                 * that belong to no image pixel zeroed first (adding +0
                 * leaves x unchanged, up to the sign of a zero). */
                const int64_t sh = (int64_t)da * W + db;
                int64_t lo, hi;
                flat_range(HW, sh, &lo, &hi);
                zero_border(r, H, W, db);
                for (int64_t p = lo; p < hi; p++) xc[p + sh] += r[p];
            }
    }
}
