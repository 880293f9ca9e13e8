/* Helpers for the suites that write files (check-data, check-checkpoint): a
 * fresh temporary directory per test, file counting, damaged copies, and a
 * guard that nothing is printed to stderr (the library must never print,
 * and HDF5's error stack would). */
#ifndef FXP_H5TEST_H
#define FXP_H5TEST_H

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

/* A fresh temporary directory per test (Check forks each test). */
static char test_dir[256];

static void setup_dir(void)
{
    snprintf(test_dir, sizeof test_dir, "/tmp/fxp-check-h5-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(test_dir));
}

static void teardown_dir(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", test_dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* "<test_dir>/<name>" in one of 8 rotating buffers. */
static const char *in_dir(const char *name)
{
    static char buf[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", test_dir, name);
    return buf[k];
}

/* Entries in the test directory (temporaries included). */
static inline int n_files(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", test_dir);
    FILE *p = popen(cmd, "r");
    int n = -1;
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(fscanf(p, "%d", &n), 1);
    pclose(p);
    return n;
}

static inline long file_size(const char *path)
{
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    return (long)st.st_size;
}

/* Copy the first `bytes` bytes of src to dst. */
static inline void truncated_copy(const char *src, const char *dst, long bytes)
{
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    ck_assert_ptr_nonnull(in);
    ck_assert_ptr_nonnull(out);
    for (long i = 0; i < bytes; i++) {
        int c = fgetc(in);
        if (c == EOF) break;
        fputc(c, out);
    }
    fclose(in);
    fclose(out);
}

static inline void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

/* stderr_capture_begin() sends fd 2 to a file outside the test directory;
 * stderr_capture_end() restores it and returns how many bytes were written
 * meanwhile. */
static int saved_stderr = -1;
static char capture_path[64];

static inline void stderr_capture_begin(void)
{
    fflush(stderr);
    snprintf(capture_path, sizeof capture_path, "/tmp/fxp-stderr-XXXXXX");
    int fd = mkstemp(capture_path);
    ck_assert_int_ge(fd, 0);
    saved_stderr = dup(2);
    dup2(fd, 2);
    close(fd);
}

static inline long stderr_capture_end(void)
{
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    long n = file_size(capture_path);
    unlink(capture_path);
    return n;
}

#endif
