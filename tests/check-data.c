/* Data: the MoG generators and their exact densities and entropies; HDF5
 * array files and checkpoints (round trips, atomicity, every error case). */
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

#include <hdf5.h>

/* A fresh temporary directory per test (Check forks each test). */
static char dir[256];

static void setup_dir(void)
{
    snprintf(dir, sizeof dir, "/tmp/fxp-check-data-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown_dir(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static const char *in_dir(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static int n_files(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", dir);
    FILE *p = popen(cmd, "r");
    int n = -1;
    ck_assert_int_eq(fscanf(p, "%d", &n), 1);
    pclose(p);
    return n;
}

/* ---- MoG ---------------------------------------------------------------------- */

START_TEST(test_mog_deterministic_and_structured)
{
    fxp_ctx *c1 = test_ctx(1), *c2 = test_ctx(2);
    for (int k = 0; k < 4; k++) {
        const int N = fxp_mog_nodes((fxp_mog_kind)k), G = 300;
        float *a = malloc(sizeof(float) * G * N * 2), *b = malloc(sizeof(float) * G * N * 2);
        fxp_rng r1, r2;
        fxp_rng_seed(&r1, 5);
        fxp_rng_seed(&r2, 5);
        ck_assert_ok(fxp_mog_sample(c1, (fxp_mog_kind)k, &r1, G, a));
        ck_assert_ok(fxp_mog_sample(c2, (fxp_mog_kind)k, &r2, G, b));
        ck_assert_mem_eq(a, b, sizeof(float) * G * N * 2);
        fxp_rng_seed(&r2, 6);
        ck_assert_ok(fxp_mog_sample(c2, (fxp_mog_kind)k, &r2, G, b));
        ck_assert(memcmp(a, b, sizeof(float) * G * N * 2) != 0);
        if (k != FXP_MOG_RING) {
            /* one node per mode: nearest modes of a graph's nodes are all different */
            float modes[32];
            fxp_mog_modes((fxp_mog_kind)k, modes);
            double sum_sq = 0;
            for (int g = 0; g < G; g++) {
                int seen[16] = { 0 };
                for (int i = 0; i < N; i++) {
                    const float *x = a + ((size_t)g * N + i) * 2;
                    int best = 0;
                    double bd = 1e30;
                    for (int j = 0; j < N; j++) {
                        double d = pow(x[0] - modes[2 * j], 2) + pow(x[1] - modes[2 * j + 1], 2);
                        if (d < bd) bd = d, best = j;
                    }
                    seen[best]++;
                    sum_sq += bd;
                }
                for (int j = 0; j < N; j++) ck_assert_int_eq(seen[j], 1);
            }
            /* unit variance per coordinate: E|x - mu|^2 = 2 */
            ck_assert_double_eq_tol(sum_sq / (G * N), 2.0, 0.15);
        } else {
            /* the ring keeps radius 5 sqrt 2 on average */
            double r = 0;
            for (int i = 0; i < G * N; i++) r += hypot(a[2 * i], a[2 * i + 1]);
            ck_assert_double_eq_tol(r / (G * N), 5 * sqrt(2.0), 0.2);
        }
        free(a);
        free(b);
    }
    fxp_ctx_free(c1);
    fxp_ctx_free(c2);
}
END_TEST

/* log p by brute force over all N! permutations (N = 4 or 5). */
static double brute_log_p(const float *x, const float *modes, int N)
{
    int perm[8];
    for (int i = 0; i < N; i++) perm[i] = i;
    double total = 0, count = 0;
    for (;;) {
        double lp = 0;
        for (int i = 0; i < N; i++) {
            double dx = (double)x[2 * i] - modes[2 * perm[i]], dy = (double)x[2 * i + 1] - modes[2 * perm[i] + 1];
            lp += -0.5 * (dx * dx + dy * dy) - log(2 * 3.14159265358979323846);
        }
        total += exp(lp);
        count++;
        int i = N - 2; /* next permutation (lexicographic) */
        while (i >= 0 && perm[i] > perm[i + 1]) i--;
        if (i < 0) break;
        int j = N - 1;
        while (perm[j] < perm[i]) j--;
        int t = perm[i]; perm[i] = perm[j]; perm[j] = t;
        for (int a = i + 1, b = N - 1; a < b; a++, b--) t = perm[a], perm[a] = perm[b], perm[b] = t;
    }
    return log(total / count);
}

