/* Checkpoints: parameters, layer state, optimizer, RNG streams and the
 * configuration in one HDF5 file, written atomically and loaded all or
 * nothing (see checkpoint.h for the layout). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowexp/checkpoint.h"
#include "io/h5util.h"

#define FORMAT_NAME "libflowexp-checkpoint"
#define NAME_MAX_LEN (FXP_PARAM_NAME_MAX + 32)

static const char *section(const fxp_param *p)
{
    return fxp_param_kind(p) == FXP_PARAM_TRAINABLE ? "params" : "state";
}

static const char *optim_kind_name(const fxp_optim *o)
{
    return fxp_optim_get_config(o)->kind == FXP_OPTIM_ADAMAX ? "adamax" : "adam";
}

/* The parameter-name rule of params.h: [A-Za-z0-9_./-], no leading,
 * trailing or doubled '/'. */
static int valid_name(const char *s)
{
    const size_t n = s ? strlen(s) : 0;
    if (n == 0 || n >= FXP_PARAM_NAME_MAX || s[0] == '/' || s[n - 1] == '/') return 0;
    for (size_t i = 0; i < n; i++) {
        const char c = s[i];
        const int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '_' || c == '.' || c == '/' || c == '-';
        if (!ok || (c == '/' && s[i + 1] == '/')) return 0;
    }
    return 1;
}

/* ---- saving ------------------------------------------------------------------------------- */

/* A group whose attributes remember their creation order (for /config). */
static int create_group(fxp_ctx *ctx, hid_t fid, const char *name, hid_t *g, const char *path)
{
    hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
    *g = -1;
    if (gcpl >= 0 &&
        H5Pset_attr_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED) >= 0)
        *g = H5Gcreate2(fid, name, H5P_DEFAULT, gcpl, H5P_DEFAULT);
    if (gcpl >= 0) H5Pclose(gcpl);
    return *g < 0 ? FXP_ERR(ctx, FXP_EIO, "%s: cannot create group /%s", path, name) : FXP_OK;
}

