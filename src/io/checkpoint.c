/* Checkpoints: parameters, layer state, optimizer, RNG streams and the
 * configuration in one HDF5 file, written atomically and loaded all or
 * nothing (see io.h for the layout). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/h5util.h"

#define FORMAT_NAME "libflowexp-checkpoint"
#define FORMAT_VERSION 1

static const char *section(const fxp_param *p)
{
    return fxp_param_kind(p) == FXP_PARAM_TRAINABLE ? "params" : "state";
}

static int group_with_order(fxp_ctx *ctx, hid_t fid, const char *name, hid_t *g, const char *path)
{
    hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
    if (gcpl >= 0) H5Pset_attr_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
    *g = gcpl >= 0 ? H5Gcreate2(fid, name, H5P_DEFAULT, gcpl, H5P_DEFAULT) : -1;
    if (gcpl >= 0) H5Pclose(gcpl);
    return *g < 0 ? FXP_ERR(ctx, FXP_EIO, "%s: cannot create group %s", path, name) : FXP_OK;
}

static int save(fxp_ctx *ctx, const char *path, const fxp_checkpoint *c)
{
    char tmp[4096], name[FXP_PARAM_NAME_MAX + 32];
    hid_t fid = fxp__h5_create_tmp(ctx, path, tmp, sizeof tmp), g = -1;
    if (fid < 0) return fxp_ctx_status(ctx) < 0 ? fxp_ctx_status(ctx) : FXP_EIO;
    int rc = FXP_OK;
    const fxp_attr root[3] = { { "format", FXP_ATTR_STRING, FORMAT_NAME, 0, 0 },
                               { "format_version", FXP_ATTR_INT, NULL, 0, FORMAT_VERSION },
                               { "library_version", FXP_ATTR_STRING, fxp_version(), 0, 0 } };
    for (int k = 0; k < 3 && rc >= 0; k++) rc = fxp__h5_attr_write(ctx, fid, &root[k], path);
    const int n = fxp_params_count(c->params);
    for (int i = 0; i < n && rc >= 0; i++) {
        const fxp_param *p = fxp_params_at(c->params, i);
        fxp_tensor v = fxp_param_value(p);
        snprintf(name, sizeof name, "%s/%s", section(p), fxp_param_name(p));
        rc = fxp__h5_write_floats(ctx, fid, name, v.ndim, v.shape, v.data, path);
    }
    if (rc >= 0 && c->optim) {
        const fxp_optim_config *oc = fxp_optim_get_config(c->optim);
        FXP_TRY(group_with_order(ctx, fid, "optimizer", &g, path));
        const fxp_attr a[] = {
            { "kind", FXP_ATTR_STRING, oc->kind == FXP_OPTIM_ADAMAX ? "adamax" : "adam", 0, 0 },
            { "steps", FXP_ATTR_INT, NULL, 0, fxp_optim_steps(c->optim) },
            { "lr", FXP_ATTR_DOUBLE, NULL, oc->lr, 0 },
            { "beta1", FXP_ATTR_DOUBLE, NULL, oc->beta1, 0 },
            { "beta2", FXP_ATTR_DOUBLE, NULL, oc->beta2, 0 },
            { "eps", FXP_ATTR_DOUBLE, NULL, oc->eps, 0 },
            { "weight_decay", FXP_ATTR_DOUBLE, NULL, oc->weight_decay, 0 },
            { "clip_norm", FXP_ATTR_DOUBLE, NULL, oc->clip_norm, 0 },
            { "warmup", FXP_ATTR_INT, NULL, 0, oc->warmup },
            { "warmup_units", FXP_ATTR_INT, NULL, 0, oc->warmup_units },
            { "decay", FXP_ATTR_DOUBLE, NULL, oc->decay, 0 },
            { "unit", FXP_ATTR_INT, NULL, 0, oc->unit },
            { "size", FXP_ATTR_INT, NULL, 0, (int64_t)fxp_optim_state_size(c->optim) },
        };
        for (size_t k = 0; k < sizeof a / sizeof a[0] && rc >= 0; k++)
            rc = fxp__h5_attr_write(ctx, g, &a[k], path);
        float *m = fxp_optim_m(c->optim), *v = fxp_optim_v(c->optim);
        for (int i = 0; i < n && rc >= 0; i++) {
            const fxp_param *p = fxp_params_at(c->params, i);
            if (fxp_param_kind(p) != FXP_PARAM_TRAINABLE) continue;
            fxp_tensor t = fxp_param_value(p);
            snprintf(name, sizeof name, "optimizer/m/%s", fxp_param_name(p));
            rc = fxp__h5_write_floats(ctx, fid, name, t.ndim, t.shape, m + fxp_param_offset(p), path);
            snprintf(name, sizeof name, "optimizer/v/%s", fxp_param_name(p));
            if (rc >= 0)
                rc = fxp__h5_write_floats(ctx, fid, name, t.ndim, t.shape, v + fxp_param_offset(p), path);
        }
        H5Gclose(g);
        g = -1;
    }
    for (int k = 0; k < c->n_rngs && rc >= 0; k++) {
        hsize_t two = 2;
        uint64_t st[2] = { c->rngs[k]->seed, c->rngs[k]->counter };
        snprintf(name, sizeof name, "rng/%s", c->rng_names[k]);
        hid_t lcpl = fxp__h5_lcpl(), sp = H5Screate_simple(1, &two, NULL);
        hid_t d = H5Dcreate2(fid, name, H5T_STD_U64LE, sp, lcpl, H5P_DEFAULT, H5P_DEFAULT);
        if (d < 0 || H5Dwrite(d, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, st) < 0)
            rc = FXP_ERR(ctx, FXP_EIO, "%s: cannot write RNG state %s", path, c->rng_names[k]);
        if (d >= 0) H5Dclose(d);
        H5Sclose(sp);
        H5Pclose(lcpl);
    }
    if (rc >= 0) {
        FXP_TRY(group_with_order(ctx, fid, "config", &g, path));
        for (int k = 0; k < c->n_config && rc >= 0; k++) {
            fxp_attr a = { c->config_keys[k], FXP_ATTR_STRING, c->config_values[k], 0, 0 };
            rc = fxp__h5_attr_write(ctx, g, &a, path);
        }
    }
out:
    if (g >= 0) H5Gclose(g);
    int fin = fxp__h5_finish(ctx, fid, tmp, path, rc >= 0);
    return rc < 0 ? rc : fin;
}

int fxp_checkpoint_save(fxp_ctx *ctx, const char *path, const fxp_checkpoint *c)
{
    if (!path || !c || !c->params || c->n_rngs < 0 || c->n_config < 0 ||
        (c->n_rngs && (!c->rng_names || !c->rngs)) ||
        (c->n_config && (!c->config_keys || !c->config_values)))
        return FXP_ERR(ctx, FXP_EINVAL, "bad arguments");
    if (c->optim && fxp_optim_state_size(c->optim) != fxp_params_size(c->params, FXP_PARAM_TRAINABLE))
        return FXP_ERR(ctx, FXP_EINVAL, "the optimizer does not belong to this parameter set");
    int rc;
    H5E_BEGIN_TRY { rc = save(ctx, path, c); } H5E_END_TRY;
    return rc;
}

/* ---- loading ---------------------------------------------------------------------------- */

