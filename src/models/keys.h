/* Typed key tables for model configurations: each key names a struct field
 * (offset), its type, its valid range or names, and a one-line meaning.
 * Used by the image models' configuration (src/models/image_config.c). */
#ifndef FXP_MODELS_KEYS_H
#define FXP_MODELS_KEYS_H

#include <stddef.h>

#include "core/internal.h"

typedef enum fxp__key_type {
    FXP__K_INT,    /* int, integral values in [lo, hi] */
    FXP__K_FLOAT,  /* float in [lo, hi] */
    FXP__K_DOUBLE, /* double in [lo, hi] */
    FXP__K_ENUM,   /* an enum stored as int: index into names[0..n_names) */
    FXP__K_STRING  /* char[size]: one of names[0..n_names) */
} fxp__key_type;

typedef struct fxp__key {
    const char *key;
    fxp__key_type type;
    size_t offset;
    double lo, hi;
    const char *const *names; /* ENUM, STRING */
    int n_names;
    size_t size;              /* STRING: buffer size */
    const char *help;
} fxp__key;

const fxp__key *fxp__keys_find(const fxp__key *keys, int n, const char *key);

/* Each function reports errors as the public function `func` (messages
 * "func: ...").  Parse value into cfg's field (cfg unchanged on error;
 * messages name `what` and the key): FXP_ENOTFOUND for unknown keys,
 * FXP_EINVAL for bad values. */
int fxp__keys_set(const char *func, const fxp__key *keys, int n, void *cfg, const char *what,
                  const char *key, const char *value);
/* The text form of a field (numbers %.9g / %d, names verbatim). */
int fxp__keys_get(const char *func, const fxp__key *keys, int n, const void *cfg,
                  const char *what, const char *key, char *buf, size_t size);
/* Every field within its range / names: FXP_EINVAL naming the first bad key. */
int fxp__keys_validate(const char *func, fxp_ctx *ctx, const fxp__key *keys, int n,
                       const void *cfg);

#endif
