/* Fuzz target: flowexp's option parser (args_parse).  The input is split at
 * NUL bytes into up to 64 words (argv); the table has one option of every
 * type and takes up to two positional words.  Checks: a failure has a
 * message; a success respects every declared range, choice and requirement. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { MAX_WORDS = 64 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1), *argv[MAX_WORDS];
    if (!buf) return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    int argc = 0;
    for (size_t i = 0; i <= size && argc < MAX_WORDS;) {
        argv[argc++] = buf + i;
        i += strlen(buf + i) + 1;
    }
    int flag = 0, n = 7, help = 0, n_pos = -1;
    double x = 0.5;
    const char *s = NULL, *c = NULL, *pos[2] = { NULL, NULL };
    arg_list list = { { 0 }, 0 };
    arg_spec specs[] = {
        { "flag", ARG_FLAG, &flag, NULL, "a flag", 0, 0, NULL, 0, 0 },
        { "n", ARG_INT, &n, "N", "an integer", -5, 1e9, NULL, 0, 0 },
        { "x", ARG_DOUBLE, &x, "X", "a number", 1e-12, 10, NULL, 0, 0 },
        { "s", ARG_STRING, &s, "S", "a string", 0, 0, NULL, 1, 0 },
        { "c", ARG_CHOICE, &c, NULL, "a choice", 0, 0, "coupling|gnf|gnf-gce", 0, 0 },
        { "set", ARG_LIST, &list, "K=V", "a list", 0, 0, NULL, 0, 0 },
    };
    char err[256];
    err[0] = '\0';
    const int rc = args_parse(specs, 6, argc, argv, pos, 2, &n_pos, &help, err, sizeof err);
    if (rc < 0) {
        if (!err[0]) abort();
    } else if (!help) {
        if (!s || !*s || n < -5 || n > 1e9 || !(x >= 1e-12 && x <= 10) || !isfinite(x)) abort();
        if (c && strcmp(c, "coupling") && strcmp(c, "gnf") && strcmp(c, "gnf-gce")) abort();
        if (flag != 0 && flag != 1) abort();
        if (n_pos < 0 || n_pos > 2) abort();
        if (list.n < 0 || list.n > ARG_LIST_MAX) abort();
        for (int i = 0; i < list.n; i++)
            if (!strchr(list.items[i], '=') || list.items[i][0] == '=') abort();
    }
    free(buf);
    return 0;
}
