/* Training progress: a redrawn bar on a terminal, plain periodic lines
 * otherwise (logs, pipes). */
#ifndef FLOWEXP_TOOL_PROGRESS_H
#define FLOWEXP_TOOL_PROGRESS_H

#include <stdio.h>

typedef struct progress {
    FILE *out;
    int tty;            /* redraw in place */
    long long total;    /* steps planned (0: unknown) */
    double start, last_draw, time_limit;
    long long start_step; /* steps already done when this run began (resume) */
    double valid_seconds; /* wall time spent validating in this run */
} progress;

void progress_init(progress *p, FILE *out, long long total, long long start_step,
                   double time_limit);

/* Report step `step` with the running loss; draws at most ~10 times a second
 * on a terminal, every `line_every` steps otherwise (0: never).  Both show
 * the share of the elapsed time spent in validation. */
void progress_update(progress *p, long long step, double loss, long long line_every);

/* Count `seconds` of validation. */
void progress_add_valid(progress *p, double seconds);

/* Finish the bar (newline on a terminal). */
void progress_done(progress *p);

/* Seconds since an arbitrary origin (monotonic). */
double progress_now(void);

#endif
