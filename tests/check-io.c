/* I/O: the piecewise array writer (fxp_h5_array_writer_*): round trip in
 * pieces against fxp_h5_read_array, attributes, atomicity (nothing at the
 * path before commit, an abandoned writer leaves no file and keeps an older
 * one), and every error case. */
#include "h5test.h"

static void fill(float *x, size_t n, float base)
{
    for (size_t i = 0; i < n; i++) x[i] = base + 0.25f * (float)i;
}

START_TEST(test_writer_round_trip_in_pieces)
{
    fxp_ctx *ctx = test_ctx(1);
    const char *path = in_dir("s.h5");
    const int shape[3] = { 7, 3, 2 };
    const fxp_attr attrs[2] = { { "source", FXP_ATTR_STRING, "ckpt.h5", 0, 0 },
                                { "temperature", FXP_ATTR_DOUBLE, NULL, 0.5, 0 } };
    fxp_h5_array_writer *w;
    ck_assert_ok(fxp_h5_array_writer_new(ctx, path, "samples", 3, shape, 2, attrs, &w));
    ck_assert_int_eq(access(path, F_OK), -1); /* nothing under the name before commit */
    float all[7 * 3 * 2];
    fill(all, 42, -3.0f);
    const int pieces[4] = { 3, 0, 1, 3 };
    int done = 0;
    for (int k = 0; k < 4; k++) {
        fxp_tensor t = fxp_tensor_wrap(all + done * 6, 3, (int[]){ pieces[k], 3, 2 });
        ck_assert_ok(fxp_h5_array_writer_append(w, &t));
        done += pieces[k];
        ck_assert_int_eq(fxp_h5_array_writer_rows(w), done);
    }
    ck_assert_ok(fxp_h5_array_writer_commit(w));
    fxp_h5_array_writer_free(w);
    ck_assert_int_eq(n_files(), 1); /* the temporary is gone */

    fxp_tensor back;
    ck_assert_ok(fxp_h5_read_array(ctx, path, "samples", &back));
    ck_assert_int_eq(back.ndim, 3);
    ck_assert_int_eq(back.shape[0], 7);
    ck_assert_int_eq(back.shape[1], 3);
    ck_assert_int_eq(back.shape[2], 2);
    ck_assert_mem_eq(back.data, all, sizeof all);
    fxp_tensor_release(&back);
    /* a copy cut inside the rows is detected, not read as zeros */
    truncated_copy(path, in_dir("cut.h5"), file_size(path) - 8);
    ck_assert_fails(fxp_h5_read_array(ctx, in_dir("cut.h5"), "samples", &back), FXP_EFORMAT, ctx);
    char buf[64];
    ck_assert_ok(fxp_h5_read_attr(ctx, path, "source", buf, sizeof buf));
    ck_assert_str_eq(buf, "ckpt.h5");
    ck_assert_ok(fxp_h5_read_attr(ctx, path, "temperature", buf, sizeof buf));
    ck_assert_double_eq(atof(buf), 0.5);
    fxp_ctx_free(ctx);
}
END_TEST

START_TEST(test_writer_abandon_keeps_old_file)
{
    fxp_ctx *ctx = test_ctx(1);
    const char *path = in_dir("s.h5");
    float old[4] = { 1, 2, 3, 4 };
    fxp_tensor t = fxp_tensor_wrap(old, 2, (int[]){ 2, 2 });
    const char *names[1] = { "samples" };
    const fxp_tensor *arrays[1] = { &t };
    ck_assert_ok(fxp_h5_write_arrays(ctx, path, 1, names, arrays, 0, NULL));

    fxp_h5_array_writer *w;
    ck_assert_ok(fxp_h5_array_writer_new(ctx, path, "samples", 2, (int[]){ 5, 2 }, 0, NULL, &w));
    ck_assert_int_eq(n_files(), 2); /* the old file and the temporary */
    float part[4] = { 9, 9, 9, 9 };
    fxp_tensor p = fxp_tensor_wrap(part, 2, (int[]){ 2, 2 });
    ck_assert_ok(fxp_h5_array_writer_append(w, &p));
    /* commit before all rows are in: refused, nothing renamed */
    ck_assert_fails(fxp_h5_array_writer_commit(w), FXP_ESTATE, ctx);
    ck_assert_ptr_nonnull(strstr(fxp_last_error(), "2 of 5 rows"));
    fxp_h5_array_writer_free(w);
    ck_assert_int_eq(n_files(), 1);
    fxp_tensor back;
    ck_assert_ok(fxp_h5_read_array(ctx, path, "samples", &back));
    ck_assert_int_eq(back.shape[0], 2);
    ck_assert_mem_eq(back.data, old, sizeof old);
    fxp_tensor_release(&back);
    fxp_h5_array_writer_free(NULL);
    fxp_ctx_free(ctx);
}
END_TEST

