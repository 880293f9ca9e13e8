/* Data: the MoG generators (determinism, structure), their exact densities
 * (against brute force over all N! permutations) and entropies (against the
 * paper's Table 4), and HDF5 dataset files (round trip, atomicity, foreign
 * files, every error case). */
#include "h5test.h"

#include <hdf5.h>

#define LN_2PI 1.8378770664093454836

/* ---- generators ---------------------------------------------------------------------- */

START_TEST(test_mog_names_info_modes)
{
    const int nodes[4] = { 4, 9, 16, 4 };
    for (int k = 0; k < FXP_MOG_KINDS; k++) {
        fxp_mog_kind kind;
        ck_assert_ok(fxp_mog_parse(fxp_mog_name((fxp_mog_kind)k), &kind));
        ck_assert_int_eq(kind, k);
        ck_assert_int_eq(fxp_mog_nodes(kind), nodes[k]);
        fxp_mog_info info;
        ck_assert_ok(fxp_mog_get_info(kind, &info));
        ck_assert_int_eq(info.n_nodes, nodes[k]);
        ck_assert_double_eq(info.spacing, 10.0);
        ck_assert_double_eq(info.noise_std, 1.0);
        /* the modes are distinct and the nearest pair is 10 apart */
        float m[32];
        ck_assert_ok(fxp_mog_modes(kind, m));
        double dmin = 1e30;
        for (int i = 0; i < nodes[k]; i++)
            for (int j = 0; j < i; j++)
                dmin = fmin(dmin, hypot(m[2 * i] - m[2 * j], m[2 * i + 1] - m[2 * j + 1]));
        ck_assert_double_eq_tol(dmin, 10.0, 1e-6);
        if (kind == FXP_MOG_RING) {
            ck_assert_double_eq_tol(info.radius, 5 * sqrt(2.0), 1e-12);
            ck_assert_double_eq_tol(info.rotation, 3.14159265358979, 1e-12);
            for (int i = 0; i < 4; i++) ck_assert_double_eq_tol(hypot(m[2 * i], m[2 * i + 1]), info.radius, 1e-5);
        } else {
            ck_assert_double_eq(info.radius, 0);
        }
    }
    /* MoG-16 is the centred 4x4 grid {-15,-5,5,15}^2; MoG-9 the grid {-5,5,15}^2 */
    float m16[32], m9[18];
    fxp_mog_modes(FXP_MOG16, m16);
    fxp_mog_modes(FXP_MOG9, m9);
    for (int i = 0; i < 32; i++) ck_assert(m16[i] == -15 || m16[i] == -5 || m16[i] == 5 || m16[i] == 15);
    for (int i = 0; i < 18; i++) ck_assert(m9[i] == -5 || m9[i] == 5 || m9[i] == 15);
    fxp_mog_kind kind;
    ck_assert_fails(fxp_mog_parse("mog5", &kind), FXP_EINVAL, NULL);
    ck_assert_ptr_nonnull(strstr(fxp_last_error(), "mog16"));
    ck_assert_fails(fxp_mog_parse(NULL, &kind), FXP_EINVAL, NULL);
    ck_assert_ptr_null(fxp_mog_name((fxp_mog_kind)4));
    ck_assert_int_eq(fxp_mog_nodes((fxp_mog_kind)-1), 0);
    ck_assert(isnan(fxp_mog_entropy_separated((fxp_mog_kind)9)));
    fxp_mog_info info;
    ck_assert_fails(fxp_mog_get_info((fxp_mog_kind)4, &info), FXP_EINVAL, NULL);
    ck_assert_fails(fxp_mog_modes(FXP_MOG4, NULL), FXP_EINVAL, NULL);
}
END_TEST

