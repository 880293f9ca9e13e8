/* Config files and stale temporaries (files.h). */
#include <ctype.h>
#include <stdarg.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "files.h"
#include "flowexp.h"

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
    return s;
}

int tool_config_apply(const char *path, char *err, size_t errsz, tool_key_setter set, void *cfg)
{
    struct stat sb;
    if (stat(path, &sb) != 0) {
        snprintf(err, errsz, "cannot open config file %s: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(sb.st_mode)) {
        snprintf(err, errsz, "config file %s is not a regular file", path);
        return -1;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errsz, "cannot open config file %s: %s", path, strerror(errno));
        return -1;
    }
    char line[1024];
    int lineno = 0, rc = 0, c, len = 0;
    for (;;) { /* read lines by hand so that NUL bytes are seen */
        c = fgetc(f);
        if (c != EOF && c != '\n') {
            if (c == '\0') {
                snprintf(err, errsz, "%s:%d: NUL byte in a config file", path, lineno + 1);
                rc = -1;
                break;
            }
            if (len >= (int)sizeof line - 1) {
                snprintf(err, errsz, "%s:%d: line longer than %d characters", path, lineno + 1,
                         (int)sizeof line - 2);
                rc = -1;
                break;
            }
            line[len++] = (char)c;
            continue;
        }
        if (c == EOF && len == 0) break;
        line[len] = '\0';
        len = 0;
        lineno++;
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';
        char *s = trim(line);
        if (*s) {
            char *eq = strchr(s, '=');
            if (!eq) {
                snprintf(err, errsz, "%s:%d: expected key = value", path, lineno);
                rc = -1;
                break;
            }
            *eq = '\0';
            char *key = trim(s), *value = trim(eq + 1);
            if (set(cfg, key, value) < 0) {
                snprintf(err, errsz, "%s:%d: %s", path, lineno, fxp_last_error());
                rc = -1;
                break;
            }
        }
        if (c == EOF) break;
    }
    if (rc == 0 && ferror(f)) {
        snprintf(err, errsz, "cannot read config file %s", path);
        rc = -1;
    }
    fclose(f);
    return rc;
}

int tool_remove_stale_temporaries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *t = strstr(e->d_name, ".tmp.");
        if (!t) continue;
        const char *p = t + 5;
        char *end;
        errno = 0;
        long pid = strtol(p, &end, 10);
        if (end == p || *end || errno || pid <= 0) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* its writer lives */
        char path[4096];
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path) continue;
        if (remove(path) == 0) removed++;
    }
    closedir(d);
    return removed;
}

static char tool_msg[512];

int tool_fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tool_msg, sizeof tool_msg, fmt, ap);
    va_end(ap);
    return code;
}

const char *tool_message(void)
{
    if (tool_msg[0]) return tool_msg;
    return fxp_last_error();
}
