/* Status codes, error messages, logging and the version string. */
#include <stdio.h>
#include <string.h>

#include "core/internal.h"

/* The calling thread's last error message (C11 thread-local storage): where
 * context-free calls report, and a copy of every context error. */
static _Thread_local char last_error[FXP_ERRMSG_MAX];

/* The outermost public function in progress on this thread (FXP_API_SCOPE),
 * or NULL. */
static _Thread_local const char *api_func;

const char *fxp__api_enter(const char *func)
{
    const char *prev = api_func;
    if (!prev) api_func = func;
    return prev;
}

void fxp__api_leave(const char **prev)
{
    if (!*prev) api_func = NULL;
}

const char *fxp_strerror(int status)
{
    switch (status) {
#define FXP_STATUS_TEXT_(name, value, text) case value: return text;
        FXP_STATUS_LIST(FXP_STATUS_TEXT_)
#undef FXP_STATUS_TEXT_
    default: return "unknown status";
    }
}

const char *fxp_status_name(int status)
{
    switch (status) {
#define FXP_STATUS_NAME_(name, value, text) case value: return #name;
        FXP_STATUS_LIST(FXP_STATUS_NAME_)
#undef FXP_STATUS_NAME_
    default: return "FXP_UNKNOWN";
    }
}

const char *fxp_last_error(void) { return last_error; }

const char *fxp_version(void) { return FXP_VERSION_STRING; }

int fxp__err(fxp_ctx *ctx, int code, const char *func, const char *fmt, ...)
{
    char msg[FXP_ERRMSG_MAX];
    if (api_func) func = api_func;
    int n = snprintf(msg, sizeof msg, "%s: ", func ? func : "libflowexp");
    if (n < 0 || (size_t)n >= sizeof msg) n = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
    va_end(ap);
    memcpy(last_error, msg, sizeof msg);
    if (ctx) {
        ctx->status = code;
        memcpy(ctx->errmsg, msg, sizeof msg);
        if (ctx->log_fn && ctx->log_level >= FXP_LOG_ERROR)
            ctx->log_fn(ctx->log_user, FXP_LOG_ERROR, msg);
    }
    return code;
}

void fxp__log(fxp_ctx *ctx, int level, const char *fmt, ...)
{
    if (!ctx || !ctx->log_fn || level > ctx->log_level) return;
    char msg[FXP_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ctx->log_fn(ctx->log_user, level, msg);
}