START_TEST(test_writer_errors)
{
    fxp_ctx *ctx = test_ctx(1);
    stderr_capture_begin();
    fxp_h5_array_writer *w = (fxp_h5_array_writer *)1;
    const int shape[2] = { 4, 3 };
    ck_assert_fails(fxp_h5_array_writer_new(ctx, NULL, "a", 2, shape, 0, NULL, &w), FXP_EINVAL, ctx);
    ck_assert_ptr_null(w);
    ck_assert_fails(fxp_h5_array_writer_new(ctx, in_dir("a.h5"), "", 2, shape, 0, NULL, &w),
                    FXP_EINVAL, ctx);
    ck_assert_fails(fxp_h5_array_writer_new(ctx, in_dir("a.h5"), "a", 0, shape, 0, NULL, &w),
                    FXP_EINVAL, ctx);
    ck_assert_fails(fxp_h5_array_writer_new(ctx, in_dir("a.h5"), "a", 6, shape, 0, NULL, &w),
                    FXP_EINVAL, ctx);
    ck_assert_fails(fxp_h5_array_writer_new(ctx, in_dir("a.h5"), "a", 2, (int[]){ 4, 0 }, 0, NULL,
                                            &w), FXP_EINVAL, ctx);
    const fxp_attr unnamed = { NULL, FXP_ATTR_INT, NULL, 0, 1 };
    ck_assert_fails(fxp_h5_array_writer_new(ctx, in_dir("a.h5"), "a", 2, shape, 1, &unnamed, &w),
                    FXP_EINVAL, ctx);
    /* no such directory */
    ck_assert_fails(fxp_h5_array_writer_new(ctx, in_dir("none/a.h5"), "a", 2, shape, 0, NULL, &w),
                    FXP_EIO, ctx);
    write_text(in_dir("file"), "x");
    ck_assert_fails(fxp_h5_array_writer_new(ctx, in_dir("file/a.h5"), "a", 2, shape, 0, NULL, &w),
                    FXP_EIO, ctx);
    unlink(in_dir("file"));
    /* 8 TB: refused up front, naming the space, and nothing is left */
    ck_assert_fails(fxp_h5_array_writer_new(ctx, in_dir("big.h5"), "a", 2,
                                            (int[]){ 2000000000, 1000 }, 0, NULL, &w),
                    FXP_EIO, ctx);
    ck_assert_ptr_nonnull(strstr(fxp_last_error(), "free"));
    ck_assert_int_eq(n_files(), 0);

    ck_assert_ok(fxp_h5_array_writer_new(ctx, in_dir("a.h5"), "g/a", 2, shape, 0, NULL, &w));
    float x[15] = { 0 };
    fxp_tensor wrong = fxp_tensor_wrap(x, 2, (int[]){ 2, 4 });
    ck_assert_fails(fxp_h5_array_writer_append(w, &wrong), FXP_ESHAPE, ctx);
    fxp_tensor rank = fxp_tensor_wrap(x, 3, (int[]){ 1, 3, 1 });
    ck_assert_fails(fxp_h5_array_writer_append(w, &rank), FXP_ESHAPE, ctx);
    fxp_tensor many = fxp_tensor_wrap(x, 2, (int[]){ 5, 3 });
    ck_assert_fails(fxp_h5_array_writer_append(w, &many), FXP_ESHAPE, ctx);
    fxp_tensor four = fxp_tensor_wrap(x, 2, (int[]){ 4, 3 });
    ck_assert_ok(fxp_h5_array_writer_append(w, &four));
    ck_assert_ok(fxp_h5_array_writer_commit(w));
    ck_assert_fails(fxp_h5_array_writer_append(w, &four), FXP_ESTATE, ctx);
    ck_assert_fails(fxp_h5_array_writer_commit(w), FXP_ESTATE, ctx);
    fxp_h5_array_writer_free(w);
    fxp_tensor back;
    ck_assert_ok(fxp_h5_read_array(ctx, in_dir("a.h5"), "g/a", &back));
    ck_assert_int_eq(back.shape[0], 4);
    fxp_tensor_release(&back);
    ck_assert_fails(fxp_h5_array_writer_append(NULL, &four), FXP_EINVAL, NULL);
    ck_assert_fails(fxp_h5_array_writer_commit(NULL), FXP_EINVAL, NULL);
    ck_assert_int_eq(stderr_capture_end(), 0); /* nothing printed, HDF5 included */
    fxp_ctx_free(ctx);
}
END_TEST

static Suite *io_suite(void)
{
    Suite *s = suite_create("io");
    TCase *tc = tcase_create("array_writer");
    tcase_add_checked_fixture(tc, setup_dir, teardown_dir);
    tcase_add_test(tc, test_writer_round_trip_in_pieces);
    tcase_add_test(tc, test_writer_abandon_keeps_old_file);
    tcase_add_test(tc, test_writer_errors);
    suite_add_tcase(s, tc);
    return s;
}

FXP_TEST_MAIN(io_suite)
