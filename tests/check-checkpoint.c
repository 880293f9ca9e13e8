/* Checkpoints: save -> load round trips (values, state, optimizer, RNG
 * streams, configuration), all-or-nothing loading on every kind of mismatch,
 * damaged files, atomic writes, and silence on stderr. */
#include "h5test.h"

#include <hdf5.h>
#include <errno.h>
#include <signal.h>
#include <sys/resource.h>

/* A small model: three trainable entries, one state entry.  variant 1 adds
 * a trainable entry, variant 2 changes one shape, variant 3 registers the
 * state entry as trainable. */
static fxp_params *make_params(fxp_ctx *ctx, int variant, uint64_t seed)
{
    fxp_params *ps;
    ck_assert_ok(fxp_params_new(ctx, &ps));
    const int a[2] = { 3, 4 }, b[1] = { 5 }, c[3] = { 2, 2, variant == 2 ? 3 : 2 }, u[1] = { 6 };
    ck_assert_ok(fxp_params_add(ps, "flow/0/coupling/w", FXP_PARAM_TRAINABLE, 2, a, NULL));
    ck_assert_ok(fxp_params_add(ps, "flow/0/coupling/b", FXP_PARAM_TRAINABLE, 1, b, NULL));
    ck_assert_ok(fxp_params_add(ps, "flow/1/gce/theta0", FXP_PARAM_TRAINABLE, 3, c, NULL));
    ck_assert_ok(fxp_params_add(ps, "flow/1/gce/u", variant == 3 ? FXP_PARAM_TRAINABLE : FXP_PARAM_STATE,
                                1, u, NULL));
    if (variant == 1) ck_assert_ok(fxp_params_add(ps, "flow/2/extra", FXP_PARAM_TRAINABLE, 1, b, NULL));
    test_randn(fxp_params_data(ps, FXP_PARAM_TRAINABLE), fxp_params_size(ps, FXP_PARAM_TRAINABLE), seed, 1);
    if (fxp_params_size(ps, FXP_PARAM_STATE))
        test_randn(fxp_params_data(ps, FXP_PARAM_STATE), fxp_params_size(ps, FXP_PARAM_STATE), seed + 1, 1);
    return ps;
}

static fxp_optim *make_optim(fxp_ctx *ctx, fxp_params *ps, fxp_optim_kind kind, int steps, uint64_t seed)
{
    fxp_optim_config oc;
    fxp_optim_config_default(&oc, kind);
    fxp_optim *o;
    ck_assert_ok(fxp_optim_new(ctx, ps, &oc, &o));
    for (int s = 0; s < steps; s++) {
        test_randn(fxp_params_grad_data(ps), fxp_params_size(ps, FXP_PARAM_TRAINABLE), seed + s, 1);
        ck_assert_ok(fxp_optim_step(o, NULL));
    }
    return o;
}

/* A copy of everything a load may touch, to show that a failed load did not. */
typedef struct snapshot {
    float tr[64], st[64], m[64], v[64];
    int64_t steps;
    fxp_rng rng;
} snapshot;

static void take(snapshot *s, fxp_params *ps, fxp_optim *o, const fxp_rng *r)
{
    memset(s, 0, sizeof *s);
    /* an empty section has no data pointer: memcpy(dst, NULL, 0) is undefined */
    if (fxp_params_size(ps, 0))
        memcpy(s->tr, fxp_params_data(ps, 0), fxp_params_size(ps, 0) * sizeof(float));
    if (fxp_params_size(ps, 1))
        memcpy(s->st, fxp_params_data(ps, 1), fxp_params_size(ps, 1) * sizeof(float));
    if (o) {
        memcpy(s->m, fxp_optim_m(o), fxp_optim_state_size(o) * sizeof(float));
        memcpy(s->v, fxp_optim_v(o), fxp_optim_state_size(o) * sizeof(float));
        s->steps = fxp_optim_steps(o);
    }
    if (r) s->rng = *r;
}

static void assert_untouched(const snapshot *before, fxp_params *ps, fxp_optim *o, const fxp_rng *r)
{
    snapshot now;
    take(&now, ps, o, r);
    ck_assert_msg(!memcmp(before, &now, sizeof now), "a failed load modified its target");
}