typedef struct visit_state {
    int count;
    char extra[FXP_PARAM_NAME_MAX + 32];
    const fxp_params *ps;
    const char *section;
} visit_state;

/* Count the datasets below a section and remember one the model lacks. */
static herr_t visit_dataset(hid_t obj, const char *name, const H5O_info_t *info, void *op)
{
    (void)obj;
    visit_state *s = op;
    if (info->type != H5O_TYPE_DATASET) return 0;
    s->count++;
    const fxp_param *p = fxp_params_find(s->ps, name);
    const char *want = p ? section(p) : NULL;
    if ((!want || strcmp(want, s->section)) && !s->extra[0])
        snprintf(s->extra, sizeof s->extra, "%s/%s", s->section, name);
    return 0;
}

static int read_floats(fxp_ctx *ctx, hid_t fid, const char *name, const fxp_tensor *want,
                       float *dst, const char *path)
{
    char s1[64], s2[64];
    if (!fxp__h5_exists(fid, name))
        return FXP_ERR(ctx, FXP_EMISMATCH, "%s has no %s (the model has it with shape %s)", path,
                       name, fxp_tensor_shape_str(want, s1, sizeof s1));
    hid_t d = H5Dopen2(fid, name, H5P_DEFAULT);
    if (d < 0) return FXP_ERR(ctx, FXP_EFORMAT, "%s: %s is not a dataset", path, name);
    int dims[FXP_MAX_DIMS], nd = fxp__h5_shape(d, dims), rc = FXP_OK;
    fxp_tensor got = fxp_tensor_wrap(NULL, nd > 0 ? nd : 0, dims);
    if (nd < 0 || !fxp_tensor_same_shape(&got, want))
        rc = FXP_ERR(ctx, FXP_EMISMATCH, "%s: %s has shape %s in the file but %s in the model", path,
                     name, nd < 0 ? "(unreadable)" : fxp_tensor_shape_str(&got, s1, sizeof s1),
                     fxp_tensor_shape_str(want, s2, sizeof s2));
    else if (H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst) < 0)
        rc = FXP_ERR(ctx, FXP_EFORMAT, "%s: cannot read %s (damaged or truncated file?)", path, name);
    H5Dclose(d);
    return rc;
}

