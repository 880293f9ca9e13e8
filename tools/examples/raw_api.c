/* An outside program using only libflowexp.so through its raw-buffer API:
 * the convolution exponential and the graph convolution exponential, their
 * inverses and log-determinants.  Built by tests/check-install.sh against
 * the installed library with `pkg-config --cflags --libs flowexp`.
 * Exit status 0 iff every check holds. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <flowexp.h>

static float frand(unsigned *s)
{
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) & 0xffff) / 65536.0f - 0.5f;
}

int main(void)
{
    enum { N = 2, C = 4, H = 6, W = 5, SIZE = N * C * H * W };
    float x[SIZE], y[SIZE], back[SIZE], k[C * C * 9];
    unsigned seed = 1;
    for (int i = 0; i < SIZE; i++) x[i] = frand(&seed);
    for (int i = 0; i < C * C * 9; i++) k[i] = 0.2f * frand(&seed);

    if (fxp_conv_exp(x, y, k, N, C, H, W, 3, 3, 13, 0) < 0 ||
        fxp_conv_exp(y, back, k, N, C, H, W, 3, 3, 13, 1) < 0) {
        fprintf(stderr, "conv_exp: %s\n", fxp_last_error());
        return 1;
    }
    double err = 0;
    for (int i = 0; i < SIZE; i++) err = fmax(err, fabs(back[i] - x[i]));
    double ld = fxp_conv_exp_logdet(k, C, H, W, 3, 3);
    printf("convolution exponential: round-trip error %.2e, log|det| %.6f per image\n", err, ld);
    if (err > 1e-5 || !isfinite(ld)) return 1;

    /* graph: 5 nodes on a ring, 3 features */
    enum { B = 3, V = 5, F = 3, GS = B * V * F };
    float adj[V * V] = { 0 }, t0[F * F], t1[F * F], g[GS], gy[GS], gb[GS];
    for (int i = 0; i < V; i++) adj[i * V + (i + 1) % V] = adj[((i + 1) % V) * V + i] = 1.0f;
    for (int i = 0; i < F * F; i++) {
        t0[i] = 0.3f * frand(&seed);
        t1[i] = 0.3f * frand(&seed);
    }
    for (int i = 0; i < GS; i++) g[i] = frand(&seed);
    if (fxp_graph_conv_exp(g, gy, adj, t0, t1, B, V, F, 13, 0) < 0 ||
        fxp_graph_conv_exp(gy, gb, adj, t0, t1, B, V, F, 13, 1) < 0) {
        fprintf(stderr, "graph_conv_exp: %s\n", fxp_last_error());
        return 1;
    }
    err = 0;
    for (int i = 0; i < GS; i++) err = fmax(err, fabs(gb[i] - g[i]));
    printf("graph convolution exponential: round-trip error %.2e, log|det| %.6f per graph\n", err,
           fxp_graph_conv_exp_logdet(t0, V, F));
    if (err > 1e-5) return 1;

    /* bad input is reported, not fatal */
    if (fxp_conv_exp(x, y, k, N, C, H, W, 2, 2, 6, 0) >= 0) return 1;
    printf("bad kernel size rejected: %s\n", fxp_last_error());
    return 0;
}