START_TEST(test_mog_deterministic)
{
    fxp_ctx *c1 = test_ctx(1), *c2 = test_ctx(2);
    for (int k = 0; k < FXP_MOG_KINDS; k++) {
        const fxp_mog_kind kind = (fxp_mog_kind)k;
        const int N = fxp_mog_nodes(kind), G = 64;
        const size_t bytes = sizeof(float) * G * N * 2;
        float *a = malloc(bytes), *b = malloc(bytes);
        double *la = malloc(G * sizeof(double)), *lb = malloc(G * sizeof(double));
        fxp_rng r1, r2;
        fxp_rng_seed(&r1, 5);
        fxp_rng_seed(&r2, 5);
        ck_assert_ok(fxp_mog_sample(c1, kind, &r1, G, a));
        ck_assert_ok(fxp_mog_sample(c2, kind, &r2, G, b));
        ck_assert_mem_eq(a, b, bytes);
        ck_assert(r1.counter == r2.counter && r1.counter > 0);
        /* log p does not depend on the thread count either */
        ck_assert_ok(fxp_mog_log_prob(c1, kind, a, G, la));
        ck_assert_ok(fxp_mog_log_prob(c2, kind, a, G, lb));
        ck_assert_mem_eq(la, lb, G * sizeof(double));
        /* drawing in two halves continues the same stream */
        fxp_rng_seed(&r2, 5);
        ck_assert_ok(fxp_mog_sample(c2, kind, &r2, G / 2, b));
        ck_assert_ok(fxp_mog_sample(c2, kind, &r2, G / 2, b + (size_t)G / 2 * N * 2));
        ck_assert_mem_eq(a, b, bytes);
        fxp_rng_seed(&r2, 6);
        ck_assert_ok(fxp_mog_sample(c2, kind, &r2, G, b));
        ck_assert(memcmp(a, b, bytes) != 0);
        free(a);
        free(b);
        free(la);
        free(lb);
    }
    /* the three splits are distinct streams; each is reproducible on its own */
    fxp_rng tr = fxp_mog_split_rng(3, FXP_SPLIT_TRAIN), va = fxp_mog_split_rng(3, FXP_SPLIT_VALID),
            te = fxp_mog_split_rng(3, FXP_SPLIT_TEST), te2 = fxp_mog_split_rng(3, FXP_SPLIT_TEST),
            other = fxp_mog_split_rng(4, FXP_SPLIT_TRAIN);
    ck_assert(tr.seed != va.seed && va.seed != te.seed && tr.seed != te.seed && tr.seed != other.seed);
    ck_assert(te.seed == te2.seed && te.counter == te2.counter);
    /* entropies are deterministic and thread-count independent */
    double h1, h2, s1, s2;
    ck_assert_ok(fxp_mog_entropy(c1, FXP_MOG9, 11, 50, &h1, &s1));
    ck_assert_ok(fxp_mog_entropy(c2, FXP_MOG9, 11, 50, &h2, &s2));
    ck_assert(h1 == h2 && s1 == s2);
    fxp_ctx_free(c1);
    fxp_ctx_free(c2);
}
END_TEST

/* Index of the mode nearest to (x, y). */
static int nearest(const float *modes, int N, double x, double y, double *d2)
{
    int best = 0;
    *d2 = 1e300;
    for (int j = 0; j < N; j++) {
        const double d = (x - modes[2 * j]) * (x - modes[2 * j]) + (y - modes[2 * j + 1]) * (y - modes[2 * j + 1]);
        if (d < *d2) *d2 = d, best = j;
    }
    return best;
}

