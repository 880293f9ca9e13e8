/* Progress bar / periodic lines for `flowexp train`. */
#include "progress.h"

#include <time.h>
#include <unistd.h>

double progress_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void progress_init(progress *p, FILE *out, long long total, long long start_step,
                   double time_limit)
{
    p->out = out;
    p->tty = isatty(fileno(out));
    p->total = total;
    p->start = progress_now();
    p->last_draw = 0;
    p->time_limit = time_limit;
    p->start_step = start_step;
    p->valid_seconds = 0;
}

void progress_add_valid(progress *p, double seconds) { p->valid_seconds += seconds; }

static void fmt_time(char *buf, size_t n, double s)
{
    if (!(s >= 0) || s > 360000) {
        snprintf(buf, n, "--:--");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

void progress_update(progress *p, long long step, double loss, long long line_every)
{
    const double now = progress_now(), el = now - p->start;
    const long long done = step - p->start_step;
    const double rate = el > 0 ? done / el : 0;
    double eta = p->total > step && rate > 0 ? (p->total - step) / rate : 0;
    if (p->time_limit > 0 && p->time_limit - el < eta) eta = p->time_limit - el;
    char eta_s[32], el_s[32];
    fmt_time(eta_s, sizeof eta_s, eta);
    fmt_time(el_s, sizeof el_s, el);
    const int valid_pct = el > 0 ? (int)(100 * p->valid_seconds / el + 0.5) : 0;
    if (p->tty) {
        if (now - p->last_draw < 0.1 && step != p->total) return;
        p->last_draw = now;
        const int width = 24;
        int fill = p->total > 0 ? (int)(width * (double)step / p->total) : 0;
        if (p->time_limit > 0 && el / p->time_limit * width > fill) fill = (int)(el / p->time_limit * width);
        if (fill > width) fill = width;
        char bar[32];
        for (int i = 0; i < width; i++) bar[i] = i < fill ? '=' : (i == fill ? '>' : ' ');
        bar[width] = '\0';
        fprintf(p->out, "\r[%s] step %lld/%lld  loss %.4f  %.1f it/s  elapsed %s (valid %d%%)  "
                "ETA %s   ", bar, step, p->total, loss, rate, el_s, valid_pct, eta_s);
        fflush(p->out);
    } else if (line_every > 0 && step % line_every == 0) {
        fprintf(p->out, "step %lld/%lld  loss %.4f  %.1f it/s  elapsed %s (valid %d%%)  ETA %s\n",
                step, p->total, loss, rate, el_s, valid_pct, eta_s);
        fflush(p->out);
    }
}

void progress_done(progress *p)
{
    if (p->tty) {
        fputc('\n', p->out);
        fflush(p->out);
    }
}