static int load(fxp_ctx *ctx, const char *path, const fxp_checkpoint *c)
{
    hid_t fid, g = -1;
    int rc = fxp__h5_open(ctx, path, &fid);
    if (rc < 0) return rc;
    char buf[128], name[FXP_PARAM_NAME_MAX + 32];
    const size_t nt = fxp_params_size(c->params, FXP_PARAM_TRAINABLE),
                 ns = fxp_params_size(c->params, FXP_PARAM_STATE);
    float *tr = malloc((nt ? nt : 1) * sizeof(float)), *stt = malloc((ns ? ns : 1) * sizeof(float));
    float *m = NULL, *v = NULL;
    fxp_rng *rngs = NULL;
    long long steps = 0;
    if (!tr || !stt) {
        rc = FXP_ERR(ctx, FXP_ENOMEM, "cannot allocate %zu floats", nt + ns);
        goto out;
    }
    if (fxp__h5_attr_text(ctx, fid, "format", buf, sizeof buf, path) < 0 || strcmp(buf, FORMAT_NAME)) {
        rc = FXP_ERR(ctx, FXP_EFORMAT, "%s is not a libflowexp checkpoint", path);
        goto out;
    }
    const int n = fxp_params_count(c->params);
    int n_tr = 0, n_st = 0;
    for (int i = 0; i < n; i++) {
        const fxp_param *p = fxp_params_at(c->params, i);
        fxp_tensor want = fxp_param_value(p);
        int trainable = fxp_param_kind(p) == FXP_PARAM_TRAINABLE;
        snprintf(name, sizeof name, "%s/%s", section(p), fxp_param_name(p));
        FXP_TRY(read_floats(ctx, fid, name, &want, (trainable ? tr : stt) + fxp_param_offset(p), path));
        n_tr += trainable;
        n_st += !trainable;
    }
    const char *sections[2] = { "params", "state" };
    const int expected[2] = { n_tr, n_st };
    for (int k = 0; k < 2; k++) { /* the file may hold nothing the model lacks */
        visit_state vs = { 0, "", c->params, sections[k] };
        if (fxp__h5_exists(fid, sections[k])) {
            hid_t sg = H5Gopen2(fid, sections[k], H5P_DEFAULT);
            if (sg < 0 || H5Ovisit(sg, H5_INDEX_NAME, H5_ITER_NATIVE, visit_dataset, &vs) < 0) {
                if (sg >= 0) H5Gclose(sg);
                rc = FXP_ERR(ctx, FXP_EFORMAT, "%s: cannot list /%s", path, sections[k]);
                goto out;
            }
            H5Gclose(sg);
        }
        if (vs.count != expected[k]) {
            rc = FXP_ERR(ctx, FXP_EMISMATCH, "%s holds %d entries under /%s, the model %d%s%s", path,
                         vs.count, sections[k], expected[k],
                         vs.extra[0] ? "; not in the model: " : "", vs.extra);
            goto out;
        }
    }
    if (c->optim) {
        const size_t size = fxp_optim_state_size(c->optim);
        if (!fxp__h5_exists(fid, "optimizer")) {
            rc = FXP_ERR(ctx, FXP_EMISMATCH, "%s has no optimizer state", path);
            goto out;
        }
        g = H5Gopen2(fid, "optimizer", H5P_DEFAULT);
        const char *kind = fxp_optim_get_config(c->optim)->kind == FXP_OPTIM_ADAMAX ? "adamax" : "adam";
        FXP_TRY(fxp__h5_attr_text(ctx, g, "kind", buf, sizeof buf, path));
        if (strcmp(buf, kind)) {
            rc = FXP_ERR(ctx, FXP_EMISMATCH, "%s: optimizer is %s, expected %s", path, buf, kind);
            goto out;
        }
        FXP_TRY(fxp__h5_attr_text(ctx, g, "steps", buf, sizeof buf, path));
        steps = atoll(buf);
        m = malloc((size ? size : 1) * sizeof(float));
        v = malloc((size ? size : 1) * sizeof(float));
        if (!m || !v) {
            rc = FXP_ERR(ctx, FXP_ENOMEM, "cannot allocate optimizer state");
            goto out;
        }
        for (int i = 0; i < n; i++) {
            const fxp_param *p = fxp_params_at(c->params, i);
            if (fxp_param_kind(p) != FXP_PARAM_TRAINABLE) continue;
            fxp_tensor want = fxp_param_value(p);
            snprintf(name, sizeof name, "optimizer/m/%s", fxp_param_name(p));
            FXP_TRY(read_floats(ctx, fid, name, &want, m + fxp_param_offset(p), path));
            snprintf(name, sizeof name, "optimizer/v/%s", fxp_param_name(p));
            FXP_TRY(read_floats(ctx, fid, name, &want, v + fxp_param_offset(p), path));
        }
    }
    if (c->n_rngs) {
        rngs = malloc((size_t)c->n_rngs * sizeof *rngs);
        if (!rngs) {
            rc = FXP_ERR(ctx, FXP_ENOMEM, "cannot allocate RNG states");
            goto out;
        }
    }
    for (int k = 0; k < c->n_rngs; k++) {
        snprintf(name, sizeof name, "rng/%s", c->rng_names[k]);
        int dims[FXP_MAX_DIMS];
        hid_t d = fxp__h5_exists(fid, name) ? H5Dopen2(fid, name, H5P_DEFAULT) : -1;
        uint64_t st[2];
        if (d < 0 || fxp__h5_shape(d, dims) != 1 || dims[0] != 2 ||
            H5Dread(d, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, st) < 0) {
            if (d >= 0) H5Dclose(d);
            rc = FXP_ERR(ctx, FXP_EMISMATCH, "%s: no readable RNG state /%s", path, name);
            goto out;
        }
        H5Dclose(d);
        rngs[k].seed = st[0];
        rngs[k].counter = st[1];
    }
    /* everything read: commit */
    memcpy(fxp_params_data(c->params, FXP_PARAM_TRAINABLE), tr, nt * sizeof(float));
    memcpy(fxp_params_data(c->params, FXP_PARAM_STATE), stt, ns * sizeof(float));
    if (c->optim) {
        memcpy(fxp_optim_m(c->optim), m, fxp_optim_state_size(c->optim) * sizeof(float));
        memcpy(fxp_optim_v(c->optim), v, fxp_optim_state_size(c->optim) * sizeof(float));
        fxp_optim_set_steps(c->optim, steps);
    }
    for (int k = 0; k < c->n_rngs; k++) *c->rngs[k] = rngs[k];
out:
    free(tr);
    free(stt);
    free(m);
    free(v);
    free(rngs);
    if (g >= 0) H5Gclose(g);
    H5Fclose(fid);
    return rc;
}

