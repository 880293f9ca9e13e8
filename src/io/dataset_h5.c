/* Graph dataset files: writing a generated MoG dataset (three splits and
 * its description as root attributes) and reading one split of graphs from
 * any HDF5 file (see data.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowexp/data.h"
#include "io/h5util.h"

#define DATASET_FORMAT "libflowexp-dataset"
/* fxp_mog_dataset_write's entropy stream: seed + ENTROPY_SEED_OFFSET (the
 * same convention as the flowexp program, so both write the same numbers). */
#define ENTROPY_SEED_OFFSET 0x5eedull

static const char *const split_names[3] = { "train", "valid", "test" };

static int write_dataset(fxp_ctx *ctx, const char *path, const fxp_tensor *splits,
                         const fxp_attr *attrs, int n_attrs)
{
    fxp__h5_writer w;
    int rc = fxp__h5_create_tmp(ctx, path, &w);
    if (rc < 0) return rc;
    const hid_t fid = w.fid;
    for (int k = 0; k < 3 && rc >= 0; k++)
        rc = fxp__h5_write_floats(ctx, fid, split_names[k], 3, splits[k].shape, splits[k].data, path);
    for (int k = 0; k < n_attrs && rc >= 0; k++) rc = fxp__h5_attr_write(ctx, fid, &attrs[k], path);
    const int fin = fxp__h5_finish(ctx, &w, rc >= 0);
    return rc < 0 ? rc : fin;
}

int fxp_mog_dataset_write(fxp_ctx *ctx, const char *path, const fxp_mog_dataset_config *cfg,
                          double *entropy, double *std_error)
{
    FXP_API_SCOPE();
    if (!ctx || !path || !*path || !cfg)
        return FXP_ERR(ctx, FXP_EINVAL, "ctx, path and cfg are required");
    fxp_mog_info info;
    if (fxp_mog_get_info(cfg->kind, &info) < 0)
        return FXP_ERR(ctx, FXP_EINVAL, "unknown dataset kind %d", (int)cfg->kind);
    const int sizes[3] = { cfg->n_train, cfg->n_valid, cfg->n_test };
    if (sizes[0] < 1 || sizes[1] < 1 || sizes[2] < 1 || cfg->n_entropy < 2)
        return FXP_ERR(ctx, FXP_EINVAL, "need >= 1 graph per split and >= 2 entropy samples "
                       "(got train %d, valid %d, test %d, entropy %d)", sizes[0], sizes[1],
                       sizes[2], cfg->n_entropy);
    const int N = info.n_nodes;
    fxp_tensor splits[3] = { { 0 }, { 0 }, { 0 } };
    double h = 0, se = 0;
    int rc = FXP_OK;
    for (int k = 0; k < 3; k++) {
        const int shape[3] = { sizes[k], N, 2 };
        fxp_rng stream = fxp_mog_split_rng(cfg->seed, (fxp_data_split)k);
        FXP_TRY(fxp_tensor_alloc(ctx, &splits[k], 3, shape));
        FXP_TRY(fxp_mog_sample(ctx, cfg->kind, &stream, sizes[k], splits[k].data));
    }
    FXP_TRY(fxp_mog_entropy(ctx, cfg->kind, cfg->seed + ENTROPY_SEED_OFFSET, cfg->n_entropy, &h, &se));
    const fxp_attr attrs[] = {
        { "format", FXP_ATTR_STRING, DATASET_FORMAT, 0, 0 },
        { "dataset", FXP_ATTR_STRING, info.name, 0, 0 },
        { "seed", FXP_ATTR_INT, NULL, 0, (int64_t)cfg->seed },
        { "n_nodes", FXP_ATTR_INT, NULL, 0, N },
        { "n_train", FXP_ATTR_INT, NULL, 0, sizes[0] },
        { "n_valid", FXP_ATTR_INT, NULL, 0, sizes[1] },
        { "n_test", FXP_ATTR_INT, NULL, 0, sizes[2] },
        { "entropy_per_node", FXP_ATTR_DOUBLE, NULL, h, 0 },
        { "entropy_stderr", FXP_ATTR_DOUBLE, NULL, se, 0 },
        { "entropy_samples", FXP_ATTR_INT, NULL, 0, cfg->n_entropy },
        { "entropy_separated", FXP_ATTR_DOUBLE, NULL, fxp_mog_entropy_separated(cfg->kind), 0 },
        { "marginal_bound", FXP_ATTR_DOUBLE, NULL, fxp_mog_marginal_bound(cfg->kind), 0 },
        { "spacing", FXP_ATTR_DOUBLE, NULL, info.spacing, 0 },
        { "radius", FXP_ATTR_DOUBLE, NULL, info.radius, 0 },
        { "rotation", FXP_ATTR_DOUBLE, NULL, info.rotation, 0 },
        { "noise_std", FXP_ATTR_DOUBLE, NULL, info.noise_std, 0 },
        { "library_version", FXP_ATTR_STRING, fxp_version(), 0, 0 },
    };
    H5E_BEGIN_TRY {
        rc = write_dataset(ctx, path, splits, attrs, (int)(sizeof attrs / sizeof attrs[0]));
    } H5E_END_TRY;
    if (rc >= 0) {
        if (entropy) *entropy = h;
        if (std_error) *std_error = se;
    }
out:
    for (int k = 2; k >= 0; k--) fxp_tensor_release(&splits[k]);
    return rc;
}

/* Open, read the split as floats (no integers), require rank 3. */
static int read_split(fxp_ctx *ctx, const char *path, const char *split, fxp_tensor *out)
{
    hid_t fid;
    int rc = fxp__h5_open(ctx, path, &fid);
    if (rc < 0) return rc;
    rc = fxp__h5_read_tensor(ctx, fid, split, 0, out, path);
    if (rc >= 0 && out->ndim != 3) {
        char s[64];
        const int nd = out->ndim;
        fxp_tensor_shape_str(out, s, sizeof s);
        fxp_tensor_release(out);
        rc = FXP_ERR(ctx, FXP_EFORMAT, "%s: dataset \"%s\" has shape %s (rank %d); graphs must be "
                     "rank 3 [n_graphs, n_nodes, n_features]", path, split, s, nd);
    }
    H5Fclose(fid);
    return rc;
}

int fxp_dataset_read(fxp_ctx *ctx, const char *path, const char *split, fxp_tensor *out)
{
    FXP_API_SCOPE();
    if (out) memset(out, 0, sizeof *out);
    if (!path || !*path || !split || !*split || !out)
        return FXP_ERR(ctx, FXP_EINVAL, "path, split name and output are required");
    int rc;
    H5E_BEGIN_TRY { rc = read_split(ctx, path, split, out); } H5E_END_TRY;
    return rc;
}
