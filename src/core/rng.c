/* Philox4x32-10 counter-based generator (Salmon et al., SC'11).
 * Block b of stream (seed) is Philox(key = seed, counter = b); a draw of n
 * values uses blocks counter .. counter + ceil(n/4) - 1, value i taking lane
 * i % 4 of block counter + i / 4. */
#include <math.h>

#include "core/internal.h"

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static void philox(uint64_t key, uint64_t ctr, uint32_t out[4])
{
    uint32_t c0 = (uint32_t)ctr, c1 = (uint32_t)(ctr >> 32), c2 = 0x243F6A88u, c3 = 0x85A308D3u;
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    for (int r = 0; r < 10; r++) {
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0, p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n1 = (uint32_t)p1;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1, n3 = (uint32_t)p0;
        c0 = n0; c1 = n1; c2 = n2; c3 = n3;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

/* 24-bit uniform in (0,1): (k + 0.5) / 2^24. */
static double u01(uint32_t v) { return ((double)(v >> 8) + 0.5) * (1.0 / 16777216.0); }

void fxp_rng_seed(fxp_rng *rng, uint64_t seed)
{
    rng->seed = seed;
    rng->counter = 0;
}

void fxp_rng_uniform(fxp_rng *rng, float *out, size_t n)
{
    FXP_API_SCOPE();
    uint32_t b[4];
    for (size_t i = 0; i < n; i += 4) {
        philox(rng->seed, rng->counter + i / 4, b);
        for (size_t l = 0; l < 4 && i + l < n; l++) out[i + l] = (float)u01(b[l]);
    }
    rng->counter += (n + 3) / 4;
}

/* Values 4q .. 4q+3 of a normal draw: Box-Muller on the four uniforms of
 * block counter + q. */
static void normal_block(uint64_t seed, uint64_t ctr, size_t q, float *out, size_t n, float mean,
                         float std)
{
    uint32_t b[4];
    const size_t i = 4 * q;
    philox(seed, ctr + q, b);
    for (size_t l = 0; l < 4; l += 2) {
        double r = sqrt(-2.0 * log(u01(b[l])));
        double t = 2.0 * FXP_PI * u01(b[l + 1]);
        if (i + l < n) out[i + l] = (float)(mean + std * r * cos(t));
        if (i + l + 1 < n) out[i + l + 1] = (float)(mean + std * r * sin(t));
    }
}

void fxp_rng_normal(fxp_rng *rng, float *out, size_t n, float mean, float std)
{
    FXP_API_SCOPE();
    for (size_t q = 0; q < (n + 3) / 4; q++) normal_block(rng->seed, rng->counter, q, out, n, mean, std);
    rng->counter += (n + 3) / 4;
}

void fxp_rng_normal_threads(fxp_rng *rng, float *out, size_t n, float mean, float std, int threads)
{
    FXP_API_SCOPE();
    const int64_t blocks = (int64_t)((n + 3) / 4);
    const uint64_t seed = rng->seed, ctr = rng->counter;
    if (threads < 1) threads = 1;
    FXP_PARALLEL_FOR(threads, blocks > 4096,
        for (int64_t q = 0; q < blocks; q++) normal_block(seed, ctr, (size_t)q, out, n, mean, std););
    rng->counter += (uint64_t)blocks;
}

uint64_t fxp_rng_u64(fxp_rng *rng)
{
    uint32_t b[4];
    philox(rng->seed, rng->counter++, b);
    return ((uint64_t)b[0] << 32) | b[1];
}

uint64_t fxp_rng_below(fxp_rng *rng, uint64_t n)
{
    if (n <= 1) return 0;
    uint64_t limit = UINT64_MAX - UINT64_MAX % n; /* reject the biased tail */
    for (;;) {
        uint64_t v = fxp_rng_u64(rng);
        if (v < limit) return v % n;
    }
}

void fxp_rng_shuffle_int(fxp_rng *rng, int *perm, size_t n)
{
    FXP_API_SCOPE();
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)fxp_rng_below(rng, i);
        int t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
}

fxp_rng fxp_rng_split(fxp_rng *rng)
{
    fxp_rng child;
    uint64_t k = fxp_rng_u64(rng);
    /* Mix with a constant so that a child's key never equals a plain seed
     * a user might pick (0, 1, 2, ...). */
    fxp_rng_seed(&child, k ^ 0x9E3779B97F4A7C15ull);
    return child;
}