START_TEST(test_round_trip)
{
    fxp_ctx *ctx = test_ctx(1);
    fxp_params *ps = make_params(ctx, 0, 1), *back = make_params(ctx, 0, 2);
    fxp_optim *o = make_optim(ctx, ps, FXP_OPTIM_ADAM, 3, 10), *ob = make_optim(ctx, back, FXP_OPTIM_ADAM, 1, 20);
    fxp_rng r1, r2, b1, b2;
    fxp_rng_seed(&r1, 99);
    fxp_rng_u64(&r1);
    r2 = fxp_rng_split(&r1);
    fxp_rng_seed(&b1, 0);
    fxp_rng_seed(&b2, 0);
    fxp_rng *rs[2] = { &r1, &r2 }, *rb[2] = { &b1, &b2 };
    const char *rn[2] = { "data", "model/dropout" };
    const char *keys[3] = { "model", "hidden", "note" }, *vals[3] = { "gnf-gce", "64", "" };
    const fxp_checkpoint c = { ps, o, 2, rn, rs, 3, keys, vals };
    ck_assert_ok(fxp_checkpoint_save(ctx, in_dir("c.h5"), &c));
    ck_assert_int_eq(n_files(), 1);
    const fxp_checkpoint cb = { back, ob, 2, rn, rb, 0, NULL, NULL };
    ck_assert_ok(fxp_checkpoint_load(ctx, in_dir("c.h5"), &cb));
    ck_assert_mem_eq(fxp_params_data(back, 0), fxp_params_data(ps, 0), fxp_params_size(ps, 0) * 4);
    ck_assert_mem_eq(fxp_params_data(back, 1), fxp_params_data(ps, 1), fxp_params_size(ps, 1) * 4);
    ck_assert_mem_eq(fxp_optim_m(ob), fxp_optim_m(o), fxp_optim_state_size(o) * 4);
    ck_assert_mem_eq(fxp_optim_v(ob), fxp_optim_v(o), fxp_optim_state_size(o) * 4);
    ck_assert_int_eq(fxp_optim_steps(ob), 3);
    ck_assert(b1.seed == r1.seed && b1.counter == r1.counter);
    ck_assert(b2.seed == r2.seed && b2.counter == r2.counter);
    /* training continues identically: one more step with the same gradient */
    test_randn(fxp_params_grad_data(ps), fxp_params_size(ps, 0), 77, 1);
    test_randn(fxp_params_grad_data(back), fxp_params_size(back, 0), 77, 1);
    ck_assert_ok(fxp_optim_step(o, NULL));
    ck_assert_ok(fxp_optim_step(ob, NULL));
    ck_assert_mem_eq(fxp_params_data(back, 0), fxp_params_data(ps, 0), fxp_params_size(ps, 0) * 4);
    fxp_optim_free(o);
    fxp_optim_free(ob);
    fxp_params_free(ps);
    fxp_params_free(back);
    fxp_ctx_free(ctx);
}
END_TEST

typedef struct visited {
    int n;
    char keys[4][32], values[4][32];
    int stop_after;
} visited;

static int visit(void *user, const char *key, const char *value)
{
    visited *v = user;
    snprintf(v->keys[v->n], sizeof v->keys[0], "%s", key);
    snprintf(v->values[v->n], sizeof v->values[0], "%s", value);
    return ++v->n == v->stop_after;
}