int fxp_checkpoint_load(fxp_ctx *ctx, const char *path, const fxp_checkpoint *c)
{
    if (!path || !c || !c->params || c->n_rngs < 0 || (c->n_rngs && (!c->rng_names || !c->rngs)))
        return FXP_ERR(ctx, FXP_EINVAL, "bad arguments");
    int rc;
    H5E_BEGIN_TRY { rc = load(ctx, path, c); } H5E_END_TRY;
    return rc;
}

/* ---- configuration ---------------------------------------------------------------------- */

static int open_config(fxp_ctx *ctx, const char *path, hid_t *fid, hid_t *g)
{
    int rc = fxp__h5_open(ctx, path, fid);
    if (rc < 0) return rc;
    char buf[64];
    if (fxp__h5_attr_text(ctx, *fid, "format", buf, sizeof buf, path) < 0 || strcmp(buf, FORMAT_NAME)) {
        H5Fclose(*fid);
        return FXP_ERR(ctx, FXP_EFORMAT, "%s is not a libflowexp checkpoint", path);
    }
    *g = fxp__h5_exists(*fid, "config") ? H5Gopen2(*fid, "config", H5P_DEFAULT) : -1;
    if (*g < 0) {
        H5Fclose(*fid);
        return FXP_ERR(ctx, FXP_EFORMAT, "%s has no /config group", path);
    }
    return FXP_OK;
}

