/* Long-option parsing for the flowexp subcommands (see args.h). */
#include "args.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int choice_ok(const char *choices, const char *v)
{
    size_t n = strlen(v);
    for (const char *p = choices; *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncmp(p, v, n) == 0) return 1;
        p += len + (bar ? 1 : 0);
    }
    return 0;
}

static int set_value(arg_spec *s, const char *v, char *err, size_t errsz)
{
    char *end;
    switch (s->type) {
    case ARG_INT: {
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (errno || end == v || *end || x < s->min || x > s->max) {
            snprintf(err, errsz, "--%s: expected an integer in [%.0f, %.0f], got \"%s\"", s->name,
                     s->min, s->max, v);
            return -1;
        }
        *(int *)s->dest = (int)x;
        return 0;
    }
    case ARG_DOUBLE: {
        errno = 0;
        double x = strtod(v, &end);
        if (errno || end == v || *end || !isfinite(x) || x < s->min || x > s->max) {
            snprintf(err, errsz, "--%s: expected a number in [%g, %g], got \"%s\"", s->name,
                     s->min, s->max, v);
            return -1;
        }
        *(double *)s->dest = x;
        return 0;
    }
    case ARG_STRING:
        if (!*v) {
            snprintf(err, errsz, "--%s: empty value", s->name);
            return -1;
        }
        *(const char **)s->dest = v;
        return 0;
    case ARG_CHOICE:
        if (!choice_ok(s->choices, v)) {
            snprintf(err, errsz, "--%s: expected one of %s, got \"%s\"", s->name, s->choices, v);
            return -1;
        }
        *(const char **)s->dest = v;
        return 0;
    case ARG_LIST: {
        arg_list *l = s->dest;
        if (!strchr(v, '=') || v[0] == '=') {
            snprintf(err, errsz, "--%s: expected key=value, got \"%s\"", s->name, v);
            return -1;
        }
        if (l->n == ARG_LIST_MAX) {
            snprintf(err, errsz, "--%s: more than %d values", s->name, ARG_LIST_MAX);
            return -1;
        }
        l->items[l->n++] = v;
        return 0;
    }
    case ARG_FLAG: break;
    }
    return 0;
}

int args_parse(arg_spec *specs, int n_specs, int argc, char **argv, const char **positional,
               int max_positional, int *n_positional, int *help, char *err, size_t errsz)
{
    int npos = 0;
    *help = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            *help = 1;
            continue;
        }
        if (strncmp(a, "--", 2) != 0) {
            if (positional && npos < max_positional) {
                positional[npos++] = a;
                continue;
            }
            snprintf(err, errsz, "unexpected argument \"%s\" (options start with --)", a);
            return -1;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        arg_spec *s = NULL;
        for (int k = 0; k < n_specs; k++)
            if (strlen(specs[k].name) == len && !strncmp(specs[k].name, name, len)) s = &specs[k];
        if (!s) {
            snprintf(err, errsz, "unknown option \"%.*s\" (see --help)", (int)(len + 2), a);
            return -1;
        }
        if (s->seen && s->type != ARG_LIST) {
            snprintf(err, errsz, "--%s given twice", s->name);
            return -1;
        }
        s->seen = 1;
        if (s->type == ARG_FLAG) {
            if (eq) {
                snprintf(err, errsz, "--%s takes no value", s->name);
                return -1;
            }
            *(int *)s->dest = 1;
            continue;
        }
        const char *v = eq ? eq + 1 : NULL;
        if (!v) {
            if (i + 1 >= argc) {
                snprintf(err, errsz, "--%s needs a value (%s)", s->name,
                         s->metavar ? s->metavar : "see --help");
                return -1;
            }
            v = argv[++i];
        }
        if (set_value(s, v, err, errsz) < 0) return -1;
    }
    if (n_positional) *n_positional = npos;
    if (*help) return 0;
    for (int k = 0; k < n_specs; k++)
        if (specs[k].required && !specs[k].seen) {
            snprintf(err, errsz, "missing required option --%s", specs[k].name);
            return -1;
        }
    return 0;
}

void args_print_help(const char *usage, const char *description, const arg_spec *specs,
                     int n_specs)
{
    printf("usage: %s\n\n%s\n\noptions:\n", usage, description);
    for (int k = 0; k < n_specs; k++) {
        char left[64];
        const arg_spec *s = &specs[k];
        if (s->type == ARG_FLAG)
            snprintf(left, sizeof left, "--%s", s->name);
        else if (s->type == ARG_CHOICE)
            snprintf(left, sizeof left, "--%s {%s}", s->name, s->choices);
        else
            snprintf(left, sizeof left, "--%s %s", s->name, s->metavar ? s->metavar : "VALUE");
        printf("  %-28s %s%s\n", left, s->help, s->required ? " (required)" : "");
    }
    printf("  %-28s %s\n", "--help, -h", "show this help");
}
