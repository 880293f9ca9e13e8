/* Chunked bump allocator with marks (see core/internal.h). */
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

#define ARENA_ALIGN 64
#define ARENA_MIN_CHUNK ((size_t)1 << 20)

static size_t align_up(size_t n) { return (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1); }

void fxp__arena_init(fxp__arena *a) { memset(a, 0, sizeof *a); }

void fxp__arena_destroy(fxp__arena *a)
{
    for (int i = 0; i < a->n_chunks; i++) free(a->chunks[i].base);
    free(a->chunks);
    memset(a, 0, sizeof *a);
}

static int push_chunk(fxp__arena *a, size_t size)
{
    if (a->n_chunks == a->cap_chunks) {
        int cap = a->cap_chunks ? 2 * a->cap_chunks : 8;
        fxp__arena_chunk *c = realloc(a->chunks, (size_t)cap * sizeof *c);
        if (!c) return -1;
        a->chunks = c;
        a->cap_chunks = cap;
    }
    void *base = aligned_alloc(ARENA_ALIGN, size);
    if (!base) return -1;
    a->chunks[a->n_chunks++] = (fxp__arena_chunk){ base, size, 0 };
    return 0;
}

void *fxp__arena_alloc(fxp__arena *a, size_t bytes)
{
    size_t need = align_up(bytes ? bytes : 1);
    if (need < bytes) return NULL; /* overflow */
    while (a->cur < a->n_chunks) {
        fxp__arena_chunk *c = &a->chunks[a->cur];
        if (c->size - c->used >= need) {
            void *p = c->base + c->used;
            c->used += need;
            a->in_use += need;
            if (a->in_use > a->peak) a->peak = a->in_use;
            return p;
        }
        /* The current chunk is full: move on to a later (empty) one that fits,
         * dropping later chunks that are too small to be of use. */
        if (a->cur + 1 < a->n_chunks && a->chunks[a->cur + 1].size >= need) {
            a->cur++;
            a->chunks[a->cur].used = 0;
            continue;
        }
        for (int i = a->cur + 1; i < a->n_chunks; i++) free(a->chunks[i].base);
        a->n_chunks = a->cur + 1;
        break;
    }
    size_t last = a->n_chunks ? a->chunks[a->n_chunks - 1].size : 0;
    size_t size = FXP_MAX(FXP_MAX(need, ARENA_MIN_CHUNK), last);
    if (push_chunk(a, size) < 0) return NULL;
    a->cur = a->n_chunks - 1;
    return fxp__arena_alloc(a, bytes);
}

void fxp__arena_reset(fxp__arena *a)
{
    if (a->n_chunks > 1) {
        size_t total = 0;
        for (int i = 0; i < a->n_chunks; i++) {
            total += a->chunks[i].size;
            free(a->chunks[i].base);
        }
        a->n_chunks = 0;
        if (push_chunk(a, total) < 0) { /* keep going with no chunk at all */
            a->n_chunks = 0;
        }
    }
    for (int i = 0; i < a->n_chunks; i++) a->chunks[i].used = 0;
    a->cur = 0;
    a->in_use = 0;
}

fxp__arena_mark fxp__arena_save(const fxp__arena *a)
{
    fxp__arena_mark m = { a->cur, 0, a->in_use };
    if (a->cur < a->n_chunks) m.used = a->chunks[a->cur].used;
    return m;
}

void fxp__arena_restore(fxp__arena *a, fxp__arena_mark m)
{
    if (m.cur >= a->n_chunks) { /* saved before the first chunk existed */
        for (int i = 0; i < a->n_chunks; i++) a->chunks[i].used = 0;
        a->cur = 0;
        a->in_use = 0;
        return;
    }
    a->cur = m.cur;
    a->chunks[m.cur].used = m.used;
    for (int i = m.cur + 1; i < a->n_chunks; i++) a->chunks[i].used = 0;
    a->in_use = m.in_use;
}

size_t fxp__arena_reserved(const fxp__arena *a)
{
    size_t total = 0;
    for (int i = 0; i < a->n_chunks; i++) total += a->chunks[i].size;
    return total;
}
