/* libflowexp: common definitions — export macro, version, status codes.
 *
 * Every fallible libflowexp call returns an int status: 0 (FXP_OK) on success
 * and a negative FXP_E* code on failure.  The human-readable message (naming
 * the function and the offending shapes, values or paths) is stored in the
 * fxp_ctx the call was made with (fxp_ctx_error) and, for every call, in a
 * per-thread buffer (fxp_last_error), which is how context-free functions
 * such as the raw-buffer API report their errors.  A message starts with the
 * name of the public function the caller called ("fxp_checkpoint_load: ..."),
 * wherever inside the library the error was found; it never names internal
 * helpers (built with GCC or Clang; other compilers name the function that
 * raised the error).
 */
#ifndef FLOWEXP_COMMON_H
#define FLOWEXP_COMMON_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#define FXP_API
#elif defined(__GNUC__)
#define FXP_API __attribute__((visibility("default")))
#else
#define FXP_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* The status codes, generated from one list so the enum and the strings
 * returned by fxp_strerror() can never drift apart. */
#define FXP_STATUS_LIST(X)                                                   \
    X(FXP_OK, 0, "success")                                                  \
    X(FXP_EINVAL, -1, "invalid argument")                                    \
    X(FXP_ESHAPE, -2, "shape mismatch")                                      \
    X(FXP_ENOMEM, -3, "out of memory")                                       \
    X(FXP_EIO, -4, "input/output error")                                     \
    X(FXP_EFORMAT, -5, "corrupt or unrecognised file")                       \
    X(FXP_ENUMERIC, -6, "non-finite value (NaN or Inf)")                     \
    X(FXP_ESTATE, -7, "operation not valid in the current state")            \
    X(FXP_EMISMATCH, -8, "checkpoint does not match the model")              \
    X(FXP_ENOTFOUND, -9, "not found")                                        \
    X(FXP_ECONVERGE, -10, "iteration did not converge")                      \
    X(FXP_EUNSUPPORTED, -11, "unsupported")                                  \
    X(FXP_EINTERNAL, -12, "internal error")

typedef enum fxp_status {
#define FXP_STATUS_ENUM_(name, value, text) name = value,
    FXP_STATUS_LIST(FXP_STATUS_ENUM_)
#undef FXP_STATUS_ENUM_
    FXP_STATUS_MIN_ = -12
} fxp_status;

/* A short constant description of a status code ("shape mismatch").  Never
 * NULL; unknown codes give "unknown status". Thread-safe. */
FXP_API const char *fxp_strerror(int status);

/* The symbolic name of a status code ("FXP_ESHAPE"), or "FXP_UNKNOWN". */
FXP_API const char *fxp_status_name(int status);

/* The message of the most recent error raised on the calling thread by any
 * libflowexp call (with or without a context), or "" if there was none.
 * The pointer stays valid until the next libflowexp call on this thread. */
FXP_API const char *fxp_last_error(void);

/* The library version, "MAJOR.MINOR.PATCH". */
FXP_API const char *fxp_version(void);

#ifdef __cplusplus
}
#endif
#endif
