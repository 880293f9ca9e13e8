/* Config files of "key = value" lines for flowexp train (see tool.h).  The
 * parser works on a buffer (tool_config_parse), so that it can be fuzzed
 * (tests/fuzz/fuzz_config.c); it depends on the library only through the
 * key set it is given (tool_keys: graph or image model configurations). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tool.h"

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
    return s;
}

enum { CONFIG_MAX_BYTES = 1 << 20, CONFIG_MAX_LINE = 4096 };

int tool_config_parse_keys(const char *text, size_t len, const char *name, const tool_keys *k,
                           char *err, size_t errsz)
{
    const int nk = k->n_keys();
    int first_line[128] = { 0 }; /* line where key i was set (0: not yet) */
    if (nk > 128) {
        snprintf(err, errsz, "%s: too many configuration keys", name);
        return -1;
    }
    const char *nul = memchr(text, '\0', len);
    if (nul) {
        int line = 1;
        for (const char *p = text; p < nul; p++) line += *p == '\n';
        snprintf(err, errsz, "%s:%d: NUL byte (not a text file?)", name, line);
        return -1;
    }
    char buf[CONFIG_MAX_LINE];
    int lineno = 0;
    for (size_t pos = 0; pos < len;) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        const size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
        lineno++;
        if (n >= sizeof buf) {
            snprintf(err, errsz, "%s:%d: line longer than %d bytes", name, lineno, CONFIG_MAX_LINE - 1);
            return -1;
        }
        memcpy(buf, text + pos, n);
        buf[n] = '\0';
        pos += n + (nl ? 1 : 0);
        char *hash = strchr(buf, '#');
        if (hash) *hash = '\0';
        char *s = trim(buf);
        if (!*s) continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            snprintf(err, errsz, "%s:%d: expected key = value", name, lineno);
            return -1;
        }
        *eq = '\0';
        char *key = trim(s), *value = trim(eq + 1);
        if (!*key) {
            snprintf(err, errsz, "%s:%d: no key before '='", name, lineno);
            return -1;
        }
        if (k->set(k->cfg, key, value) < 0) {
            snprintf(err, errsz, "%s:%d: %s", name, lineno, fxp_last_error());
            return -1;
        }
        for (int i = 0; i < nk; i++)
            if (!strcmp(key, k->key(i))) {
                if (first_line[i]) {
                    snprintf(err, errsz, "%s:%d: %s was already set on line %d", name, lineno, key,
                             first_line[i]);
                    return -1;
                }
                first_line[i] = lineno;
            }
    }
    return 0;
}

static int graph_set(void *cfg, const char *key, const char *value)
{
    return fxp_graph_model_config_set(cfg, key, value);
}

static tool_keys graph_keys(fxp_graph_model_config *cfg)
{
    return (tool_keys){ graph_set, fxp_graph_model_config_n_keys, fxp_graph_model_config_key, cfg };
}

int tool_config_parse(const char *text, size_t len, const char *name, fxp_graph_model_config *cfg,
                      char *err, size_t errsz)
{
    const tool_keys k = graph_keys(cfg);
    return tool_config_parse_keys(text, len, name, &k, err, errsz);
}

int tool_config_file(const char *path, fxp_graph_model_config *cfg, char *err, size_t errsz)
{
    const tool_keys k = graph_keys(cfg);
    return tool_config_file_keys(path, &k, err, errsz);
}

int tool_config_file_keys(const char *path, const tool_keys *k, char *err, size_t errsz)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errsz, "cannot open config file %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    const char *why = NULL;
    if (fstat(fileno(f), &st) < 0) why = strerror(errno);
    else if (S_ISDIR(st.st_mode)) why = "is a directory";
    else if (!S_ISREG(st.st_mode)) why = "not a regular file";
    else if (st.st_size > CONFIG_MAX_BYTES) why = "larger than 1 MiB (not a config file?)";
    if (why) {
        snprintf(err, errsz, "config file %s: %s", path, why);
        fclose(f);
        return -1;
    }
    char *text = malloc((size_t)st.st_size + 1);
    size_t len = text ? fread(text, 1, (size_t)st.st_size + 1, f) : 0;
    int rc;
    if (!text) {
        snprintf(err, errsz, "config file %s: out of memory", path);
        rc = -1;
    } else if (ferror(f) || len > (size_t)st.st_size) {
        snprintf(err, errsz, "cannot read config file %s%s", path,
                 ferror(f) ? "" : " (it changed while being read)");
        rc = -1;
    } else {
        rc = tool_config_parse_keys(text, len, path, k, err, errsz);
    }
    free(text);
    fclose(f);
    return rc;
}