START_TEST(test_mog_log_prob_vs_brute_force)
{
    fxp_ctx *ctx = test_ctx(1);
    float modes[8], x[8 * 10];
    fxp_mog_modes(FXP_MOG4, modes);
    fxp_rng r;
    fxp_rng_seed(&r, 9);
    ck_assert_ok(fxp_mog_sample(ctx, FXP_MOG4, &r, 10, x));
    x[0] = 0.3f; /* an ambiguous node between modes: many permutations matter */
    x[1] = 0.1f;
    double lp[10];
    ck_assert_ok(fxp_mog_log_prob(ctx, FXP_MOG4, x, 10, lp));
    for (int g = 0; g < 10; g++) ck_assert_double_eq_tol(lp[g], brute_log_p(x + g * 8, modes, 4), 1e-9 * (1 + fabs(lp[g])));
    fxp_ctx_free(ctx);
}
END_TEST

START_TEST(test_mog_entropies_match_paper)
{
    fxp_ctx *ctx = test_ctx(2);
    /* the paper's Table 4 row: 3.63, 4.26, -, 4.05 */
    const double paper[4] = { 3.63, 4.26, 4.755, 4.05 };
    for (int k = 0; k < 4; k++) {
        double h, se;
        ck_assert_ok(fxp_mog_entropy(ctx, (fxp_mog_kind)k, 77, 1500, &h, &se));
        ck_assert_msg(fabs(h - paper[k]) < 4 * se + 0.006, "%s: %g +- %g vs %g",
                      fxp_mog_name((fxp_mog_kind)k), h, se, paper[k]);
        ck_assert_double_eq_tol(fxp_mog_entropy_separated((fxp_mog_kind)k), paper[k], 0.006);
        ck_assert(fxp_mog_marginal_bound((fxp_mog_kind)k) > h);
    }
    fxp_mog_kind kind;
    ck_assert_fails(fxp_mog_parse("mog5", &kind), FXP_EINVAL, NULL);
    ck_assert_ptr_nonnull(strstr(fxp_last_error(), "mog16"));
    ck_assert_ok(fxp_mog_parse("ring", &kind));
    ck_assert_int_eq(kind, FXP_MOG_RING);
    fxp_ctx_free(ctx);
}
END_TEST

/* ---- array files ---------------------------------------------------------------------- */

START_TEST(test_arrays_round_trip_and_atomicity)
{
    fxp_ctx *ctx = test_ctx(1);
    int s[3] = { 5, 4, 2 };
    fxp_tensor a, back;
    ck_assert_ok(fxp_tensor_alloc(ctx, &a, 3, s));
    test_randn(a.data, 40, 1, 3);
    const char *names[1] = { "train" };
    const fxp_tensor *arr[1] = { &a };
    const fxp_attr attrs[3] = { { "dataset", FXP_ATTR_STRING, "mog4", 0, 0 },
                                { "entropy_per_node", FXP_ATTR_DOUBLE, NULL, 3.6324, 0 },
                                { "seed", FXP_ATTR_INT, NULL, 0, 42 } };
    ck_assert_ok(fxp_h5_write_arrays(ctx, in_dir("d.h5"), 1, names, arr, 3, attrs));
    ck_assert_int_eq(n_files(), 1); /* no temporary left */
    ck_assert_ok(fxp_dataset_read(ctx, in_dir("d.h5"), "train", &back));
    ck_assert(fxp_tensor_same_shape(&a, &back));
    ck_assert_mem_eq(a.data, back.data, 40 * sizeof(float));
    char buf[64];
    ck_assert_ok(fxp_h5_read_attr(ctx, in_dir("d.h5"), "dataset", buf, sizeof buf));
    ck_assert_str_eq(buf, "mog4");
    ck_assert_ok(fxp_h5_read_attr(ctx, in_dir("d.h5"), "seed", buf, sizeof buf));
    ck_assert_str_eq(buf, "42");
    ck_assert_fails(fxp_h5_read_attr(ctx, in_dir("d.h5"), "nope", buf, sizeof buf), FXP_ENOTFOUND, ctx);
    /* a failed write (missing directory) leaves nothing, and an existing file survives a
     * failed overwrite */
    ck_assert_fails(fxp_h5_write_arrays(ctx, in_dir("missing/x.h5"), 1, names, arr, 0, NULL),
                    FXP_EIO, ctx);
    const fxp_tensor empty = { NULL, 3, { 1, 1, 1 }, 0 };
    const fxp_tensor *bad[1] = { &empty };
    ck_assert_fails(fxp_h5_write_arrays(ctx, in_dir("d.h5"), 1, names, bad, 0, NULL), FXP_EINVAL, ctx);
    ck_assert_int_eq(n_files(), 1);
    fxp_tensor_release(&back);
    ck_assert_ok(fxp_dataset_read(ctx, in_dir("d.h5"), "train", &back));
    ck_assert_mem_eq(a.data, back.data, 40 * sizeof(float));
    fxp_tensor_release(&back);
    fxp_tensor_release(&a);
    fxp_ctx_free(ctx);
}
END_TEST

