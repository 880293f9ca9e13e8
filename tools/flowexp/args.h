/* A small long-option parser for the flowexp subcommands.
 *
 * Options are "--name value" or "--name=value"; flags take no value.  Every
 * option is declared in a table with its type, destination and help text;
 * the same table prints `--help`.  Unknown options, missing or malformed
 * values and out-of-range numbers are errors with a message naming the
 * option. */
#ifndef FLOWEXP_TOOL_ARGS_H
#define FLOWEXP_TOOL_ARGS_H

#include <stddef.h>

typedef enum arg_type {
    ARG_FLAG,    /* int *, set to 1 */
    ARG_INT,     /* int *, range [min, max] */
    ARG_DOUBLE,  /* double *, range [min, max], finite */
    ARG_STRING,  /* const char **, non-empty */
    ARG_CHOICE,  /* const char **, one of choices ("a|b|c") */
    ARG_LIST     /* repeatable "key=value": collected in an arg_list */
} arg_type;

#define ARG_LIST_MAX 64
typedef struct arg_list {
    const char *items[ARG_LIST_MAX];
    int n;
} arg_list;

typedef struct arg_spec {
    const char *name;     /* without the leading "--" */
    arg_type type;
    void *dest;
    const char *metavar;  /* shown in help, e.g. "N" */
    const char *help;
    double min, max;      /* ARG_INT / ARG_DOUBLE */
    const char *choices;  /* ARG_CHOICE */
    int required;
    int seen;             /* set by the parser */
} arg_spec;

/* Parse argv[0..argc-1] (the words after the subcommand).  Positional words
 * are errors unless `positional` is non-NULL, in which case up to
 * max_positional of them are stored there.  "--help"/"-h" set *help.
 * Returns 0, or -1 with a message in err. */
int args_parse(arg_spec *specs, int n_specs, int argc, char **argv, const char **positional,
               int max_positional, int *n_positional, int *help, char *err, size_t errsz);

/* Print "usage" then one line per option. */
void args_print_help(const char *usage, const char *description, const arg_spec *specs,
                     int n_specs);

#endif