START_TEST(test_config_and_layout)
{
    fxp_ctx *ctx = test_ctx(1);
    fxp_params *ps = make_params(ctx, 0, 1);
    /* keys in an order that is not alphabetical: iteration keeps insertion order */
    const char *keys[3] = { "zeta", "alpha", "mid" }, *vals[3] = { "1", "two words", "x=3" };
    const fxp_checkpoint c = { ps, NULL, 0, NULL, NULL, 3, keys, vals };
    ck_assert_ok(fxp_checkpoint_save(ctx, in_dir("c.h5"), &c));
    char buf[32];
    ck_assert_ok(fxp_checkpoint_config(ctx, in_dir("c.h5"), "alpha", buf, sizeof buf));
    ck_assert_str_eq(buf, "two words");
    ck_assert_fails(fxp_checkpoint_config(ctx, in_dir("c.h5"), "depth", buf, sizeof buf), FXP_ENOTFOUND, ctx);
    ck_assert_fails(fxp_checkpoint_config(ctx, in_dir("c.h5"), "alpha", buf, 4), FXP_EINVAL, ctx);
    visited v = { 0, { "" }, { "" }, 0 };
    ck_assert_ok(fxp_checkpoint_config_each(ctx, in_dir("c.h5"), visit, &v));
    ck_assert_int_eq(v.n, 3);
    for (int k = 0; k < 3; k++) {
        ck_assert_str_eq(v.keys[k], keys[k]);
        ck_assert_str_eq(v.values[k], vals[k]);
    }
    visited w = { 0, { "" }, { "" }, 2 };
    ck_assert_ok(fxp_checkpoint_config_each(ctx, in_dir("c.h5"), visit, &w));
    ck_assert_int_eq(w.n, 2);
    /* the plain layout, read with the HDF5 C API */
    hid_t f = H5Fopen(in_dir("c.h5"), H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert_int_ge(f, 0);
    ck_assert_int_gt(H5Lexists(f, "params", H5P_DEFAULT), 0);
    hid_t d = H5Dopen2(f, "params/flow/1/gce/theta0", H5P_DEFAULT);
    ck_assert_int_ge(d, 0);
    float th[8];
    ck_assert_int_ge(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, th), 0);
    ck_assert_mem_eq(th, fxp_param_value(fxp_params_find(ps, "flow/1/gce/theta0")).data, sizeof th);
    H5Dclose(d);
    d = H5Dopen2(f, "state/flow/1/gce/u", H5P_DEFAULT);
    ck_assert_int_ge(d, 0);
    H5Dclose(d);
    H5Fclose(f);
    char ver[32];
    ck_assert_ok(fxp_h5_read_attr(ctx, in_dir("c.h5"), "library_version", ver, sizeof ver));
    ck_assert_str_eq(ver, fxp_version());
    ck_assert_ok(fxp_h5_read_attr(ctx, in_dir("c.h5"), "format_version", ver, sizeof ver));
    ck_assert_str_eq(ver, "2");
    /* bad arguments */
    const char *dup[2] = { "a", "a" }, *dv[2] = { "1", "2" };
    const fxp_checkpoint cd = { ps, NULL, 0, NULL, NULL, 2, dup, dv };
    ck_assert_fails(fxp_checkpoint_save(ctx, in_dir("d.h5"), &cd), FXP_EINVAL, ctx);
    fxp_rng r;
    fxp_rng *rs[1] = { &r };
    const char *badname[1] = { "/lead" };
    const fxp_checkpoint cr = { ps, NULL, 1, badname, rs, 0, NULL, NULL };
    ck_assert_fails(fxp_checkpoint_save(ctx, in_dir("d.h5"), &cr), FXP_EINVAL, ctx);
    ck_assert_fails(fxp_checkpoint_save(ctx, NULL, &c), FXP_EINVAL, ctx);
    fxp_params *other = make_params(ctx, 1, 3);
    fxp_optim *o = make_optim(ctx, other, FXP_OPTIM_ADAM, 0, 0);
    const fxp_checkpoint cw = { ps, o, 0, NULL, NULL, 0, NULL, NULL };
    ck_assert_fails(fxp_checkpoint_save(ctx, in_dir("d.h5"), &cw), FXP_EINVAL, ctx);
    ck_assert_int_eq(n_files(), 1);
    fxp_optim_free(o);
    fxp_params_free(other);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}
END_TEST

