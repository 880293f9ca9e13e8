/* Typed configuration keys (keys.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/keys.h"

const fxp__key *fxp__keys_find(const fxp__key *keys, int n, const char *key)
{
    for (int i = 0; key && i < n; i++)
        if (strcmp(keys[i].key, key) == 0) return &keys[i];
    return NULL;
}

static int name_index(const fxp__key *k, const char *value)
{
    for (int i = 0; i < k->n_names; i++)
        if (strcmp(k->names[i], value) == 0) return i;
    return -1;
}

/* The field as a number (enums as their index; strings as their name index). */
static double field_number(const void *cfg, const fxp__key *k)
{
    const char *p = (const char *)cfg + k->offset;
    switch (k->type) {
    case FXP__K_FLOAT: return *(const float *)p;
    case FXP__K_DOUBLE: return *(const double *)p;
    case FXP__K_STRING: return name_index(k, p);
    default: return *(const int *)p;
    }
}

static void list_names(const fxp__key *k, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < k->n_names && used < size; i++) {
        int w = snprintf(buf + used, size - used, "%s%s", i ? ", " : "", k->names[i]);
        if (w < 0) break;
        used += (size_t)w;
    }
}

int fxp__keys_set(const char *func, const fxp__key *keys, int n, void *cfg, const char *what,
                  const char *key, const char *value)
{
    if (!cfg || !key || !value)
        return fxp__err(NULL, FXP_EINVAL, func, "cfg, key or value is NULL");
    const fxp__key *k = fxp__keys_find(keys, n, key);
    if (!k) return fxp__err(NULL, FXP_ENOTFOUND, func, "unknown %s key \"%s\"", what, key);
    char *p = (char *)cfg + k->offset;
    if (k->type == FXP__K_ENUM || k->type == FXP__K_STRING) {
        const int i = name_index(k, value);
        if (i < 0) {
            char names[256];
            list_names(k, names, sizeof names);
            return fxp__err(NULL, FXP_EINVAL, func, "%s: unknown value \"%s\" (%s)", key, value,
                            names);
        }
        if (k->type == FXP__K_ENUM) *(int *)p = i;
        else snprintf(p, k->size, "%s", k->names[i]);
        return FXP_OK;
    }
    char *end;
    errno = 0;
    const double v = strtod(value, &end);
    if (end == value || *end != '\0' || errno == ERANGE)
        return fxp__err(NULL, FXP_EINVAL, func, "%s: \"%s\" is not a number", key, value);
    if (!(v >= k->lo && v <= k->hi))
        return fxp__err(NULL, FXP_EINVAL, func, "%s = %s outside [%g, %g]", key, value, k->lo,
                        k->hi);
    if (k->type == FXP__K_INT) {
        if (v != (double)(int)v)
            return fxp__err(NULL, FXP_EINVAL, func, "%s = %s is not an integer", key, value);
        *(int *)p = (int)v;
    } else if (k->type == FXP__K_FLOAT) {
        *(float *)p = (float)v;
    } else {
        *(double *)p = v;
    }
    return FXP_OK;
}

int fxp__keys_get(const char *func, const fxp__key *keys, int n, const void *cfg,
                  const char *what, const char *key, char *buf, size_t size)
{
    if (!cfg || !buf || size == 0) return fxp__err(NULL, FXP_EINVAL, func, "cfg or buf is NULL");
    buf[0] = '\0';
    const fxp__key *k = fxp__keys_find(keys, n, key);
    if (!k) return fxp__err(NULL, FXP_ENOTFOUND, func, "unknown %s key \"%s\"", what, key);
    const char *p = (const char *)cfg + k->offset;
    int w;
    switch (k->type) {
    case FXP__K_ENUM: {
        const int i = *(const int *)p;
        w = snprintf(buf, size, "%s", i >= 0 && i < k->n_names ? k->names[i] : "");
        break;
    }
    case FXP__K_STRING: w = snprintf(buf, size, "%.*s", (int)k->size, p); break;
    case FXP__K_INT: w = snprintf(buf, size, "%d", *(const int *)p); break;
    default: w = snprintf(buf, size, "%.9g", field_number(cfg, k)); break;
    }
    if (w < 0 || (size_t)w >= size)
        return fxp__err(NULL, FXP_EINVAL, func, "%s: value does not fit %zu bytes", key, size);
    return FXP_OK;
}

int fxp__keys_validate(const char *func, fxp_ctx *ctx, const fxp__key *keys, int n,
                       const void *cfg)
{
    if (!cfg) return fxp__err(ctx, FXP_EINVAL, func, "cfg is NULL");
    for (int i = 0; i < n; i++) {
        const fxp__key *k = &keys[i];
        const double v = field_number(cfg, k);
        if (k->type == FXP__K_ENUM || k->type == FXP__K_STRING) {
            if (!(v >= 0 && v < k->n_names)) {
                char names[256];
                list_names(k, names, sizeof names);
                return fxp__err(ctx, FXP_EINVAL, func, "%s has no valid value (%s)", k->key, names);
            }
        } else if (!(v >= k->lo && v <= k->hi)) {
            return fxp__err(ctx, FXP_EINVAL, func, "%s = %g outside [%g, %g]", k->key, v, k->lo,
                            k->hi);
        }
    }
    return FXP_OK;
}