START_TEST(test_mog_structure)
{
    fxp_ctx *ctx = test_ctx(2);
    const int G = 1000;
    for (int k = 0; k < FXP_MOG_KINDS; k++) {
        const fxp_mog_kind kind = (fxp_mog_kind)k;
        const int N = fxp_mog_nodes(kind);
        float *x = malloc(sizeof(float) * G * N * 2), modes[32];
        fxp_rng r;
        fxp_rng_seed(&r, 100 + k);
        ck_assert_ok(fxp_mog_sample(ctx, kind, &r, G, x));
        fxp_mog_modes(kind, modes);
        double sum[16][2] = { { 0 } }, sq[16][2] = { { 0 } }, c4 = 0, s4 = 0;
        int first_node[16] = { 0 };
        for (int g = 0; g < G; g++) {
            float *xg = x + (size_t)g * N * 2;
            double cs = 1, sn = 0;
            if (kind == FXP_MOG_RING) {
                /* mode angles are theta + pi/4 + k pi/2, so 4 * angle = 4 theta + pi (mod 2 pi):
                 * estimate theta from the circular mean and rotate the graph back */
                double c = 0, s = 0;
                for (int i = 0; i < N; i++) {
                    const double a = atan2(xg[2 * i + 1], xg[2 * i]);
                    c += cos(4 * a);
                    s += sin(4 * a);
                }
                const double theta = (atan2(s, c) - 3.14159265358979) / 4;
                c4 += cos(4 * theta);
                s4 += sin(4 * theta);
                cs = cos(theta);
                sn = sin(theta);
            }
            int seen[16] = { 0 };
            for (int i = 0; i < N; i++) {
                const double u = cs * xg[2 * i] + sn * xg[2 * i + 1], v = -sn * xg[2 * i] + cs * xg[2 * i + 1];
                double d2;
                const int j = nearest(modes, N, u, v, &d2);
                seen[j]++;
                if (i == 0) first_node[j]++;
                sum[j][0] += u - modes[2 * j];
                sum[j][1] += v - modes[2 * j + 1];
                sq[j][0] += (u - modes[2 * j]) * (u - modes[2 * j]);
                sq[j][1] += (v - modes[2 * j + 1]) * (v - modes[2 * j + 1]);
            }
            for (int j = 0; j < N; j++) ck_assert_msg(seen[j] == 1, "%s graph %d: mode %d has %d nodes",
                                                      fxp_mog_name(kind), g, j, seen[j]);
        }
        /* per mode: mean offset ~ 0 (se 0.03), std ~ 1 (se 0.02) per coordinate; the ring's
         * fitted rotation absorbs a little variance, so its tolerance is looser */
        for (int j = 0; j < N; j++)
            for (int a = 0; a < 2; a++) {
                const double mean = sum[j][a] / G, sd = sqrt(sq[j][a] / G - mean * mean);
                ck_assert_msg(fabs(mean) < 0.15, "%s mode %d: mean offset %g", fxp_mog_name(kind), j, mean);
                ck_assert_msg(fabs(sd - (kind == FXP_MOG_RING ? 0.93 : 1.0)) < 0.1, "%s mode %d: std %g",
                              fxp_mog_name(kind), j, sd);
            }
        /* the node-to-mode assignment is uniform: node 0 lands on each mode ~G/N times */
        for (int j = 0; j < N; j++)
            ck_assert_msg(fabs(first_node[j] - (double)G / N) < 5 * sqrt((double)G / N) + 1,
                          "%s: node 0 on mode %d %d times of %d", fxp_mog_name(kind), j, first_node[j], G);
        if (kind == FXP_MOG_RING) { /* theta mod pi/2 is uniform: E[exp(4 i theta)] = 0 */
            ck_assert_msg(hypot(c4, s4) / G < 0.1, "rotation not uniform: |mean| %g", hypot(c4, s4) / G);
        }
        free(x);
    }
    fxp_rng r;
    float buf[8];
    ck_assert_fails(fxp_mog_sample(ctx, FXP_MOG4, &r, 0, buf), FXP_EINVAL, ctx);
    ck_assert_fails(fxp_mog_sample(ctx, (fxp_mog_kind)7, &r, 1, buf), FXP_EINVAL, ctx);
    ck_assert_fails(fxp_mog_sample(ctx, FXP_MOG4, NULL, 1, buf), FXP_EINVAL, ctx);
    fxp_ctx_free(ctx);
}
END_TEST

/* ---- exact densities --------------------------------------------------------------------- */

/* log (1/N!) sum_pi prod_i N(x_i; R mu_pi(i), I) by enumerating all permutations
 * (Heap's algorithm), combined with a running log-sum-exp. */
static double brute_log_p(const float *x, const float *modes, int N, double theta)
{
    int p[16], c[16] = { 0 };
    double mx[16], my[16];
    for (int j = 0; j < N; j++) {
        p[j] = j;
        mx[j] = cos(theta) * modes[2 * j] - sin(theta) * modes[2 * j + 1];
        my[j] = sin(theta) * modes[2 * j] + cos(theta) * modes[2 * j + 1];
    }
    double m = -INFINITY, s = 0, count = 0;
    for (int i = 0;;) {
        double lp = 0;
        for (int a = 0; a < N; a++) {
            const double dx = x[2 * a] - mx[p[a]], dy = x[2 * a + 1] - my[p[a]];
            lp += -0.5 * (dx * dx + dy * dy) - LN_2PI;
        }
        if (lp > m) s = s * exp(m - lp) + 1, m = lp;
        else s += exp(lp - m);
        count++;
        while (i < N && c[i] >= i) c[i++] = 0; /* next permutation (Heap) */
        if (i >= N) break;
        int t, j = i % 2 ? c[i] : 0;
        t = p[j], p[j] = p[i], p[i] = t;
        c[i]++;
        i = 0;
    }
    return m + log(s / count);
}

