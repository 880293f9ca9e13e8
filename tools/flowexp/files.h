/* File helpers shared by the flowexp subcommands: config files of
 * key = value lines and stale temporaries left by killed writers. */
#ifndef FLOWEXP_TOOL_FILES_H
#define FLOWEXP_TOOL_FILES_H

#include <stddef.h>

/* Sets one key of some configuration: 0 or a negative status (message in
 * fxp_last_error()). */
typedef int (*tool_key_setter)(void *cfg, const char *key, const char *value);

/* Apply the "key = value" lines of a config file (# starts a comment; blank
 * lines ignored) through set(cfg, ...).  Rejects a path that is not a
 * regular file, NUL bytes, lines over 1000 characters, lines without '=',
 * and any key or value the setter refuses, with "path:line: message" in err.
 * Returns 0 or -1. */
int tool_config_apply(const char *path, char *err, size_t errsz, tool_key_setter set, void *cfg);

/* Remove "<name>.tmp.<pid>" files in dir whose writer process is gone (a
 * kill during an atomic save leaves them); returns how many were removed. */
int tool_remove_stale_temporaries(const char *dir);

/* Tool-side errors: tool_fail records a message (and returns code) for
 * tool_message, which otherwise returns the library's fxp_last_error(). */
int tool_fail(int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
const char *tool_message(void);

#endif