START_TEST(test_mismatch_leaves_target_untouched)
{
    fxp_ctx *ctx = test_ctx(1);
    fxp_params *ps = make_params(ctx, 0, 1);
    fxp_optim *o = make_optim(ctx, ps, FXP_OPTIM_ADAM, 2, 5);
    fxp_rng r;
    fxp_rng_seed(&r, 3);
    fxp_rng *rs[1] = { &r };
    const char *rn[1] = { "data" }, *rn2[1] = { "other" };
    const fxp_checkpoint c = { ps, o, 1, rn, rs, 0, NULL, NULL };
    ck_assert_ok(fxp_checkpoint_save(ctx, in_dir("c.h5"), &c));
    const fxp_checkpoint c_plain = { ps, NULL, 0, NULL, NULL, 0, NULL, NULL };
    ck_assert_ok(fxp_checkpoint_save(ctx, in_dir("plain.h5"), &c_plain));
    snapshot before;

    /* the model has a parameter the file lacks */
    fxp_params *more = make_params(ctx, 1, 5);
    fxp_optim *om = make_optim(ctx, more, FXP_OPTIM_ADAM, 1, 6);
    fxp_rng rm;
    fxp_rng_seed(&rm, 8);
    fxp_rng *rms[1] = { &rm };
    const fxp_checkpoint cm = { more, om, 1, rn, rms, 0, NULL, NULL };
    take(&before, more, om, &rm);
    ck_assert_fails(fxp_checkpoint_load(ctx, in_dir("c.h5"), &cm), FXP_EMISMATCH, ctx);
    ck_assert_ptr_nonnull(strstr(fxp_ctx_error(ctx), "flow/2/extra"));
    assert_untouched(&before, more, om, &rm);

    /* the file has a parameter the model lacks */
    const fxp_checkpoint cm_plain = { more, NULL, 0, NULL, NULL, 0, NULL, NULL };
    ck_assert_ok(fxp_checkpoint_save(ctx, in_dir("more.h5"), &cm_plain));
    take(&before, ps, o, &r);
    ck_assert_fails(fxp_checkpoint_load(ctx, in_dir("more.h5"), &c_plain), FXP_EMISMATCH, ctx);
    ck_assert_ptr_nonnull(strstr(fxp_ctx_error(ctx), "flow/2/extra"));
    assert_untouched(&before, ps, o, &r);

    /* a shape differs: both shapes are named */
    fxp_params *shape = make_params(ctx, 2, 5);
    const fxp_checkpoint cs = { shape, NULL, 0, NULL, NULL, 0, NULL, NULL };
    take(&before, shape, NULL, NULL);
    ck_assert_fails(fxp_checkpoint_load(ctx, in_dir("c.h5"), &cs), FXP_EMISMATCH, ctx);
    ck_assert_ptr_nonnull(strstr(fxp_ctx_error(ctx), "flow/1/gce/theta0"));
    ck_assert_ptr_nonnull(strstr(fxp_ctx_error(ctx), "[2,2,2]"));
    ck_assert_ptr_nonnull(strstr(fxp_ctx_error(ctx), "[2,2,3]"));
    assert_untouched(&before, shape, NULL, NULL);

    /* an entry saved as state but trainable in the model */
    fxp_params *kind = make_params(ctx, 3, 5);
    const fxp_checkpoint ck = { kind, NULL, 0, NULL, NULL, 0, NULL, NULL };
    take(&before, kind, NULL, NULL);
    ck_assert_fails(fxp_checkpoint_load(ctx, in_dir("c.h5"), &ck), FXP_EMISMATCH, ctx);
    ck_assert_ptr_nonnull(strstr(fxp_ctx_error(ctx), "flow/1/gce/u"));
    assert_untouched(&before, kind, NULL, NULL);

    /* an optimizer is wanted but the file has none; or of another kind */
    fxp_params *ps2 = make_params(ctx, 0, 9);
    fxp_optim *o2 = make_optim(ctx, ps2, FXP_OPTIM_ADAMAX, 1, 4);
    fxp_rng r2;
    fxp_rng_seed(&r2, 4);
    fxp_rng *r2s[1] = { &r2 };
    const fxp_checkpoint c2 = { ps2, o2, 0, NULL, NULL, 0, NULL, NULL };
    take(&before, ps2, o2, &r2);
    ck_assert_fails(fxp_checkpoint_load(ctx, in_dir("plain.h5"), &c2), FXP_EMISMATCH, ctx);
    ck_assert_ptr_nonnull(strstr(fxp_ctx_error(ctx), "optimizer"));
    ck_assert_fails(fxp_checkpoint_load(ctx, in_dir("c.h5"), &c2), FXP_EMISMATCH, ctx);
    ck_assert_ptr_nonnull(strstr(fxp_ctx_error(ctx), "adamax"));
    assert_untouched(&before, ps2, o2, &r2);

    /* a requested RNG stream is not in the file */
    const fxp_checkpoint c3 = { ps2, NULL, 1, rn2, r2s, 0, NULL, NULL };
    ck_assert_fails(fxp_checkpoint_load(ctx, in_dir("c.h5"), &c3), FXP_EMISMATCH, ctx);
    ck_assert_ptr_nonnull(strstr(fxp_ctx_error(ctx), "rng/other"));
    assert_untouched(&before, ps2, o2, &r2);

    fxp_optim_free(o2);
    fxp_optim_free(om);
    fxp_optim_free(o);
    fxp_params_free(ps2);
    fxp_params_free(kind);
    fxp_params_free(shape);
    fxp_params_free(more);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}
END_TEST

/* Overwrite the integer root attribute format_version. */
static void set_format_version(const char *path, int64_t v)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    ck_assert_int_ge(f, 0);
    hid_t a = H5Aopen(f, "format_version", H5P_DEFAULT);
    ck_assert_int_ge(a, 0);
    ck_assert_int_ge(H5Awrite(a, H5T_NATIVE_INT64, &v), 0);
    H5Aclose(a);
    H5Fclose(f);
}