START_TEST(test_mog_log_prob_vs_brute_force)
{
    fxp_ctx *ctx = test_ctx(2);
    /* MoG-4: sampled graphs, an ambiguous node between modes, two nodes on one
     * mode, and a far outlier whose density underflows a naive sum */
    float modes[32], x[8 * 12];
    fxp_mog_modes(FXP_MOG4, modes);
    fxp_rng r;
    fxp_rng_seed(&r, 9);
    ck_assert_ok(fxp_mog_sample(ctx, FXP_MOG4, &r, 12, x));
    x[0] = 0.3f, x[1] = 0.1f;
    x[8] = x[10], x[9] = x[11];
    for (int i = 0; i < 8; i++) x[16 + i] = 40.0f + (float)i;
    double lp[12];
    ck_assert_ok(fxp_mog_log_prob(ctx, FXP_MOG4, x, 12, lp));
    for (int g = 0; g < 12; g++) {
        const double ref = brute_log_p(x + g * 8, modes, 4, 0);
        ck_assert_msg(fabs(lp[g] - ref) < 1e-10 * (1 + fabs(ref)), "graph %d: %.15g vs %.15g", g, lp[g], ref);
    }
    ck_assert(lp[2] < -3000 && isfinite(lp[2]));
    /* MoG-9 on two graphs (9! = 362880 terms each) */
    float x9[18 * 2], m9[18];
    fxp_mog_modes(FXP_MOG9, m9);
    ck_assert_ok(fxp_mog_sample(ctx, FXP_MOG9, &r, 2, x9));
    x9[0] = 0.0f, x9[1] = 10.0f; /* midway between two modes */
    double lp9[2];
    ck_assert_ok(fxp_mog_log_prob(ctx, FXP_MOG9, x9, 2, lp9));
    for (int g = 0; g < 2; g++)
        ck_assert_double_eq_tol(lp9[g], brute_log_p(x9 + g * 18, m9, 9, 0), 1e-9 * (1 + fabs(lp9[g])));
    /* permuting the nodes leaves log p unchanged (MoG-16) */
    float x16[32], y16[32];
    ck_assert_ok(fxp_mog_sample(ctx, FXP_MOG16, &r, 1, x16));
    for (int i = 0; i < 16; i++) {
        const int j = (7 * i + 3) % 16;
        y16[2 * i] = x16[2 * j];
        y16[2 * i + 1] = x16[2 * j + 1];
    }
    double a16, b16;
    ck_assert_ok(fxp_mog_log_prob(ctx, FXP_MOG16, x16, 1, &a16));
    ck_assert_ok(fxp_mog_log_prob(ctx, FXP_MOG16, y16, 1, &b16));
    ck_assert_double_eq_tol(a16, b16, 1e-9 * fabs(a16));
    /* the ring: brute-force permutations and a 16x finer rotation grid over [0, pi/2) */
    float xr[8 * 3];
    ck_assert_ok(fxp_mog_sample(ctx, FXP_MOG_RING, &r, 3, xr));
    double lr[3];
    ck_assert_ok(fxp_mog_log_prob(ctx, FXP_MOG_RING, xr, 3, lr));
    for (int g = 0; g < 3; g++) {
        const int Q = 4096;
        double m = -INFINITY, s = 0, *lv = malloc(Q * sizeof(double));
        for (int q = 0; q < Q; q++) {
            lv[q] = brute_log_p(xr + g * 8, modes, 4, 1.5707963267948966 * q / Q);
            m = fmax(m, lv[q]);
        }
        for (int q = 0; q < Q; q++) s += exp(lv[q] - m);
        const double ref = m + log(s / Q);
        free(lv);
        ck_assert_msg(fabs(lr[g] - ref) < 1e-9 * (1 + fabs(ref)), "ring graph %d: %.15g vs %.15g", g, lr[g], ref);
    }
    double dummy;
    ck_assert_fails(fxp_mog_log_prob(NULL, FXP_MOG4, x, 1, &dummy), FXP_EINVAL, NULL);
    ck_assert_fails(fxp_mog_log_prob(ctx, FXP_MOG4, x, 0, &dummy), FXP_EINVAL, ctx);
    fxp_ctx_free(ctx);
}
END_TEST

/* ---- entropies ------------------------------------------------------------------------------ */

