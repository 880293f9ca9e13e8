/* A small reader of comma-separated tables with a header row, for the
 * flowexp figures (training logs, results, the paper's numbers).
 *
 * Fields are separated by commas; a field may be double-quoted (with ""
 * for a quote inside).  Spaces around fields are dropped, blank lines
 * skipped, "\r\n" line ends accepted.  Every row must have as many fields as
 * the header. */
#ifndef FLOWEXP_TOOL_CSV_H
#define FLOWEXP_TOOL_CSV_H

#include <stddef.h>

typedef struct csv_table {
    const char *path;
    int n_cols, n_rows; /* header excluded from n_rows */
    char **cell;        /* (n_rows + 1) x n_cols, row 0 the header */
    int *line;          /* source line of each row (row 0: the header) */
    char *buf;          /* storage of the cells */
} csv_table;

/* Read path (at most 64 MiB) into t.  Returns 0, or -1 with a message naming
 * the file and line in err.  csv_free(t) afterwards in both cases. */
int csv_read(const char *path, csv_table *t, char *err, size_t errsz);
void csv_free(csv_table *t);

/* Index of the column named name, or -1. */
int csv_col(const csv_table *t, const char *name);

/* Cell of data row r (0-based, header excluded) in column c. */
const char *csv_cell(const csv_table *t, int r, int c);

/* The number in data row r, column c: 0 and *v for a finite number, 1 and
 * *v = NAN for an empty or "nan" cell, -1 with a message naming file, line
 * and column for anything else (including infinities). */
int csv_number(const csv_table *t, int r, int c, double *v, char *err, size_t errsz);

#endif