START_TEST(test_damaged_files)
{
    fxp_ctx *ctx = test_ctx(1);
    fxp_params *ps = make_params(ctx, 0, 1);
    fxp_optim *o = make_optim(ctx, ps, FXP_OPTIM_ADAM, 1, 2);
    const fxp_checkpoint c = { ps, o, 0, NULL, NULL, 0, NULL, NULL };
    ck_assert_ok(fxp_checkpoint_save(ctx, in_dir("c.h5"), &c));
    snapshot before;
    take(&before, ps, o, NULL);
    stderr_capture_begin();
    const long size = file_size(in_dir("c.h5"));
    const long cuts[5] = { 0, 8, 600, size / 2, size - 8 };
    for (int k = 0; k < 5; k++) {
        truncated_copy(in_dir("c.h5"), in_dir("cut.h5"), cuts[k]);
        ck_assert_fails(fxp_checkpoint_load(ctx, in_dir("cut.h5"), &c), FXP_EFORMAT, ctx);
        ck_assert_ptr_nonnull(strstr(fxp_ctx_error(ctx), "cut.h5"));
    }
    write_text(in_dir("text.h5"), "garbage, not HDF5");
    ck_assert_fails(fxp_checkpoint_load(ctx, in_dir("text.h5"), &c), FXP_EFORMAT, ctx);
    ck_assert_fails(fxp_checkpoint_load(ctx, in_dir("nothing.h5"), &c), FXP_EIO, ctx);
    ck_assert_ptr_nonnull(strstr(fxp_ctx_error(ctx), "nothing.h5"));
    /* an HDF5 file that is not a checkpoint (a dataset file) */
    const fxp_mog_dataset_config dc = { FXP_MOG4, 1, 4, 2, 2, 4 };
    ck_assert_ok(fxp_mog_dataset_write(ctx, in_dir("data.h5"), &dc, NULL, NULL));
    ck_assert_fails(fxp_checkpoint_load(ctx, in_dir("data.h5"), &c), FXP_EFORMAT, ctx);
    ck_assert_ptr_nonnull(strstr(fxp_ctx_error(ctx), "not a libflowexp checkpoint"));
    char buf[8];
    ck_assert_fails(fxp_checkpoint_config(ctx, in_dir("data.h5"), "model", buf, sizeof buf), FXP_EFORMAT, ctx);
    /* a broken signature; a format version from the future */
    truncated_copy(in_dir("c.h5"), in_dir("bad.h5"), size);
    FILE *f = fopen(in_dir("bad.h5"), "r+b");
    fputs("XXXXXXXX", f);
    fclose(f);
    ck_assert_fails(fxp_checkpoint_load(ctx, in_dir("bad.h5"), &c), FXP_EFORMAT, ctx);
    truncated_copy(in_dir("c.h5"), in_dir("future.h5"), size);
    set_format_version(in_dir("future.h5"), 99);
    ck_assert_fails(fxp_checkpoint_load(ctx, in_dir("future.h5"), &c), FXP_EFORMAT, ctx);
    ck_assert_ptr_nonnull(strstr(fxp_ctx_error(ctx), "version 99"));
    ck_assert_int_eq(stderr_capture_end(), 0); /* HDF5 printed nothing */
    assert_untouched(&before, ps, o, NULL);
    fxp_optim_free(o);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}
END_TEST