START_TEST(test_mog_entropies_match_paper)
{
    fxp_ctx *ctx = test_ctx(2);
    /* Table 4's "Dataset entropy" row (MoG-16: not given; the separated-mode value) */
    const double paper[4] = { 3.63, 4.26, 4.755, 4.05 };
    const double separated[4] = { 3.6324, 4.2603, 4.7549, 4.0528 };
    const double marginal[4] = { 4.2242, 5.0351, 5.6105, 4.2242 };
    const int samples[4] = { 20000, 4000, 300, 4000 };
    for (int k = 0; k < FXP_MOG_KINDS; k++) {
        const fxp_mog_kind kind = (fxp_mog_kind)k;
        double h, se;
        ck_assert_ok(fxp_mog_entropy(ctx, kind, 77, samples[k], &h, &se));
        ck_assert_msg(se > 0 && se < 0.02, "%s: stderr %g", fxp_mog_name(kind), se);
        ck_assert_msg(fabs(h - paper[k]) < (k == FXP_MOG16 ? 3 * se + 0.005 : 0.02),
                      "%s: %.4f +- %.4f vs the paper's %.3f", fxp_mog_name(kind), h, se, paper[k]);
        ck_assert_double_eq_tol(fxp_mog_entropy_separated(kind), separated[k], 1e-4);
        ck_assert_msg(fabs(h - separated[k]) < 4 * se, "%s: %.4f vs separated %.4f (se %.4f)",
                      fxp_mog_name(kind), h, separated[k], se);
        ck_assert_double_eq_tol(fxp_mog_marginal_bound(kind), marginal[k], 1e-4);
        ck_assert(marginal[k] > h + 0.1);
    }
    double h;
    ck_assert_fails(fxp_mog_entropy(ctx, FXP_MOG4, 1, 1, &h, NULL), FXP_EINVAL, ctx);
    ck_assert_fails(fxp_mog_entropy(ctx, FXP_MOG4, 1, 10, NULL, NULL), FXP_EINVAL, ctx);
    fxp_ctx_free(ctx);
}
END_TEST

START_TEST(test_complete_adjacency)
{
    fxp_ctx *ctx = test_ctx(1);
    fxp_tensor a;
    ck_assert_ok(fxp_graph_complete_adjacency(ctx, 5, &a));
    ck_assert_int_eq(a.ndim, 2);
    ck_assert_int_eq(a.shape[0], 5);
    ck_assert_int_eq(a.shape[1], 5);
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 5; j++) ck_assert_float_eq(a.data[i * 5 + j], i == j ? 0.0f : 1.0f);
    fxp_tensor_release(&a);
    ck_assert_fails(fxp_graph_complete_adjacency(ctx, 0, &a), FXP_EINVAL, ctx);
    fxp_ctx_free(ctx);
}
END_TEST

/* ---- dataset files -------------------------------------------------------------------------- */

static void check_attr(fxp_ctx *ctx, const char *path, const char *key, const char *want)
{
    char buf[128];
    ck_assert_ok(fxp_h5_read_attr(ctx, path, key, buf, sizeof buf));
    ck_assert_msg(!strcmp(buf, want), "attribute %s = \"%s\", expected \"%s\"", key, buf, want);
}

START_TEST(test_dataset_round_trip)
{
    fxp_ctx *ctx = test_ctx(2);
    const fxp_mog_dataset_config cfg = { FXP_MOG_RING, 42, 50, 20, 30, 200 };
    double h, se;
    ck_assert_ok(fxp_mog_dataset_write(ctx, in_dir("ring.h5"), &cfg, &h, &se));
    ck_assert_int_eq(n_files(), 1); /* no temporary left behind */
    const char *splits[3] = { "train", "valid", "test" };
    const int sizes[3] = { 50, 20, 30 };
    for (int k = 0; k < 3; k++) {
        fxp_tensor t;
        ck_assert_ok(fxp_dataset_read(ctx, in_dir("ring.h5"), splits[k], &t));
        ck_assert_int_eq(t.ndim, 3);
        ck_assert_int_eq(t.shape[0], sizes[k]);
        ck_assert_int_eq(t.shape[1], 4);
        ck_assert_int_eq(t.shape[2], 2);
        /* each split is its own stream: regenerate it alone */
        float *ref = malloc(sizeof(float) * sizes[k] * 8);
        fxp_rng s = fxp_mog_split_rng(42, (fxp_data_split)k);
        ck_assert_ok(fxp_mog_sample(ctx, FXP_MOG_RING, &s, sizes[k], ref));
        ck_assert_mem_eq(t.data, ref, sizeof(float) * sizes[k] * 8);
        free(ref);
        fxp_tensor_release(&t);
    }
    double h2, se2;
    ck_assert_ok(fxp_mog_entropy(ctx, FXP_MOG_RING, 42 + 0x5eed, 200, &h2, &se2));
    ck_assert(h == h2 && se == se2);
    char buf[64];
    snprintf(buf, sizeof buf, "%.17g", h);
    check_attr(ctx, in_dir("ring.h5"), "entropy_per_node", buf);
    check_attr(ctx, in_dir("ring.h5"), "format", "libflowexp-dataset");
    check_attr(ctx, in_dir("ring.h5"), "dataset", "ring");
    check_attr(ctx, in_dir("ring.h5"), "seed", "42");
    check_attr(ctx, in_dir("ring.h5"), "n_nodes", "4");
    check_attr(ctx, in_dir("ring.h5"), "n_valid", "20");
    check_attr(ctx, in_dir("ring.h5"), "entropy_samples", "200");
    check_attr(ctx, in_dir("ring.h5"), "spacing", "10");
    check_attr(ctx, in_dir("ring.h5"), "library_version", fxp_version());
    ck_assert_ok(fxp_h5_read_attr(ctx, in_dir("ring.h5"), "radius", buf, sizeof buf));
    ck_assert_double_eq_tol(atof(buf), 5 * sqrt(2.0), 1e-12);
    ck_assert_fails(fxp_h5_read_attr(ctx, in_dir("ring.h5"), "nope", buf, sizeof buf), FXP_ENOTFOUND, ctx);
    /* the same config writes the same data; overwriting is allowed */
    ck_assert_ok(fxp_mog_dataset_write(ctx, in_dir("ring.h5"), &cfg, NULL, NULL));
    ck_assert_int_eq(n_files(), 1);
    fxp_mog_dataset_config bad = cfg;
    bad.n_valid = 0;
    ck_assert_fails(fxp_mog_dataset_write(ctx, in_dir("x.h5"), &bad, NULL, NULL), FXP_EINVAL, ctx);
    bad = cfg;
    bad.kind = (fxp_mog_kind)8;
    ck_assert_fails(fxp_mog_dataset_write(ctx, in_dir("x.h5"), &bad, NULL, NULL), FXP_EINVAL, ctx);
    ck_assert_int_eq(n_files(), 1);
    fxp_ctx_free(ctx);
}
END_TEST

