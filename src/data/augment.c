/* The training augmentation of the authors' CIFAR10 pipeline on uint8 NCHW
 * batches: flip, edge pad 2, random integer translation, centre crop, flip
 * (imagedata.h states the map and the draws exactly). */
#include <math.h>
#include <string.h>

#include "core/internal.h"

/* Pad of torchvision's Pad(int(ceil(32 * 0.04)), padding_mode='edge'). */
#define PAD 2
/* RandomAffine(translate=(0.04, 0.04)): the shift range as a fraction of the padded size. */
#define TRANSLATE 0.04

/* One image's draws, from the four uniforms of its Philox block. */
typedef struct aug_draw {
    int flip1, tx, ty, flip2;
} aug_draw;

static aug_draw draw_image(uint64_t seed, uint64_t block, int h, int w)
{
    fxp_rng r = { seed, block };
    float u[4];
    fxp_rng_uniform(&r, u, 4);
    const double mx = TRANSLATE * (w + 2 * PAD), my = TRANSLATE * (h + 2 * PAD);
    aug_draw d;
    d.flip1 = u[0] < 0.5f;
    d.tx = (int)rint(mx * (2.0 * u[1] - 1.0));
    d.ty = (int)rint(my * (2.0 * u[2] - 1.0));
    d.flip2 = u[3] < 0.5f;
    return d;
}

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* out [c, h, w] <- the transform of in [c, h, w] under draw d.  Output
 * column j comes from the crop's column j2 = (flip2 ? w-1-j : j), i.e. from
 * padded column b = j2 + PAD - tx, i.e. from the flipped input's column
 * clamp(b - PAD) (zero if b falls outside the padded image), i.e. from the
 * input's column s (or w-1-s if flip1).  Rows likewise without flips. */
static void augment_image(const uint8_t *in, uint8_t *out, int c, int h, int w, aug_draw d)
{
    const int hp = h + 2 * PAD, wp = w + 2 * PAD;
    for (int i = 0; i < h; i++) {
        const int a = i + PAD - d.ty;
        const int row = a >= 0 && a < hp ? clampi(a - PAD, 0, h - 1) : -1;
        for (int j = 0; j < w; j++) {
            const int j2 = d.flip2 ? w - 1 - j : j, b = j2 + PAD - d.tx;
            int col = -1;
            if (row >= 0 && b >= 0 && b < wp) {
                col = clampi(b - PAD, 0, w - 1);
                if (d.flip1) col = w - 1 - col;
            }
            for (int ch = 0; ch < c; ch++)
                out[((size_t)ch * h + i) * w + j] =
                    col >= 0 ? in[((size_t)ch * h + row) * w + col] : 0;
        }
    }
}

int fxp_images_augment(fxp_ctx *ctx, const uint8_t *in, uint8_t *out, int n, int c, int h, int w,
                       fxp_rng *rng)
{
    if (!in || !out || !rng || n < 1 || c < 1 || h < 1 || w < 1)
        return FXP_ERR(ctx, FXP_EINVAL, "bad arguments (n %d, [%d,%d,%d], in %s, out %s, rng %s)",
                       n, c, h, w, in ? "set" : "NULL", out ? "set" : "NULL", rng ? "set" : "NULL");
    const size_t per = (size_t)c * (size_t)h * (size_t)w;
    if ((size_t)h > SIZE_MAX / (size_t)w / (size_t)c || per > SIZE_MAX / (size_t)n)
        return FXP_ERR(ctx, FXP_EINVAL, "%d images of [%d,%d,%d] overflow the address space", n, c,
                       h, w);
    const size_t bytes = (size_t)n * per;
    if ((uintptr_t)in < (uintptr_t)out + bytes && (uintptr_t)out < (uintptr_t)in + bytes)
        return FXP_ERR(ctx, FXP_EINVAL, "in and out overlap (the transform is not in place)");
    const uint64_t seed = rng->seed, first = rng->counter;
    const int nt = ctx ? fxp_ctx_threads(ctx) : 1;
    FXP_PARALLEL_FOR(nt, bytes >= ((size_t)1 << 16),
        for (int k = 0; k < n; k++)
            augment_image(in + (size_t)k * per, out + (size_t)k * per, c, h, w,
                          draw_image(seed, first + (uint64_t)k, h, w)););
    rng->counter = first + (uint64_t)n;
    return FXP_OK;
}