START_TEST(test_atomic_save)
{
    fxp_ctx *ctx = test_ctx(1);
    fxp_params *ps = make_params(ctx, 0, 1), *back = make_params(ctx, 0, 2);
    const fxp_checkpoint c = { ps, NULL, 0, NULL, NULL, 0, NULL, NULL };
    ck_assert_fails(fxp_checkpoint_save(ctx, in_dir("no/such/dir.h5"), &c), FXP_EIO, ctx);
    ck_assert_int_eq(n_files(), 0);
    ck_assert_ok(fxp_checkpoint_save(ctx, in_dir("c.h5"), &c));
    /* a save that fails half-way ("a" and "a/b" cannot both be RNG datasets)
     * leaves the previous checkpoint intact and no temporary */
    fxp_rng r;
    fxp_rng_seed(&r, 1);
    fxp_rng *rs[2] = { &r, &r };
    const char *rn[2] = { "a", "a/b" };
    test_randn(fxp_params_data(ps, 0), fxp_params_size(ps, 0), 50, 1);
    const fxp_checkpoint bad = { ps, NULL, 2, rn, rs, 0, NULL, NULL };
    stderr_capture_begin();
    ck_assert_fails(fxp_checkpoint_save(ctx, in_dir("c.h5"), &bad), FXP_EIO, ctx);
    ck_assert_int_eq(stderr_capture_end(), 0);
    ck_assert_int_eq(n_files(), 1);
    const fxp_checkpoint cb = { back, NULL, 0, NULL, NULL, 0, NULL, NULL };
    ck_assert_ok(fxp_checkpoint_load(ctx, in_dir("c.h5"), &cb));
    fxp_params *orig = make_params(ctx, 0, 1);
    ck_assert_mem_eq(fxp_params_data(back, 0), fxp_params_data(orig, 0), fxp_params_size(orig, 0) * 4);
    /* a successful save replaces it */
    ck_assert_ok(fxp_checkpoint_save(ctx, in_dir("c.h5"), &c));
    ck_assert_ok(fxp_checkpoint_load(ctx, in_dir("c.h5"), &cb));
    ck_assert_mem_eq(fxp_params_data(back, 0), fxp_params_data(ps, 0), fxp_params_size(ps, 0) * 4);
    ck_assert_int_eq(n_files(), 1);
    fxp_params_free(orig);
    fxp_params_free(back);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}
END_TEST

/* A save into a location that runs out of space (a file size limit, with
 * SIGXFSZ ignored, so write() fails with EFBIG as on a full disk) fails with
 * FXP_EIO naming the cause, closes every HDF5 handle, removes its temporary,
 * keeps the older checkpoint, and leaves the process able to save again and
 * to shut HDF5 down without crashing (HDF5 1.10 crashed in H5close after a
 * failed H5Fclose of a file on a full disk). */
START_TEST(test_save_disk_full)
{
    fxp_ctx *ctx = test_ctx(1);
    fxp_params *ps = make_params(ctx, 0, 1);
    fxp_optim *o = make_optim(ctx, ps, FXP_OPTIM_ADAM, 1, 2);
    const fxp_checkpoint c = { ps, o, 0, NULL, NULL, 0, NULL, NULL };
    ck_assert_ok(fxp_checkpoint_save(ctx, in_dir("old.h5"), &c));
    const long full = file_size(in_dir("old.h5"));
    ck_assert_int_gt(full, 4096);
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit saved, lim;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &saved), 0);
    const long limits[6] = { 0, 1, 512, 2048, full / 2, full - 1 };
    stderr_capture_begin();
    for (int k = 0; k < 6; k++) {
        lim = saved;
        lim.rlim_cur = (rlim_t)limits[k];
        ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
        ck_assert_fails(fxp_checkpoint_save(ctx, in_dir("old.h5"), &c), FXP_EIO, ctx);
        ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &saved), 0);
        ck_assert_ptr_nonnull(strstr(fxp_ctx_error(ctx), "old.h5.tmp."));
        ck_assert_ptr_nonnull(strstr(fxp_ctx_error(ctx), strerror(EFBIG)));
        ck_assert_int_eq(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), 0);
        ck_assert_int_eq(n_files(), 1); /* old.h5 only: no temporary left */
        ck_assert_int_eq(file_size(in_dir("old.h5")), full);
    }
    /* the same through the other writers */
    lim = saved;
    lim.rlim_cur = 1024;
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    const fxp_mog_dataset_config dc = { FXP_MOG4, 1, 400, 2, 2, 4 };
    ck_assert_fails(fxp_mog_dataset_write(ctx, in_dir("d.h5"), &dc, NULL, NULL), FXP_EIO, ctx);
    fxp_tensor big;
    const int shape[2] = { 64, 64 };
    ck_assert_ok(fxp_tensor_alloc(ctx, &big, 2, shape));
    const char *names[1] = { "x" };
    const fxp_tensor *arrays[1] = { &big };
    ck_assert_fails(fxp_h5_write_arrays(ctx, in_dir("a.h5"), 1, names, arrays, 0, NULL), FXP_EIO,
                    ctx);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &saved), 0);
    ck_assert_int_eq(stderr_capture_end(), 0);
    ck_assert_int_eq(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), 0);
    ck_assert_int_eq(n_files(), 1);
    /* with space again, saving and loading work */
    ck_assert_ok(fxp_checkpoint_save(ctx, in_dir("new.h5"), &c));
    ck_assert_ok(fxp_checkpoint_load(ctx, in_dir("new.h5"), &c));
    ck_assert_int_eq(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), 0);
    ck_assert_int_ge(H5close(), 0); /* crashed here before */
    fxp_tensor_release(&big);
    fxp_optim_free(o);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}