START_TEST(test_dataset_atomic)
{
    fxp_ctx *ctx = test_ctx(1);
    const fxp_mog_dataset_config cfg = { FXP_MOG4, 1, 10, 5, 5, 50 };
    /* a missing directory: an error, and nothing created */
    ck_assert_fails(fxp_mog_dataset_write(ctx, in_dir("missing/d.h5"), &cfg, NULL, NULL), FXP_EIO, ctx);
    ck_assert_ptr_nonnull(strstr(fxp_ctx_error(ctx), "missing/d.h5"));
    ck_assert_int_eq(n_files(), 0);
    /* a failure after the temporary was written (rename onto a non-empty
     * directory): the temporary is removed and the target left alone */
    ck_assert_int_eq(mkdir(in_dir("busy.h5"), 0700), 0);
    write_text(in_dir("busy.h5/keep"), "x");
    ck_assert_fails(fxp_mog_dataset_write(ctx, in_dir("busy.h5"), &cfg, NULL, NULL), FXP_EIO, ctx);
    ck_assert_ptr_nonnull(strstr(fxp_ctx_error(ctx), "rename"));
    ck_assert_int_eq(n_files(), 1);
    /* a failure in the middle of writing ("a" and "a/b" cannot both be
     * datasets) leaves an existing file intact and no temporary */
    int s[1] = { 3 };
    fxp_tensor t;
    ck_assert_ok(fxp_tensor_alloc(ctx, &t, 1, s));
    t.data[0] = 7;
    const fxp_tensor *arr[2] = { &t, &t };
    const char *good[1] = { "a" }, *clash[2] = { "a", "a/b" };
    ck_assert_ok(fxp_h5_write_arrays(ctx, in_dir("arr.h5"), 1, good, arr, 0, NULL));
    t.data[0] = 8;
    ck_assert_fails(fxp_h5_write_arrays(ctx, in_dir("arr.h5"), 2, clash, arr, 0, NULL), FXP_EIO, ctx);
    ck_assert_int_eq(n_files(), 2);
    fxp_tensor back;
    ck_assert_ok(fxp_h5_read_array(ctx, in_dir("arr.h5"), "a", &back));
    ck_assert_float_eq(back.data[0], 7.0f);
    fxp_tensor_release(&back);
    fxp_tensor_release(&t);
    fxp_ctx_free(ctx);
}
END_TEST

