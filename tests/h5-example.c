/* Helper for check-h5py.sh: writes a checkpoint and a dataset file with known
 * contents for h5py to read, and reads a graph split of a file h5py wrote.
 *   h5-example write DIR         -> DIR/ckpt.h5, DIR/data.h5
 *   h5-example read FILE SPLIT   -> "shape A B C sum S" on stdout, or the
 *                                   library's message on stderr and exit 1 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowexp.h"

static int fail(const char *what)
{
    fprintf(stderr, "h5-example: %s: %s\n", what, fxp_last_error());
    return 1;
}

/* Parameters with values 1, 2, 3, ... in registration order; an Adam
 * optimizer with m_i = i / 2, v_i = i / 4 and 5 steps; RNG "data" = (42, 7);
 * three config entries. */
static int write_files(const char *dir)
{
    char path[4096];
    fxp_ctx *ctx = NULL;
    fxp_params *ps = NULL;
    fxp_optim *o = NULL;
    int rc = 1;
    const int s22[2] = { 2, 2 }, s3[1] = { 3 }, s1[1] = { 1 };
    if (fxp_ctx_new(&ctx) < 0 || fxp_ctx_set_threads(ctx, 1) < 0 || fxp_params_new(ctx, &ps) < 0 ||
        fxp_params_add(ps, "flow/0/gce/theta0", FXP_PARAM_TRAINABLE, 2, s22, NULL) < 0 ||
        fxp_params_add(ps, "flow/1/coupling/b", FXP_PARAM_TRAINABLE, 1, s3, NULL) < 0 ||
        fxp_params_add(ps, "flow/0/actnorm/initialized", FXP_PARAM_STATE, 1, s1, NULL) < 0) {
        fail("params");
        goto done;
    }
    float *tr = fxp_params_data(ps, FXP_PARAM_TRAINABLE);
    for (size_t i = 0; i < fxp_params_size(ps, FXP_PARAM_TRAINABLE); i++) tr[i] = (float)(i + 1);
    fxp_params_data(ps, FXP_PARAM_STATE)[0] = 1.0f;
    fxp_optim_config oc;
    fxp_optim_config_default(&oc, FXP_OPTIM_ADAM);
    if (fxp_optim_new(ctx, ps, &oc, &o) < 0 || fxp_optim_set_steps(o, 5) < 0) {
        fail("optimizer");
        goto done;
    }
    for (size_t i = 0; i < fxp_optim_state_size(o); i++) {
        fxp_optim_m(o)[i] = 0.5f * (float)i;
        fxp_optim_v(o)[i] = 0.25f * (float)i;
    }
    fxp_rng r = { 42, 7 };
    fxp_rng *rngs[1] = { &r };
    const char *rng_names[1] = { "data" };
    const char *keys[3] = { "model", "hidden", "dataset" }, *values[3] = { "gnf-gce", "64", "mog9" };
    const fxp_checkpoint c = { ps, o, 1, rng_names, rngs, 3, keys, values };
    snprintf(path, sizeof path, "%s/ckpt.h5", dir);
    if (fxp_checkpoint_save(ctx, path, &c) < 0) {
        fail("checkpoint");
        goto done;
    }
    const fxp_mog_dataset_config dc = { FXP_MOG9, 7, 40, 10, 20, 500 };
    snprintf(path, sizeof path, "%s/data.h5", dir);
    if (fxp_mog_dataset_write(ctx, path, &dc, NULL, NULL) < 0) {
        fail("dataset");
        goto done;
    }
    rc = 0;
done:
    fxp_optim_free(o);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
    return rc;
}

static int read_split(const char *path, const char *split)
{
    fxp_ctx *ctx = NULL;
    fxp_tensor t;
    if (fxp_ctx_new(&ctx) < 0) return fail("context");
    if (fxp_dataset_read(ctx, path, split, &t) < 0) {
        fxp_ctx_free(ctx);
        return fail("read");
    }
    double sum = 0;
    for (int64_t i = 0; i < fxp_tensor_numel(&t); i++) sum += t.data[i];
    printf("shape %d %d %d sum %.17g\n", t.shape[0], t.shape[1], t.shape[2], sum);
    fxp_tensor_release(&t);
    fxp_ctx_free(ctx);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "write")) return write_files(argv[2]);
    if (argc == 4 && !strcmp(argv[1], "read")) return read_split(argv[2], argv[3]);
    fprintf(stderr, "usage: h5-example write DIR | h5-example read FILE SPLIT\n");
    return 2;
}
