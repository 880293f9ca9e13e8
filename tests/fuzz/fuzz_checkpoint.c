/* Fuzz target: fxp_checkpoint_load (parameters of both kinds, an Adam
 * optimizer, an RNG stream) and the /config readers on arbitrary bytes.
 * Either a call fails with a message (a failed load leaving its targets
 * untouched) or it succeeds; HDF5 must not crash and no handle may stay
 * open. */
#include <hdf5.h>

#include "fuzz_common.h"

typedef struct target {
    fxp_params *ps;
    fxp_optim *opt;
    fxp_rng rng;
} target;

/* The model of the seed corpus (make_corpus.c writes the same one). */
int fxp_fuzz_checkpoint_model(fxp_ctx *ctx, fxp_params **ps, fxp_optim **opt);
int fxp_fuzz_checkpoint_model(fxp_ctx *ctx, fxp_params **ps, fxp_optim **opt)
{
    const int w[2] = { 3, 4 }, b[1] = { 4 }, t[2] = { 2, 2 }, u[1] = { 5 }, s[3] = { 1, 2, 2 };
    int rc;
    if ((rc = fxp_params_new(ctx, ps)) < 0 ||
        (rc = fxp_params_add(*ps, "flow/0/coupling/w", FXP_PARAM_TRAINABLE, 2, w, NULL)) < 0 ||
        (rc = fxp_params_add(*ps, "flow/0/coupling/b", FXP_PARAM_TRAINABLE, 1, b, NULL)) < 0 ||
        (rc = fxp_params_add(*ps, "flow/1/gce/theta0", FXP_PARAM_TRAINABLE, 2, t, NULL)) < 0 ||
        (rc = fxp_params_add(*ps, "flow/1/gce/u", FXP_PARAM_STATE, 1, u, NULL)) < 0 ||
        (rc = fxp_params_add(*ps, "flow/2/actnorm/log_scale", FXP_PARAM_TRAINABLE, 3, s, NULL)) < 0)
        return rc;
    fxp_optim_config oc;
    fxp_optim_config_default(&oc, FXP_OPTIM_ADAM);
    return fxp_optim_new(ctx, *ps, &oc, opt);
}

static int visit(void *user, const char *key, const char *value)
{
    size_t *n = user;
    *n += strlen(key) + strlen(value);
    return 0;
}

/* One file opening per input (HDF5 takes about 1 ms to open one), the call
 * chosen by the input's size modulo 4. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static target tg;
    fxp_ctx *ctx = fuzz_ctx();
    if (!tg.ps && fxp_fuzz_checkpoint_model(ctx, &tg.ps, &tg.opt) < 0) abort();
    const char *path = fuzz_file(data, size);
    const size_t nt = fxp_params_size(tg.ps, FXP_PARAM_TRAINABLE);
    const float before = 12345.0f;
    fxp_params_data(tg.ps, FXP_PARAM_TRAINABLE)[nt - 1] = before;
    const int64_t steps = fxp_optim_steps(tg.opt);
    fxp_rng *rngs[1] = { &tg.rng };
    const char *names[1] = { "data" };
    char buf[256];
    size_t total = 0;
    int rc;
    switch (size % 4) {
    case 0: /* everything: parameters, optimizer, RNG stream */
    case 1: {
        const fxp_checkpoint c = { tg.ps, tg.opt, 1, names, rngs, 0, NULL, NULL };
        rc = fxp_checkpoint_load(ctx, path, &c);
        fuzz_check_status(ctx, rc);
        /* a failed load leaves everything as it was */
        if (rc < 0 && (fxp_params_data(tg.ps, FXP_PARAM_TRAINABLE)[nt - 1] != before ||
                       fxp_optim_steps(tg.opt) != steps))
            abort();
        break;
    }
    case 2:
        rc = fxp_checkpoint_config(ctx, path, "kind", buf, sizeof buf);
        fuzz_check_status(ctx, rc);
        if (rc == 0 && strlen(buf) >= sizeof buf) abort();
        break;
    default:
        fuzz_check_status(ctx, fxp_checkpoint_config_each(ctx, path, visit, &total));
        break;
    }
    if (H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) != 0) abort(); /* every handle closed */
    return 0;
}