END_TEST

/* The file offset of the data of dataset `name`: where its first 16 bytes
 * (as stored, little-endian like this machine) occur in the file. */
static long data_offset(const char *path, const char *name)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert_int_ge(f, 0);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    ck_assert_int_ge(d, 0);
    hid_t t = H5Dget_type(d);
    unsigned char head[4096];
    ck_assert_int_le(H5Dget_storage_size(d), sizeof head);
    ck_assert_int_ge(H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, head), 0);
    H5Tclose(t);
    H5Dclose(d);
    H5Fclose(f);
    const long size = file_size(path);
    unsigned char *all = malloc((size_t)size);
    FILE *in = fopen(path, "rb");
    ck_assert_ptr_nonnull(in);
    ck_assert_int_eq(fread(all, 1, (size_t)size, in), size);
    fclose(in);
    long at = -1;
    for (long i = 0; i + 16 <= size && at < 0; i++)
        if (!memcmp(all + i, head, 16)) at = i;
    free(all);
    ck_assert_int_ge(at, 0);
    return at;
}

static void flip_byte(const char *path, long offset)
{
    FILE *f = fopen(path, "r+b");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fseek(f, offset, SEEK_SET), 0);
    const int c = fgetc(f);
    ck_assert_int_ne(c, EOF);
    ck_assert_int_eq(fseek(f, offset, SEEK_SET), 0);
    fputc(c ^ 0x10, f);
    fclose(f);
}

/* Every dataset carries a checksum: a flipped bit in a dataset's data is
 * detected on load and the dataset named, for checkpoints, dataset files
 * and array files; metadata damage is detected too. */
START_TEST(test_checksums)
{
    fxp_ctx *ctx = test_ctx(1);
    fxp_params *ps = make_params(ctx, 0, 1);
    fxp_optim *o = make_optim(ctx, ps, FXP_OPTIM_ADAM, 1, 2);
    fxp_rng r;
    fxp_rng_seed(&r, 0x0123456789abcdefull); /* distinctive bytes to find */
    r.counter = 0xfedcba9876543210ull;
    fxp_rng *rs[1] = { &r };
    const char *rn[1] = { "data" };
    const fxp_checkpoint c = { ps, o, 1, rn, rs, 0, NULL, NULL };
    ck_assert_ok(fxp_checkpoint_save(ctx, in_dir("c.h5"), &c));
    snapshot before;
    take(&before, ps, o, &r);
    const long size = file_size(in_dir("c.h5"));
    const char *sets[4] = { "params/flow/0/coupling/w", "state/flow/1/gce/u",
                            "optimizer/v/flow/1/gce/theta0", "rng/data" };
    stderr_capture_begin();
    for (int k = 0; k < 4; k++) {
        truncated_copy(in_dir("c.h5"), in_dir("flip.h5"), size);
        flip_byte(in_dir("flip.h5"), data_offset(in_dir("flip.h5"), sets[k]) + 3);
        ck_assert_fails(fxp_checkpoint_load(ctx, in_dir("flip.h5"), &c), FXP_EFORMAT, ctx);
        char want[128];
        snprintf(want, sizeof want, "dataset %s fails its checksum", sets[k]);
        ck_assert_msg(strstr(fxp_ctx_error(ctx), want), "%s", fxp_ctx_error(ctx));
        assert_untouched(&before, ps, o, &r);
    }
    /* metadata: a byte of the root group's object header (just after the
     * 48-byte superblock) */
    truncated_copy(in_dir("c.h5"), in_dir("flip.h5"), size);
    flip_byte(in_dir("flip.h5"), 60);
    ck_assert_fails(fxp_checkpoint_load(ctx, in_dir("flip.h5"), &c), FXP_EFORMAT, ctx);
    /* the untouched file loads */
    ck_assert_ok(fxp_checkpoint_load(ctx, in_dir("c.h5"), &c));
    /* dataset files and array files */
    const fxp_mog_dataset_config dc = { FXP_MOG4, 1, 8, 2, 2, 4 };
    ck_assert_ok(fxp_mog_dataset_write(ctx, in_dir("d.h5"), &dc, NULL, NULL));
    flip_byte(in_dir("d.h5"), data_offset(in_dir("d.h5"), "valid") + 5);
    fxp_tensor t;
    ck_assert_ok(fxp_dataset_read(ctx, in_dir("d.h5"), "train", &t));
    fxp_tensor_release(&t);
    ck_assert_fails(fxp_dataset_read(ctx, in_dir("d.h5"), "valid", &t), FXP_EFORMAT, ctx);
    ck_assert_ptr_nonnull(strstr(fxp_ctx_error(ctx), "dataset valid fails its checksum"));
    ck_assert_ptr_null(t.data);
    ck_assert_fails(fxp_h5_read_array(ctx, in_dir("d.h5"), "valid", &t), FXP_EFORMAT, ctx);
    ck_assert_ptr_nonnull(strstr(fxp_ctx_error(ctx), "dataset valid fails its checksum"));
    ck_assert_int_eq(stderr_capture_end(), 0);
    ck_assert_int_eq(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), 0);
    fxp_optim_free(o);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}