static int config_get(fxp_ctx *ctx, const char *path, const char *key, char *buf, size_t size)
{
    hid_t fid, g;
    int rc = open_config(ctx, path, &fid, &g);
    if (rc < 0) return rc;
    rc = fxp__h5_attr_text(ctx, g, key, buf, size, path);
    H5Gclose(g);
    H5Fclose(fid);
    return rc;
}

int fxp_checkpoint_config(fxp_ctx *ctx, const char *path, const char *key, char *buf, size_t size)
{
    if (!path || !key || !buf || !size) return FXP_ERR(ctx, FXP_EINVAL, "bad arguments");
    int rc;
    H5E_BEGIN_TRY { rc = config_get(ctx, path, key, buf, size); } H5E_END_TRY;
    return rc;
}

typedef struct each_state {
    fxp_ctx *ctx;
    const char *path;
    fxp_config_visit_fn fn;
    void *user;
    int rc;
} each_state;

static herr_t each_attr(hid_t loc, const char *name, const H5A_info_t *info, void *op)
{
    (void)info;
    each_state *s = op;
    char value[4096];
    s->rc = fxp__h5_attr_text(s->ctx, loc, name, value, sizeof value, s->path);
    if (s->rc < 0) return -1;
    return s->fn(s->user, name, value) ? 1 : 0;
}

static int config_each(fxp_ctx *ctx, const char *path, fxp_config_visit_fn fn, void *user)
{
    hid_t fid, g;
    int rc = open_config(ctx, path, &fid, &g);
    if (rc < 0) return rc;
    each_state s = { ctx, path, fn, user, FXP_OK };
    hsize_t idx = 0;
    if (H5Aiterate2(g, H5_INDEX_CRT_ORDER, H5_ITER_INC, &idx, each_attr, &s) < 0 && s.rc >= 0)
        s.rc = FXP_ERR(ctx, FXP_EFORMAT, "%s: cannot list /config", path);
    H5Gclose(g);
    H5Fclose(fid);
    return s.rc;
}

int fxp_checkpoint_config_each(fxp_ctx *ctx, const char *path, fxp_config_visit_fn fn, void *user)
{
    if (!path || !fn) return FXP_ERR(ctx, FXP_EINVAL, "bad arguments");
    int rc;
    H5E_BEGIN_TRY { rc = config_each(ctx, path, fn, user); } H5E_END_TRY;
    return rc;
}
