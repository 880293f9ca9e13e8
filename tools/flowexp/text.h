/* Text that flowexp prints from untrusted sources (file attributes, paths,
 * option values): JSON strings, quoted values for messages, and the checks
 * that decide whether a stored name is plausible. */
#ifndef FLOWEXP_TOOL_TEXT_H
#define FLOWEXP_TOOL_TEXT_H

#include <stddef.h>
#include <stdio.h>

/* Write s as a JSON string literal (with the quotes): '"', '\\' and control
 * characters escaped, bytes that are not valid UTF-8 replaced by U+FFFD, so
 * the output is valid JSON whatever s holds. */
void json_string(FILE *out, const char *s);

/* s for a one-line message: printable ASCII and valid UTF-8 kept, other
 * bytes as \xNN, cut to fit size (with "..." when cut).  Returns buf. */
char *text_sanitize(char *buf, size_t size, const char *s);

/* 1 if s is a plausible dataset or model name: 1..63 bytes of
 * [A-Za-z0-9._+-]. */
int text_is_name(const char *s);

/* 1 if s has no control characters (bytes < 0x20 and 0x7f). */
int text_is_printable(const char *s);

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. */
int text_utf8_len(const unsigned char *s);

#endif