/* A foreign file written with the HDF5 C API: float64 [3, 4, 2] and int [2, 2, 2]. */
static void write_foreign(const char *path, int with_nan)
{
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t d3[3] = { 3, 4, 2 }, d2[2] = { 3, 8 };
    double v[24];
    for (int i = 0; i < 24; i++) v[i] = i * 0.5;
    if (with_nan) v[7] = NAN;
    hid_t sp = H5Screate_simple(3, d3, NULL);
    hid_t ds = H5Dcreate2(f, "graphs", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    H5Dclose(ds);
    H5Sclose(sp);
    sp = H5Screate_simple(2, d2, NULL);
    ds = H5Dcreate2(f, "flat", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    H5Dclose(ds);
    H5Sclose(sp);
    hid_t st = H5Tcopy(H5T_C_S1);
    H5Tset_size(st, 4);
    hsize_t one = 2;
    sp = H5Screate_simple(1, &one, NULL);
    ds = H5Dcreate2(f, "names", st, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, st, H5S_ALL, H5S_ALL, H5P_DEFAULT, "abcdefgh");
    H5Dclose(ds);
    H5Sclose(sp);
    H5Tclose(st);
    H5Fclose(f);
}

START_TEST(test_arrays_foreign_and_errors)
{
    fxp_ctx *ctx = test_ctx(1);
    fxp_tensor t;
    write_foreign(in_dir("foreign.h5"), 0);
    ck_assert_ok(fxp_dataset_read(ctx, in_dir("foreign.h5"), "graphs", &t));
    ck_assert_int_eq(t.shape[0], 3);
    ck_assert_float_eq(t.data[23], 11.5f);
    fxp_tensor_release(&t);
    ck_assert_fails(fxp_dataset_read(ctx, in_dir("foreign.h5"), "flat", &t), FXP_EFORMAT, ctx);
    ck_assert_fails(fxp_dataset_read(ctx, in_dir("foreign.h5"), "names", &t), FXP_EFORMAT, ctx);
    ck_assert_fails(fxp_dataset_read(ctx, in_dir("foreign.h5"), "test", &t), FXP_ENOTFOUND, ctx);
    ck_assert_ptr_nonnull(strstr(fxp_ctx_error(ctx), "graphs")); /* lists what is there */
    write_foreign(in_dir("nan.h5"), 1);
    ck_assert_fails(fxp_dataset_read(ctx, in_dir("nan.h5"), "graphs", &t), FXP_ENUMERIC, ctx);
    ck_assert_fails(fxp_dataset_read(ctx, in_dir("absent.h5"), "test", &t), FXP_EIO, ctx);
    FILE *f = fopen(in_dir("text.h5"), "w");
    fputs("this is not HDF5\n", f);
    fclose(f);
    ck_assert_fails(fxp_dataset_read(ctx, in_dir("text.h5"), "test", &t), FXP_EFORMAT, ctx);
    /* truncated copy of a valid file */
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "head -c 1500 '%s' > '%s'", in_dir("foreign.h5"), in_dir("cut.h5"));
    ck_assert_int_eq(system(cmd), 0);
    int rc = fxp_dataset_read(ctx, in_dir("cut.h5"), "graphs", &t);
    ck_assert_msg(rc == FXP_EFORMAT, "truncated file: %s (%s)", fxp_status_name(rc), fxp_last_error());
    ck_assert_fails(fxp_dataset_read(ctx, dir, "x", &t), FXP_EIO, ctx); /* a directory */
    fxp_ctx_free(ctx);
}
END_TEST

/* ---- checkpoints ------------------------------------------------------------------------- */

static fxp_params *make_params(fxp_ctx *ctx, int variant, uint64_t seed)
{
    fxp_params *ps;
    ck_assert_ok(fxp_params_new(ctx, &ps));
    int a[2] = { 3, 4 }, b[1] = { 5 }, c[3] = { 2, 2, variant == 2 ? 3 : 2 }, u[1] = { 6 };
    ck_assert_ok(fxp_params_add(ps, "flow/0/coupling/w", FXP_PARAM_TRAINABLE, 2, a, NULL));
    ck_assert_ok(fxp_params_add(ps, "flow/0/coupling/b", FXP_PARAM_TRAINABLE, 1, b, NULL));
    ck_assert_ok(fxp_params_add(ps, "flow/1/gce/theta", FXP_PARAM_TRAINABLE, 3, c, NULL));
    ck_assert_ok(fxp_params_add(ps, "flow/1/gce/u", FXP_PARAM_STATE, 1, u, NULL));
    if (variant == 1) ck_assert_ok(fxp_params_add(ps, "flow/2/extra", FXP_PARAM_TRAINABLE, 1, b, NULL));
    test_randn(fxp_params_data(ps, FXP_PARAM_TRAINABLE), fxp_params_size(ps, FXP_PARAM_TRAINABLE), seed, 1);
    test_randn(fxp_params_data(ps, FXP_PARAM_STATE), fxp_params_size(ps, FXP_PARAM_STATE), seed + 1, 1);
    return ps;
}

START_TEST(test_checkpoint_round_trip)
{
    fxp_ctx *ctx = test_ctx(1);
    fxp_params *ps = make_params(ctx, 0, 1), *back = make_params(ctx, 0, 2);
    fxp_optim_config oc;
    fxp_optim_config_default(&oc, FXP_OPTIM_ADAM);
    fxp_optim *o, *ob;
    ck_assert_ok(fxp_optim_new(ctx, ps, &oc, &o));
    ck_assert_ok(fxp_optim_new(ctx, back, &oc, &ob));
    test_randn(fxp_params_grad_data(ps), fxp_params_size(ps, 0), 3, 1);
    ck_assert_ok(fxp_optim_step(o, NULL));
    ck_assert_ok(fxp_optim_step(o, NULL));
    fxp_rng r1, r2;
    fxp_rng_seed(&r1, 99);
    fxp_rng_u64(&r1);
    fxp_rng *rs[1] = { &r1 }, *rb[1] = { &r2 };
    const char *rn[1] = { "data" }, *keys[2] = { "kind", "hidden" }, *vals[2] = { "gnf", "64" };
    fxp_checkpoint c = { ps, o, 1, rn, rs, 2, keys, vals };
    ck_assert_ok(fxp_checkpoint_save(ctx, in_dir("c.h5"), &c));
    ck_assert_int_eq(n_files(), 1);
    fxp_checkpoint cb = { back, ob, 1, rn, rb, 0, NULL, NULL };
    ck_assert_ok(fxp_checkpoint_load(ctx, in_dir("c.h5"), &cb));
    ck_assert_mem_eq(fxp_params_data(back, 0), fxp_params_data(ps, 0), fxp_params_size(ps, 0) * 4);
    ck_assert_mem_eq(fxp_params_data(back, 1), fxp_params_data(ps, 1), fxp_params_size(ps, 1) * 4);
    ck_assert_mem_eq(fxp_optim_m(ob), fxp_optim_m(o), fxp_optim_state_size(o) * 4);
    ck_assert_mem_eq(fxp_optim_v(ob), fxp_optim_v(o), fxp_optim_state_size(o) * 4);
    ck_assert_int_eq(fxp_optim_steps(ob), 2);
    ck_assert_uint_eq(r2.seed, r1.seed);
    ck_assert_uint_eq(r2.counter, r1.counter);
    char buf[32];
    ck_assert_ok(fxp_checkpoint_config(ctx, in_dir("c.h5"), "hidden", buf, sizeof buf));
    ck_assert_str_eq(buf, "64");
    ck_assert_fails(fxp_checkpoint_config(ctx, in_dir("c.h5"), "depth", buf, sizeof buf), FXP_ENOTFOUND, ctx);
    fxp_optim_free(o);
    fxp_optim_free(ob);
    fxp_params_free(ps);
    fxp_params_free(back);
    fxp_ctx_free(ctx);
}
END_TEST

START_TEST(test_checkpoint_mismatch_and_damage)
{
    fxp_ctx *ctx = test_ctx(1);
    fxp_params *ps = make_params(ctx, 0, 1);
    fxp_checkpoint c = { ps, NULL, 0, NULL, NULL, 0, NULL, NULL };
    ck_assert_ok(fxp_checkpoint_save(ctx, in_dir("c.h5"), &c));
    /* the model has a parameter the file lacks; a shape differs; the file has one more */
    fxp_params *more = make_params(ctx, 1, 5), *shape = make_params(ctx, 2, 5);
    float before[64];
    memcpy(before, fxp_params_data(more, 0), fxp_params_size(more, 0) * 4);
    fxp_checkpoint cm = { more, NULL, 0, NULL, NULL, 0, NULL, NULL };
    ck_assert_fails(fxp_checkpoint_load(ctx, in_dir("c.h5"), &cm), FXP_EMISMATCH, ctx);
    ck_assert_ptr_nonnull(strstr(fxp_ctx_error(ctx), "flow/2/extra"));
    ck_assert_mem_eq(fxp_params_data(more, 0), before, fxp_params_size(more, 0) * 4); /* untouched */
    fxp_checkpoint cs = { shape, NULL, 0, NULL, NULL, 0, NULL, NULL };
    ck_assert_fails(fxp_checkpoint_load(ctx, in_dir("c.h5"), &cs), FXP_EMISMATCH, ctx);
    ck_assert_ptr_nonnull(strstr(fxp_ctx_error(ctx), "[2,2,2]"));
    ck_assert_ok(fxp_checkpoint_save(ctx, in_dir("more.h5"), &cm));
    ck_assert_fails(fxp_checkpoint_load(ctx, in_dir("more.h5"), &c), FXP_EMISMATCH, ctx);
    ck_assert_ptr_nonnull(strstr(fxp_ctx_error(ctx), "extra"));
    /* an optimizer is required but absent */
    fxp_optim_config oc;
    fxp_optim_config_default(&oc, FXP_OPTIM_ADAM);
    fxp_optim *o;
    ck_assert_ok(fxp_optim_new(ctx, ps, &oc, &o));
    fxp_checkpoint co = { ps, o, 0, NULL, NULL, 0, NULL, NULL };
    ck_assert_fails(fxp_checkpoint_load(ctx, in_dir("c.h5"), &co), FXP_EMISMATCH, ctx);
    /* damaged files: truncated, text, not a checkpoint, missing */
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "head -c 2000 '%s' > '%s'", in_dir("c.h5"), in_dir("cut.h5"));
    ck_assert_int_eq(system(cmd), 0);
    int rc = fxp_checkpoint_load(ctx, in_dir("cut.h5"), &c);
    ck_assert_msg(rc == FXP_EFORMAT, "truncated: %s", fxp_status_name(rc));
    FILE *f = fopen(in_dir("text.h5"), "w");
    fputs("garbage", f);
    fclose(f);
    ck_assert_fails(fxp_checkpoint_load(ctx, in_dir("text.h5"), &c), FXP_EFORMAT, ctx);
    write_foreign(in_dir("foreign.h5"), 0);
    ck_assert_fails(fxp_checkpoint_load(ctx, in_dir("foreign.h5"), &c), FXP_EFORMAT, ctx);
    ck_assert_fails(fxp_checkpoint_load(ctx, in_dir("nothing.h5"), &c), FXP_EIO, ctx);
    /* flipping bytes inside the data region of a real checkpoint is caught or harmless,
     * never a crash: overwrite the superblock signature */
    snprintf(cmd, sizeof cmd, "cp '%s' '%s' && printf 'XXXXXXXX' | dd of='%s' bs=1 seek=0 conv=notrunc 2>/dev/null",
             in_dir("c.h5"), in_dir("bad.h5"), in_dir("bad.h5"));
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_fails(fxp_checkpoint_load(ctx, in_dir("bad.h5"), &c), FXP_EFORMAT, ctx);
    ck_assert_fails(fxp_checkpoint_save(ctx, in_dir("no/such/dir.h5"), &c), FXP_EIO, ctx);
    fxp_optim_free(o);
    fxp_params_free(ps);
    fxp_params_free(more);
    fxp_params_free(shape);
    fxp_ctx_free(ctx);
}
END_TEST

static Suite *data_suite(void)
{
    Suite *s = suite_create("data");
    TCase *tc = tcase_create("data");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup_dir, teardown_dir);
    tcase_add_test(tc, test_mog_deterministic_and_structured);
    tcase_add_test(tc, test_mog_log_prob_vs_brute_force);
    tcase_add_test(tc, test_mog_entropies_match_paper);
    tcase_add_test(tc, test_arrays_round_trip_and_atomicity);
    tcase_add_test(tc, test_arrays_foreign_and_errors);
    tcase_add_test(tc, test_checkpoint_round_trip);
    tcase_add_test(tc, test_checkpoint_mismatch_and_damage);
    suite_add_tcase(s, tc);
    return s;
}

FXP_TEST_MAIN(data_suite)