static int save_optimizer(fxp_ctx *ctx, hid_t fid, const fxp_checkpoint *c, const char *path)
{
    char name[NAME_MAX_LEN];
    hid_t g;
    int rc = create_group(ctx, fid, "optimizer", &g, path);
    if (rc < 0) return rc;
    const fxp_optim_config *oc = fxp_optim_get_config(c->optim);
    const fxp_attr a[] = {
        { "kind", FXP_ATTR_STRING, optim_kind_name(c->optim), 0, 0 },
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
    H5Gclose(g);
    const float *m = fxp_optim_m(c->optim), *v = fxp_optim_v(c->optim);
    const int n = fxp_params_count(c->params);
    for (int i = 0; i < n && rc >= 0; i++) {
        const fxp_param *p = fxp_params_at(c->params, i);
        if (fxp_param_kind(p) != FXP_PARAM_TRAINABLE) continue;
        const fxp_tensor t = fxp_param_value(p);
        snprintf(name, sizeof name, "optimizer/m/%s", fxp_param_name(p));
        rc = fxp__h5_write_floats(ctx, fid, name, t.ndim, t.shape, m + fxp_param_offset(p), path);
        snprintf(name, sizeof name, "optimizer/v/%s", fxp_param_name(p));
        if (rc >= 0)
            rc = fxp__h5_write_floats(ctx, fid, name, t.ndim, t.shape, v + fxp_param_offset(p), path);
    }
    return rc;
}

/* /rng/<name>: uint64 [2] = (seed, counter), also as attributes. */
static int save_rng(fxp_ctx *ctx, hid_t fid, const char *rng_name, const fxp_rng *r, const char *path)
{
    char name[NAME_MAX_LEN];
    const hsize_t two = 2;
    const uint64_t st[2] = { r->seed, r->counter };
    snprintf(name, sizeof name, "rng/%s", rng_name);
    int rc = FXP_OK;
    hid_t lcpl = fxp__h5_lcpl(), dcpl = fxp__h5_dcpl(1, &two, sizeof(uint64_t));
    hid_t sp = H5Screate_simple(1, &two, NULL);
    hid_t d = lcpl >= 0 && dcpl >= 0 && sp >= 0
                  ? H5Dcreate2(fid, name, H5T_STD_U64LE, sp, lcpl, dcpl, H5P_DEFAULT)
                  : -1;
    if (d < 0 || H5Dwrite(d, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, st) < 0)
        rc = FXP_ERR(ctx, FXP_EIO, "%s: cannot write RNG state /%s", path, name);
    const char *keys[2] = { "seed", "counter" };
    for (int k = 0; k < 2 && rc >= 0; k++) {
        hid_t s1 = H5Screate(H5S_SCALAR);
        hid_t a = s1 >= 0 ? H5Acreate2(d, keys[k], H5T_STD_U64LE, s1, H5P_DEFAULT, H5P_DEFAULT) : -1;
        if (a < 0 || H5Awrite(a, H5T_NATIVE_UINT64, &st[k]) < 0)
            rc = FXP_ERR(ctx, FXP_EIO, "%s: cannot write attribute %s of /%s", path, keys[k], name);
        if (a >= 0) H5Aclose(a);
        if (s1 >= 0) H5Sclose(s1);
    }
    if (d >= 0) H5Dclose(d);
    if (sp >= 0) H5Sclose(sp);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (lcpl >= 0) H5Pclose(lcpl);
    return rc;
}

static int save(fxp_ctx *ctx, const char *path, const fxp_checkpoint *c)
{
    char name[NAME_MAX_LEN];
    fxp__h5_writer w;
    hid_t g = -1;
    int rc = fxp__h5_create_tmp(ctx, path, &w);
    if (rc < 0) return rc;
    const hid_t fid = w.fid;
    const fxp_attr root[3] = {
        { "format", FXP_ATTR_STRING, FORMAT_NAME, 0, 0 },
        { "format_version", FXP_ATTR_INT, NULL, 0, FXP_CHECKPOINT_FORMAT_VERSION },
        { "library_version", FXP_ATTR_STRING, fxp_version(), 0, 0 },
    };
    for (int k = 0; k < 3; k++) FXP_TRY(fxp__h5_attr_write(ctx, fid, &root[k], path));
    const int n = fxp_params_count(c->params);
    for (int i = 0; i < n; i++) {
        const fxp_param *p = fxp_params_at(c->params, i);
        const fxp_tensor v = fxp_param_value(p);
        snprintf(name, sizeof name, "%s/%s", section(p), fxp_param_name(p));
        FXP_TRY(fxp__h5_write_floats(ctx, fid, name, v.ndim, v.shape, v.data, path));
    }
    if (c->optim) FXP_TRY(save_optimizer(ctx, fid, c, path));
    for (int k = 0; k < c->n_rngs; k++) FXP_TRY(save_rng(ctx, fid, c->rng_names[k], c->rngs[k], path));
    FXP_TRY(create_group(ctx, fid, "config", &g, path));
    for (int k = 0; k < c->n_config; k++) {
        const fxp_attr a = { c->config_keys[k], FXP_ATTR_STRING, c->config_values[k], 0, 0 };
        FXP_TRY(fxp__h5_attr_write(ctx, g, &a, path));
    }
out:
    if (g >= 0) H5Gclose(g);
    const int fin = fxp__h5_finish(ctx, &w, rc >= 0);
    return rc < 0 ? rc : fin;
}

int fxp_checkpoint_save(fxp_ctx *ctx, const char *path, const fxp_checkpoint *c)
{
    FXP_API_SCOPE();
    if (!path || !*path || !c || !c->params || c->n_rngs < 0 || c->n_config < 0 ||
        (c->n_rngs && (!c->rng_names || !c->rngs)) ||
        (c->n_config && (!c->config_keys || !c->config_values)))
        return FXP_ERR(ctx, FXP_EINVAL, "bad arguments: need a path, params, and arrays for "
                       "n_rngs = %d RNGs and n_config = %d config entries",
                       c ? c->n_rngs : 0, c ? c->n_config : 0);
    if (c->optim && fxp_optim_state_size(c->optim) != fxp_params_size(c->params, FXP_PARAM_TRAINABLE))
        return FXP_ERR(ctx, FXP_EINVAL, "the optimizer (%zu floats) does not belong to this "
                       "parameter set (%zu trainable floats)", fxp_optim_state_size(c->optim),
                       fxp_params_size(c->params, FXP_PARAM_TRAINABLE));
    for (int k = 0; k < c->n_rngs; k++) {
        if (!c->rngs[k] || !valid_name(c->rng_names[k]))
            return FXP_ERR(ctx, FXP_EINVAL, "RNG %d: invalid name \"%s\" or NULL state", k,
                           c->rng_names[k] ? c->rng_names[k] : "(null)");
        for (int j = 0; j < k; j++)
            if (!strcmp(c->rng_names[j], c->rng_names[k]))
                return FXP_ERR(ctx, FXP_EINVAL, "RNG name \"%s\" given twice", c->rng_names[k]);
    }
    for (int k = 0; k < c->n_config; k++) {
        if (!c->config_keys[k] || !*c->config_keys[k] || !c->config_values[k])
            return FXP_ERR(ctx, FXP_EINVAL, "config entry %d has an empty key or a NULL value", k);
        for (int j = 0; j < k; j++)
            if (!strcmp(c->config_keys[j], c->config_keys[k]))
                return FXP_ERR(ctx, FXP_EINVAL, "config key \"%s\" given twice", c->config_keys[k]);
    }
    int rc;
    H5E_BEGIN_TRY { rc = save(ctx, path, c); } H5E_END_TRY;
    return rc;
}

/* ---- loading ------------------------------------------------------------------------------ */

/* An integer attribute (any integer type) of obj. */
static int attr_int64(fxp_ctx *ctx, hid_t obj, const char *key, int64_t *v, const char *path)
{
    if (H5Aexists(obj, key) <= 0) return FXP_ERR(ctx, FXP_EFORMAT, "%s: attribute \"%s\" is missing", path, key);
    int rc = FXP_OK;
    hid_t a = H5Aopen(obj, key, H5P_DEFAULT), t = a >= 0 ? H5Aget_type(a) : -1;
    if (t < 0 || H5Tget_class(t) != H5T_INTEGER || !fxp__h5_attr_sane(a, t) ||
        H5Aread(a, H5T_NATIVE_INT64, v) < 0)
        rc = FXP_ERR(ctx, FXP_EFORMAT, "%s: attribute \"%s\" is not a readable integer", path, key);
    if (t >= 0) H5Tclose(t);
    if (a >= 0) H5Aclose(a);
    return rc;
}

/* The file must be a checkpoint of a format version this library reads;
 * *version_out (may be NULL) receives the version. */
static int check_format(fxp_ctx *ctx, hid_t fid, const char *path, int *version_out)
{
    char buf[64];
    int64_t version;
    if (fxp__h5_attr_text(ctx, fid, "format", buf, sizeof buf, path) < 0 || strcmp(buf, FORMAT_NAME))
        return FXP_ERR(ctx, FXP_EFORMAT, "%s is an HDF5 file but not a libflowexp checkpoint "
                       "(no root attribute format = \"%s\")", path, FORMAT_NAME);
    int rc = attr_int64(ctx, fid, "format_version", &version, path);
    if (rc < 0) return rc;
    if (version < 1 || version > FXP_CHECKPOINT_FORMAT_VERSION)
        return FXP_ERR(ctx, FXP_EFORMAT, "%s: checkpoint format version %lld; this library (%s) "
                       "reads versions 1..%d", path, (long long)version, fxp_version(),
                       FXP_CHECKPOINT_FORMAT_VERSION);
    if (version_out) *version_out = (int)version;
    return FXP_OK;
}

typedef struct visit_state {
    int count;                 /* datasets below the group */
    char extra[NAME_MAX_LEN];  /* the first one the model lacks */
    const fxp_params *ps;
    int kind;                  /* the parameter kind this group holds */
} visit_state;

static herr_t visit_dataset(hid_t obj, const char *name, const H5O_info_t *info, void *op)
{
    (void)obj;
    visit_state *s = op;
    if (info->type != H5O_TYPE_DATASET) return 0;
    s->count++;
    const fxp_param *p = fxp_params_find(s->ps, name);
    if ((!p || fxp_param_kind(p) != s->kind) && !s->extra[0])
        snprintf(s->extra, sizeof s->extra, "%s", name);
    return 0;
}

/* The group `group` (absent = empty) must hold exactly `expected` datasets,
 * all of them entries of kind `kind`: the file has nothing the model lacks. */
static int check_no_extra(fxp_ctx *ctx, hid_t fid, const char *group, const fxp_params *ps, int kind,
                          int expected, const char *path)
{
    visit_state vs = { 0, "", ps, kind };
    if (fxp__h5_exists(fid, group)) {
        hid_t g = H5Gopen2(fid, group, H5P_DEFAULT);
        const herr_t r = g >= 0 ? H5Ovisit(g, H5_INDEX_NAME, H5_ITER_INC, visit_dataset, &vs) : -1;
        if (g >= 0) H5Gclose(g);
        if (r < 0) return FXP_ERR(ctx, FXP_EFORMAT, "%s: cannot list /%s (damaged file?)", path, group);
    }
    if (vs.extra[0])
        return FXP_ERR(ctx, FXP_EMISMATCH, "%s holds /%s/%s, which the model does not have", path,
                       group, vs.extra);
    if (vs.count != expected)
        return FXP_ERR(ctx, FXP_EMISMATCH, "%s holds %d entries under /%s, the model %d", path,
                       vs.count, group, expected);
    return FXP_OK;
}

/* How a dataset's read failed: the message's words (FXP__H5_BADSUM: the
 * data fails its checksum). */
static int read_error(fxp_ctx *ctx, int r, const char *path, const char *name)
{
    if (r == FXP__H5_BADSUM)
        return FXP_ERR(ctx, FXP_EFORMAT, "%s: dataset %s fails its checksum (the file is damaged)",
                       path, name);
    return FXP_ERR(ctx, FXP_EFORMAT, "%s: cannot read /%s (damaged or truncated file?)", path, name);
}

/* Read the float dataset `name` into dst, which must have want's shape;
 * with checksummed (format version >= 2) the dataset must carry a checksum. */
static int read_floats(fxp_ctx *ctx, hid_t fid, const char *name, const fxp_tensor *want,
                       float *dst, int checksummed, const char *path)
{
    char s1[64], s2[64];
    if (!fxp__h5_exists(fid, name))
        return FXP_ERR(ctx, FXP_EMISMATCH, "%s has no /%s (the model has it with shape %s)", path,
                       name, fxp_tensor_shape_str(want, s1, sizeof s1));
    hid_t d = H5Dopen2(fid, name, H5P_DEFAULT);
    if (d < 0) return FXP_ERR(ctx, FXP_EFORMAT, "%s: /%s is not a readable dataset", path, name);
    int dims[FXP_MAX_DIMS], rc = FXP_OK, r;
    const int nd = fxp__h5_shape(d, dims);
    hid_t t = H5Dget_type(d);
    const fxp_tensor got = fxp_tensor_wrap(NULL, nd > 0 ? nd : 0, dims);
    if (t < 0 || H5Tget_class(t) != H5T_FLOAT)
        rc = FXP_ERR(ctx, FXP_EFORMAT, "%s: /%s does not hold floating-point numbers", path, name);
    else if (nd < 0 || !fxp_tensor_same_shape(&got, want))
        rc = FXP_ERR(ctx, FXP_EMISMATCH, "%s: %s has shape %s in the file but %s in the model", path,
                     name, nd < 0 ? "(unreadable)" : fxp_tensor_shape_str(&got, s1, sizeof s1),
                     fxp_tensor_shape_str(want, s2, sizeof s2));
    else if (checksummed && !fxp__h5_checksummed(d))
        rc = FXP_ERR(ctx, FXP_EFORMAT, "%s: dataset %s has no checksum (every dataset of a "
                     "version 2 checkpoint has one)", path, name);
    else if ((r = fxp__h5_read_all(d, H5T_NATIVE_FLOAT, dst)) < 0)
        rc = read_error(ctx, r, path, name);
    if (t >= 0) H5Tclose(t);
    H5Dclose(d);
    return rc;
}

/* Every trainable entry's moments m and v into m, v (trainable layout), the
 * step count into *steps; the file's optimizer must be of the same kind. */
static int load_optimizer(fxp_ctx *ctx, hid_t fid, const fxp_checkpoint *c, float *m, float *v,
                          int64_t *steps, int checksummed, const char *path)
{
    char buf[64], name[NAME_MAX_LEN];
    if (!fxp__h5_exists(fid, "optimizer"))
        return FXP_ERR(ctx, FXP_EMISMATCH, "%s has no optimizer state (/optimizer)", path);
    hid_t g = H5Gopen2(fid, "optimizer", H5P_DEFAULT);
    if (g < 0) return FXP_ERR(ctx, FXP_EFORMAT, "%s: /optimizer is not a readable group", path);
    int rc = fxp__h5_attr_text(ctx, g, "kind", buf, sizeof buf, path);
    if (rc >= 0 && strcmp(buf, optim_kind_name(c->optim)))
        rc = FXP_ERR(ctx, FXP_EMISMATCH, "%s: the optimizer is %s, the model's is %s", path, buf,
                     optim_kind_name(c->optim));
    if (rc >= 0) rc = attr_int64(ctx, g, "steps", steps, path);
    if (rc >= 0 && *steps < 0) rc = FXP_ERR(ctx, FXP_EFORMAT, "%s: negative optimizer step count", path);
    H5Gclose(g);
    if (rc < 0) return rc;
    const int n = fxp_params_count(c->params);
    int n_tr = 0;
    for (int i = 0; i < n; i++) {
        const fxp_param *p = fxp_params_at(c->params, i);
        if (fxp_param_kind(p) != FXP_PARAM_TRAINABLE) continue;
        const fxp_tensor want = fxp_param_value(p);
        n_tr++;
        snprintf(name, sizeof name, "optimizer/m/%s", fxp_param_name(p));
        if ((rc = read_floats(ctx, fid, name, &want, m + fxp_param_offset(p), checksummed, path)) < 0) return rc;
        snprintf(name, sizeof name, "optimizer/v/%s", fxp_param_name(p));
        if ((rc = read_floats(ctx, fid, name, &want, v + fxp_param_offset(p), checksummed, path)) < 0) return rc;
    }
    rc = check_no_extra(ctx, fid, "optimizer/m", c->params, FXP_PARAM_TRAINABLE, n_tr, path);
    if (rc >= 0) rc = check_no_extra(ctx, fid, "optimizer/v", c->params, FXP_PARAM_TRAINABLE, n_tr, path);
    return rc;
}

static int load_rng(fxp_ctx *ctx, hid_t fid, const char *rng_name, fxp_rng *r, int checksummed,
                    const char *path)
{
    char name[NAME_MAX_LEN];
    int dims[FXP_MAX_DIMS];
    uint64_t st[2];
    snprintf(name, sizeof name, "rng/%s", rng_name);
    if (!fxp__h5_exists(fid, name))
        return FXP_ERR(ctx, FXP_EMISMATCH, "%s has no RNG state /%s", path, name);
    hid_t d = H5Dopen2(fid, name, H5P_DEFAULT), t = d >= 0 ? H5Dget_type(d) : -1;
    int rc = FXP_OK, rd;
    if (d < 0 || t < 0 || H5Tget_class(t) != H5T_INTEGER || fxp__h5_shape(d, dims) != 1 ||
        dims[0] != 2)
        rc = FXP_ERR(ctx, FXP_EFORMAT, "%s: /%s is not a readable uint64 [2] RNG state", path, name);
    else if (checksummed && !fxp__h5_checksummed(d))
        rc = FXP_ERR(ctx, FXP_EFORMAT, "%s: dataset %s has no checksum (every dataset of a "
                     "version 2 checkpoint has one)", path, name);
    else if ((rd = fxp__h5_read_all(d, H5T_NATIVE_UINT64, st)) < 0)
        rc = read_error(ctx, rd, path, name);
    if (t >= 0) H5Tclose(t);
    if (d >= 0) H5Dclose(d);
    if (rc >= 0) {
        r->seed = st[0];
        r->counter = st[1];
    }
    return rc;
}

static int load(fxp_ctx *ctx, const char *path, const fxp_checkpoint *c)
{
    hid_t fid;
    int rc = fxp__h5_open(ctx, path, &fid);
    if (rc < 0) return rc;
    char name[NAME_MAX_LEN];
    const size_t nt = fxp_params_size(c->params, FXP_PARAM_TRAINABLE),
                 ns = fxp_params_size(c->params, FXP_PARAM_STATE);
    const size_t no = c->optim ? fxp_optim_state_size(c->optim) : 0;
    float *tr = malloc((nt ? nt : 1) * sizeof(float)), *st = malloc((ns ? ns : 1) * sizeof(float));
    float *m = malloc((no ? no : 1) * sizeof(float)), *v = malloc((no ? no : 1) * sizeof(float));
    fxp_rng *rngs = malloc((size_t)(c->n_rngs ? c->n_rngs : 1) * sizeof *rngs);
    int64_t steps = 0;
    if (!tr || !st || !m || !v || !rngs) {
        rc = FXP_ERR(ctx, FXP_ENOMEM, "cannot allocate %zu floats to read %s into", nt + ns + 2 * no, path);
        goto out;
    }
    int version = 0;
    FXP_TRY(check_format(ctx, fid, path, &version));
    const int sums = version >= 2;
    /* every model entry, with its shape, into the temporaries */
    const int n = fxp_params_count(c->params);
    int n_tr = 0, n_st = 0;
    for (int i = 0; i < n; i++) {
        const fxp_param *p = fxp_params_at(c->params, i);
        const fxp_tensor want = fxp_param_value(p);
        const int trainable = fxp_param_kind(p) == FXP_PARAM_TRAINABLE;
        snprintf(name, sizeof name, "%s/%s", section(p), fxp_param_name(p));
        FXP_TRY(read_floats(ctx, fid, name, &want, (trainable ? tr : st) + fxp_param_offset(p), sums,
                            path));
        n_tr += trainable;
        n_st += !trainable;
    }
    FXP_TRY(check_no_extra(ctx, fid, "params", c->params, FXP_PARAM_TRAINABLE, n_tr, path));
    FXP_TRY(check_no_extra(ctx, fid, "state", c->params, FXP_PARAM_STATE, n_st, path));
    if (c->optim) FXP_TRY(load_optimizer(ctx, fid, c, m, v, &steps, sums, path));
    for (int k = 0; k < c->n_rngs; k++) FXP_TRY(load_rng(ctx, fid, c->rng_names[k], &rngs[k], sums, path));
    /* everything read and checked: commit */
    /* (a model may have no state at all: then its block is NULL) */
    if (nt) memcpy(fxp_params_data(c->params, FXP_PARAM_TRAINABLE), tr, nt * sizeof(float));
    if (ns) memcpy(fxp_params_data(c->params, FXP_PARAM_STATE), st, ns * sizeof(float));
    if (c->optim) {
        if (no) {
            memcpy(fxp_optim_m(c->optim), m, no * sizeof(float));
            memcpy(fxp_optim_v(c->optim), v, no * sizeof(float));
        }
        FXP_TRY(fxp_optim_set_steps(c->optim, steps));
    }
    for (int k = 0; k < c->n_rngs; k++) *c->rngs[k] = rngs[k];
out:
    free(rngs);
    free(v);
    free(m);
    free(st);
    free(tr);
    H5Fclose(fid);
    return rc;
}

int fxp_checkpoint_load(fxp_ctx *ctx, const char *path, const fxp_checkpoint *c)
{
    FXP_API_SCOPE();
    if (!path || !*path || !c || !c->params || c->n_rngs < 0 || (c->n_rngs && (!c->rng_names || !c->rngs)))
        return FXP_ERR(ctx, FXP_EINVAL, "bad arguments: need a path, params, and arrays for "
                       "n_rngs = %d RNGs", c ? c->n_rngs : 0);
    for (int k = 0; k < c->n_rngs; k++)
        if (!c->rngs[k] || !valid_name(c->rng_names[k]))
            return FXP_ERR(ctx, FXP_EINVAL, "RNG %d: invalid name \"%s\" or NULL state", k,
                           c->rng_names[k] ? c->rng_names[k] : "(null)");
    if (c->optim && fxp_optim_state_size(c->optim) != fxp_params_size(c->params, FXP_PARAM_TRAINABLE))
        return FXP_ERR(ctx, FXP_EINVAL, "the optimizer does not belong to this parameter set");
    int rc;
    H5E_BEGIN_TRY { rc = load(ctx, path, c); } H5E_END_TRY;
    return rc;
}

/* ---- configuration ------------------------------------------------------------------------ */

static int open_config(fxp_ctx *ctx, const char *path, hid_t *fid, hid_t *g)
{
    int rc = fxp__h5_open(ctx, path, fid);
    if (rc < 0) return rc;
    if ((rc = check_format(ctx, *fid, path, NULL)) < 0) {
        H5Fclose(*fid);
        return rc;
    }
    *g = fxp__h5_exists(*fid, "config") ? H5Gopen2(*fid, "config", H5P_DEFAULT) : -1;
    if (*g < 0) {
        H5Fclose(*fid);
        return FXP_ERR(ctx, FXP_EFORMAT, "%s has no readable /config group", path);
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
    FXP_API_SCOPE();
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
    if (s->rc == FXP_EINVAL)
        s->rc = FXP_ERR(s->ctx, FXP_EFORMAT, "%s: /config value of \"%s\" is longer than %zu bytes",
                        s->path, name, sizeof value - 1);
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
    FXP_API_SCOPE();
    if (!path || !fn) return FXP_ERR(ctx, FXP_EINVAL, "bad arguments");
    int rc;
    H5E_BEGIN_TRY { rc = config_each(ctx, path, fn, user); } H5E_END_TRY;
    return rc;
}
