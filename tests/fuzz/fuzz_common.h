/* Shared by the fuzz targets (tests/fuzz/fuzz_*.c): the input bytes go to a
 * file, since the readers under test take paths.  Each target defines
 * LLVMFuzzerTestOneInput; with libFuzzer (meson -Dfuzz=true, clang) it is
 * driven by the fuzzer, and in every build the same target is linked with
 * replay.c into a program that runs it once per file given (the seed
 * corpus and the crash regression inputs, in the normal test suite). */
#ifndef FXP_FUZZ_COMMON_H
#define FXP_FUZZ_COMMON_H

#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flowexp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input as a file: one path per process (in /dev/shm when it exists,
 * else /tmp), rewritten for every input and removed at exit. */
static char fuzz_path[64];

static inline void fuzz_remove(void) { unlink(fuzz_path); }

static inline const char *fuzz_file(const uint8_t *data, size_t size)
{
    if (!fuzz_path[0]) {
        const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(fuzz_path, sizeof fuzz_path, "%s/fxp-fuzz-%ld.h5", dir, (long)getpid());
        atexit(fuzz_remove);
    }
    int fd = open(fuzz_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) abort();
    for (size_t off = 0; off < size;) {
        ssize_t k = write(fd, data + off, size - off);
        if (k <= 0) abort();
        off += (size_t)k;
    }
    close(fd);
    return fuzz_path;
}

/* One context for the whole run, with one thread: a fuzz input must not
 * start an OpenMP team per call. */
static inline fxp_ctx *fuzz_ctx(void)
{
    static fxp_ctx *ctx;
    if (!ctx && (fxp_ctx_new(&ctx) < 0 || fxp_ctx_set_threads(ctx, 1) < 0)) abort();
    return ctx;
}

/* A failed call must leave a message; a successful one must not have
 * written garbage (the caller checks its outputs). */
static inline void fuzz_check_status(fxp_ctx *ctx, int rc)
{
    if (rc < 0 && (!fxp_ctx_error(ctx)[0] || fxp_ctx_status(ctx) != rc)) abort();
    if (rc > 0) abort();
}

#endif
