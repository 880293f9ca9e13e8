/* Comma-separated tables with a header row (see csv.h). */
#include "csv.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { CSV_MAX_BYTES = 64 << 20 };

static int read_all(const char *path, char **out, size_t *len, char *err, size_t errsz)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errsz, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    while (b) {
        if (n + 1 >= cap) {
            if (cap >= CSV_MAX_BYTES) {
                snprintf(err, errsz, "%s: larger than %d MiB; not a table", path,
                         CSV_MAX_BYTES >> 20);
                free(b);
                fclose(f);
                return -1;
            }
            char *nb = realloc(b, cap * 2);
            if (!nb) break;
            b = nb;
            cap *= 2;
        }
        size_t got = fread(b + n, 1, cap - 1 - n, f);
        n += got;
        if (got == 0) break;
    }
    if (!b) {
        snprintf(err, errsz, "%s: out of memory", path);
        fclose(f);
        return -1;
    }
    if (ferror(f)) {
        snprintf(err, errsz, "cannot read %s: %s", path, strerror(errno));
        free(b);
        fclose(f);
        return -1;
    }
    fclose(f);
    b[n] = '\0';
    if (memchr(b, '\0', n)) {
        snprintf(err, errsz, "%s: contains NUL bytes; not a text table", path);
        free(b);
        return -1;
    }
    *out = b;
    *len = n;
    return 0;
}

static char *trim(char *s, char *end)
{
    while (s < end && (*s == ' ' || *s == '\t')) s++;
    while (end > s && (end[-1] == ' ' || end[-1] == '\t')) end--;
    *end = '\0';
    return s;
}

/* Split one line [p, e) in place into fields appended to *cells.  Returns the
 * field count or -1 (bad quoting, message in err). */
static int split_line(char *p, char *e, char ***cells, size_t *n, size_t *cap, const char *path,
                      int line, char *err, size_t errsz)
{
    int count = 0;
    for (;;) {
        char *start = p;
        while (p < e && (*p == ' ' || *p == '\t')) p++;
        if (p < e && *p == '"') {
            /* quoted: copy the unquoted content over itself */
            char *w = start;
            p++;
            for (;;) {
                if (p >= e) {
                    snprintf(err, errsz, "%s:%d: unterminated quoted field", path, line);
                    return -1;
                }
                if (*p == '"' && p + 1 < e && p[1] == '"') {
                    *w++ = '"';
                    p += 2;
                } else if (*p == '"') {
                    p++;
                    break;
                } else {
                    *w++ = *p++;
                }
            }
            while (p < e && (*p == ' ' || *p == '\t')) p++;
            if (p < e && *p != ',') {
                snprintf(err, errsz, "%s:%d: text after a quoted field", path, line);
                return -1;
            }
            *w = '\0';
        } else {
            while (p < e && *p != ',') p++;
            start = trim(start, p);
        }
        if (*n == *cap) {
            size_t nc = *cap ? 2 * *cap : 256;
            char **nb = realloc(*cells, nc * sizeof *nb);
            if (!nb) {
                snprintf(err, errsz, "%s: out of memory", path);
                return -1;
            }
            *cells = nb;
            *cap = nc;
        }
        (*cells)[(*n)++] = start;
        count++;
        if (p >= e) break;
        *p++ = '\0'; /* the comma */
    }
    return count;
}

int csv_read(const char *path, csv_table *t, char *err, size_t errsz)
{
    memset(t, 0, sizeof *t);
    t->path = path;
    size_t len, n = 0, cap = 0, nlines = 0, lcap = 0;
    if (read_all(path, &t->buf, &len, err, errsz) < 0) return -1;
    char **cells = NULL;
    int *lines = NULL;
    char *p = t->buf, *end = t->buf + len;
    int line = 0;
    while (p < end) {
        char *e = memchr(p, '\n', (size_t)(end - p));
        if (!e) e = end;
        char *next = e < end ? e + 1 : end;
        line++;
        if (e > p && e[-1] == '\r') e--;
        *e = '\0';
        char *q = p;
        while (q < e && (*q == ' ' || *q == '\t')) q++;
        if (q == e) {
            p = next;
            continue;
        }
        int k = split_line(p, e, &cells, &n, &cap, path, line, err, errsz);
        if (k < 0) goto fail;
        if (t->n_cols == 0) {
            t->n_cols = k;
        } else if (k != t->n_cols) {
            snprintf(err, errsz, "%s:%d: %d fields, but the header has %d", path, line, k,
                     t->n_cols);
            goto fail;
        }
        if (nlines == lcap) {
            size_t nc = lcap ? 2 * lcap : 64;
            int *nl = realloc(lines, nc * sizeof *nl);
            if (!nl) {
                snprintf(err, errsz, "%s: out of memory", path);
                goto fail;
            }
            lines = nl;
            lcap = nc;
        }
        lines[nlines++] = line;
        p = next;
    }
    if (t->n_cols == 0) {
        snprintf(err, errsz, "%s: empty (expected a header row)", path);
        goto fail;
    }
    for (int c = 0; c < t->n_cols; c++)
        if (!cells[c][0]) {
            snprintf(err, errsz, "%s:%d: column %d of the header has no name", path, lines[0],
                     c + 1);
            goto fail;
        }
    t->cell = cells;
    t->line = lines;
    t->n_rows = (int)nlines - 1;
    return 0;
fail:
    free(cells);
    free(lines);
    return -1;
}

void csv_free(csv_table *t)
{
    free(t->cell);
    free(t->line);
    free(t->buf);
    memset(t, 0, sizeof *t);
}

int csv_col(const csv_table *t, const char *name)
{
    for (int c = 0; c < t->n_cols; c++)
        if (!strcmp(t->cell[c], name)) return c;
    return -1;
}

const char *csv_cell(const csv_table *t, int r, int c)
{
    return t->cell[(size_t)(r + 1) * t->n_cols + c];
}

int csv_number(const csv_table *t, int r, int c, double *v, char *err, size_t errsz)
{
    const char *s = csv_cell(t, r, c);
    if (!s[0] || !strcasecmp(s, "nan")) {
        *v = NAN;
        return 1;
    }
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (end == s || *end || !isfinite(x)) {
        snprintf(err, errsz, "%s:%d: column \"%s\": expected a finite number, got \"%s\"", t->path,
                 t->line[r + 1], t->cell[c], s);
        return -1;
    }
    *v = x;
    return 0;
}