/* A foreign file written with the HDF5 C API, different in every way from ours. */
static void write_dataset(hid_t loc, const char *name, hid_t file_type, hid_t mem_type, int rank,
                          const hsize_t *dims, const void *data, int chunked)
{
    hid_t sp = rank ? H5Screate_simple(rank, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE), lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    if (chunked) {
        H5Pset_chunk(dcpl, rank, dims);
        if (H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0) H5Pset_deflate(dcpl, 6);
    }
    hid_t d = H5Dcreate2(loc, name, file_type, sp, lcpl, dcpl, H5P_DEFAULT);
    ck_assert_int_ge(d, 0);
    if (data) ck_assert_int_ge(H5Dwrite(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), 0);
    H5Dclose(d);
    H5Pclose(lcpl);
    H5Pclose(dcpl);
    H5Sclose(sp);
}

static void write_foreign(const char *path)
{
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_int_ge(f, 0);
    double v[60];
    for (int i = 0; i < 60; i++) v[i] = 0.5 * i - 3;
    const hsize_t g3[3] = { 3, 4, 2 }, g5[3] = { 2, 3, 5 }, flat[2] = { 3, 8 }, four[4] = { 1, 3, 4, 2 },
                  zero[3] = { 0, 4, 2 }, one = 2;
    write_dataset(f, "graphs", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 3, g3, v, 0);
    write_dataset(f, "deep/in/groups/test", H5T_IEEE_F32BE, H5T_NATIVE_DOUBLE, 3, g5, v, 1);
    write_dataset(f, "gz64", H5T_IEEE_F64BE, H5T_NATIVE_DOUBLE, 3, g3, v, 1);
    write_dataset(f, "flat", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, flat, v, 0);
    write_dataset(f, "rank4", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 4, four, v, 0);
    write_dataset(f, "scalar", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 0, NULL, v, 0);
    write_dataset(f, "empty", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 3, zero, NULL, 0);
    int iv[24];
    for (int i = 0; i < 24; i++) iv[i] = i;
    write_dataset(f, "ints", H5T_STD_I32LE, H5T_NATIVE_INT, 3, g3, iv, 0);
    hid_t st = H5Tcopy(H5T_C_S1);
    H5Tset_size(st, 4);
    write_dataset(f, "names", st, st, 1, &one, "abcdefgh", 0);
    H5Tclose(st);
    double bad[24];
    memcpy(bad, v, sizeof bad);
    bad[5] = NAN;
    write_dataset(f, "has_nan", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 3, g3, bad, 0);
    bad[5] = 1.0;
    bad[17] = -INFINITY;
    write_dataset(f, "has_inf", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 3, g3, bad, 0);
    bad[17] = 1e300; /* finite in float64, Inf in float32 */
    write_dataset(f, "too_big", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 3, g3, bad, 0);
    H5Fclose(f);
}

START_TEST(test_dataset_read_foreign)
{
    fxp_ctx *ctx = test_ctx(1);
    write_foreign(in_dir("foreign.h5"));
    fxp_tensor t;
    ck_assert_ok(fxp_dataset_read(ctx, in_dir("foreign.h5"), "graphs", &t));
    ck_assert_int_eq(t.shape[0], 3);
    ck_assert_int_eq(t.shape[1], 4);
    ck_assert_int_eq(t.shape[2], 2);
    for (int i = 0; i < 24; i++) ck_assert_float_eq(t.data[i], (float)(0.5 * i - 3));
    fxp_tensor_release(&t);
    /* big-endian float32 with 5 features, chunked (and compressed if zlib is there), in a group */
    ck_assert_ok(fxp_dataset_read(ctx, in_dir("foreign.h5"), "deep/in/groups/test", &t));
    ck_assert_int_eq(t.shape[2], 5);
    ck_assert_float_eq(t.data[29], 11.5f);
    fxp_tensor_release(&t);
    ck_assert_ok(fxp_dataset_read(ctx, in_dir("foreign.h5"), "gz64", &t));
    ck_assert_float_eq(t.data[23], 8.5f);
    fxp_tensor_release(&t);
    /* the generic reader takes integers; the graph reader does not */
    ck_assert_ok(fxp_h5_read_array(ctx, in_dir("foreign.h5"), "ints", &t));
    ck_assert_float_eq(t.data[23], 23.0f);
    fxp_tensor_release(&t);
    fxp_ctx_free(ctx);
}
END_TEST

/* fxp_dataset_read(path, name) fails with `code`, its message names `what`,
 * and the output tensor is left empty. */
static void expect_read_error(fxp_ctx *ctx, const char *path, const char *name, int code, const char *what)
{
    fxp_tensor t = { (float *)&t, 9, { 9 }, 1 };
    ck_assert_fails(fxp_dataset_read(ctx, path, name, &t), code, ctx);
    ck_assert_msg(strstr(fxp_ctx_error(ctx), what) != NULL, "\"%s\" not in: %s", what, fxp_ctx_error(ctx));
    ck_assert_ptr_null(t.data);
}