END_TEST

/* Replace root attribute `key` of the file at path by one holding n values
 * of `type` (from `data`). */
static void set_attr_array(const char *path, const char *key, hid_t type, int n, const void *data)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    ck_assert_int_ge(f, 0);
    if (H5Aexists(f, key) > 0) ck_assert_int_ge(H5Adelete(f, key), 0);
    const hsize_t dims[1] = { (hsize_t)n };
    hid_t sp = H5Screate_simple(1, dims, NULL);
    hid_t a = H5Acreate2(f, key, type, sp, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_int_ge(a, 0);
    ck_assert_int_ge(H5Awrite(a, type, data), 0);
    H5Aclose(a);
    H5Sclose(sp);
    H5Fclose(f);
}

/* Attributes the readers take as one value must hold one value: an array
 * in their place was read over the reader's single variable (a stack
 * overrun); now FXP_EFORMAT. */
START_TEST(test_attribute_arrays_refused)
{
    fxp_ctx *ctx = test_ctx(1);
    fxp_params *ps = make_params(ctx, 0, 1);
    const fxp_checkpoint c = { ps, NULL, 0, NULL, NULL, 0, NULL, NULL };
    ck_assert_ok(fxp_checkpoint_save(ctx, in_dir("c.h5"), &c));
    int64_t many[64];
    for (int i = 0; i < 64; i++) many[i] = 2;
    set_attr_array(in_dir("c.h5"), "format_version", H5T_NATIVE_INT64, 64, many);
    stderr_capture_begin();
    ck_assert_fails(fxp_checkpoint_load(ctx, in_dir("c.h5"), &c), FXP_EFORMAT, ctx);
    ck_assert_ptr_nonnull(strstr(fxp_ctx_error(ctx), "format_version"));
    double d[64] = { 0 };
    set_attr_array(in_dir("c.h5"), "library_version", H5T_NATIVE_DOUBLE, 64, d);
    char buf[64];
    ck_assert_fails(fxp_h5_read_attr(ctx, in_dir("c.h5"), "library_version", buf, sizeof buf),
                    FXP_EFORMAT, ctx);
    const char *strs[8] = { "a", "b", "c", "d", "e", "f", "g", "h" };
    hid_t vs = H5Tcopy(H5T_C_S1);
    H5Tset_size(vs, H5T_VARIABLE);
    set_attr_array(in_dir("c.h5"), "format", vs, 8, strs);
    H5Tclose(vs);
    ck_assert_fails(fxp_checkpoint_load(ctx, in_dir("c.h5"), &c), FXP_EFORMAT, ctx);
    ck_assert_int_eq(stderr_capture_end(), 0);
    ck_assert_int_eq(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), 0);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}
END_TEST

static Suite *checkpoint_suite(void)
{
    Suite *s = suite_create("checkpoint");
    TCase *tc = tcase_create("checkpoint");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup_dir, teardown_dir);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_config_and_layout);
    tcase_add_test(tc, test_mismatch_leaves_target_untouched);
    tcase_add_test(tc, test_damaged_files);
    tcase_add_test(tc, test_atomic_save);
    tcase_add_test(tc, test_save_disk_full);
    tcase_add_test(tc, test_checksums);
    tcase_add_test(tc, test_attribute_arrays_refused);
    suite_add_tcase(s, tc);
    return s;
}

FXP_TEST_MAIN(checkpoint_suite)