START_TEST(test_dataset_read_errors)
{
    fxp_ctx *ctx = test_ctx(1);
    const char *f = in_dir("foreign.h5");
    write_foreign(f);
    stderr_capture_begin();
    expect_read_error(ctx, f, "flat", FXP_EFORMAT, "rank 3");
    expect_read_error(ctx, f, "rank4", FXP_EFORMAT, "[1,3,4,2]");
    expect_read_error(ctx, f, "scalar", FXP_EFORMAT, "scalar");
    expect_read_error(ctx, f, "ints", FXP_EFORMAT, "integers");
    expect_read_error(ctx, f, "names", FXP_EFORMAT, "strings");
    expect_read_error(ctx, f, "empty", FXP_EFORMAT, "empty");
    expect_read_error(ctx, f, "has_nan", FXP_ENUMERIC, "NaN at flat index 5");
    expect_read_error(ctx, f, "has_inf", FXP_ENUMERIC, "Inf at flat index 17");
    expect_read_error(ctx, f, "too_big", FXP_ENUMERIC, "index 17");
    expect_read_error(ctx, f, "deep", FXP_EFORMAT, "group");
    expect_read_error(ctx, f, "test", FXP_ENOTFOUND, "graphs"); /* lists what is there */
    expect_read_error(ctx, f, "deep/in/nothing", FXP_ENOTFOUND, "foreign.h5");
    expect_read_error(ctx, in_dir("absent.h5"), "train", FXP_EIO, "absent.h5");
    expect_read_error(ctx, test_dir, "train", FXP_EIO, "not a regular file");
    write_text(in_dir("text.h5"), "this is not HDF5\n");
    expect_read_error(ctx, in_dir("text.h5"), "train", FXP_EFORMAT, "not an HDF5 file");
    write_text(in_dir("empty.h5"), "");
    expect_read_error(ctx, in_dir("empty.h5"), "train", FXP_EFORMAT, "empty.h5");
    /* truncated copies of a valid file, cut at several places */
    const fxp_mog_dataset_config cfg = { FXP_MOG9, 3, 40, 10, 10, 20 };
    ck_assert_ok(fxp_mog_dataset_write(ctx, in_dir("mog9.h5"), &cfg, NULL, NULL));
    const long size = file_size(in_dir("mog9.h5"));
    const long cuts[4] = { 100, 1000, size / 2, size - 16 };
    for (int k = 0; k < 4; k++) {
        truncated_copy(in_dir("mog9.h5"), in_dir("cut.h5"), cuts[k]);
        expect_read_error(ctx, in_dir("cut.h5"), "test", FXP_EFORMAT, "cut.h5");
    }
    /* missing dataset in our own file lists the splits */
    expect_read_error(ctx, in_dir("mog9.h5"), "training", FXP_ENOTFOUND, "train, valid");
    fxp_tensor t;
    ck_assert_fails(fxp_dataset_read(ctx, NULL, "train", &t), FXP_EINVAL, ctx);
    ck_assert_fails(fxp_dataset_read(ctx, f, "", &t), FXP_EINVAL, ctx);
    ck_assert_int_eq(stderr_capture_end(), 0); /* HDF5 printed nothing */
    fxp_ctx_free(ctx);
}
END_TEST

static Suite *data_suite(void)
{
    Suite *s = suite_create("data");
    TCase *gen = tcase_create("mog");
    tcase_set_timeout(gen, 120);
    tcase_add_test(gen, test_mog_names_info_modes);
    tcase_add_test(gen, test_mog_deterministic);
    tcase_add_test(gen, test_mog_structure);
    tcase_add_test(gen, test_mog_log_prob_vs_brute_force);
    tcase_add_test(gen, test_mog_entropies_match_paper);
    tcase_add_test(gen, test_complete_adjacency);
    suite_add_tcase(s, gen);
    TCase *files = tcase_create("files");
    tcase_set_timeout(files, 60);
    tcase_add_checked_fixture(files, setup_dir, teardown_dir);
    tcase_add_test(files, test_dataset_round_trip);
    tcase_add_test(files, test_dataset_atomic);
    tcase_add_test(files, test_dataset_read_foreign);
    tcase_add_test(files, test_dataset_read_errors);
    suite_add_tcase(s, files);
    return s;
}

FXP_TEST_MAIN(data_suite)
