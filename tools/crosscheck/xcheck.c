/* fxp-crosscheck: the library's side of the cross-check against the
 * authors' PyTorch code (tools/crosscheck/authors_table1.py).
 *
 *   fxp-crosscheck CHECKPOINT INPUTS.h5 OUTPUTS.h5 [--exact-logdet]
 *
 * Builds the image model described by CHECKPOINT's /config, loads its
 * parameters, and for the arrays present in INPUTS.h5 writes to OUTPUTS.h5:
 *   v [n, C, H, W]                     -> log_p [n]: log p(v), nats
 *   x [n, C, H, W], noise [n, ...]     -> elbo [n], log_q [n] (the given
 *                                         dequantisation noise)
 *   top_eps [n, C', H', W'],
 *   split_eps_<k> [n, ...] (k in forward order)
 *                                      -> decoded [n, C, H, W]
 * all in evaluation mode.  --exact-logdet puts every residual block in exact
 * mode (residual.h), so that a residual flow's log-densities are
 * deterministic.  Exit 0 on success, 1 with a message otherwise. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowexp.h"

static fxp_image_model_config cfg;
static int config_rc;

static int visit(void *user, const char *key, const char *value)
{
    (void)user;
    if (!strcmp(key, "family") || !strncmp(key, "run.", 4)) return 0;
    if (fxp_image_model_config_set(&cfg, key, value) < 0) {
        config_rc = -1;
        return 1;
    }
    return 0;
}

/* Read `name` if the file has it (0), else leave *out empty (1); -1 on errors. */
static int read_opt(fxp_ctx *ctx, const char *path, const char *name, fxp_tensor *out)
{
    int rc = fxp_h5_read_array(ctx, path, name, out);
    if (rc == FXP_ENOTFOUND) return 1;
    return rc < 0 ? -1 : 0;
}

int main(int argc, char **argv)
{
    if (argc != 4 && (argc != 5 || strcmp(argv[4], "--exact-logdet"))) {
        fprintf(stderr, "usage: fxp-crosscheck CHECKPOINT INPUTS.h5 OUTPUTS.h5 [--exact-logdet]\n");
        return 2;
    }
    const char *ck = argv[1], *in = argv[2], *outp = argv[3];
    fxp_ctx *ctx = NULL;
    fxp_params *ps = NULL;
    fxp_image_model *m = NULL;
    fxp_tape *t = NULL;
    fxp_tensor v = { 0 }, x = { 0 }, noise = { 0 }, top = { 0 }, split[FXP_LATENTS_MAX];
    memset(split, 0, sizeof split);
    int n_split = 0, status = 1;
    fxp_rng rng;
    fxp_rng_seed(&rng, 0);
    const char *names[4];
    const fxp_tensor *arrays[4];
    fxp_tensor res[4];
    memset(res, 0, sizeof res);
    int n_out = 0;
    if (fxp_ctx_new(&ctx) < 0 || fxp_image_model_config_preset(&cfg, "flow-1x1") < 0) goto fail;
    if (fxp_checkpoint_config_each(ctx, ck, visit, NULL) < 0 || config_rc < 0) goto fail;
    if (fxp_params_new(ctx, &ps) < 0 || fxp_image_model_new(ctx, ps, &cfg, &rng, &m) < 0)
        goto fail;
    fxp_checkpoint c = { .params = ps };
    if (fxp_checkpoint_load(ctx, ck, &c) < 0) goto fail;
    if (argc == 5) {
        fxp_flow *pv = fxp_model_flow(fxp_image_model_prior(m));
        for (int i = 0; i < fxp_flow_seq_length(pv); i++)
            if (!strcmp(fxp_flow_kind(fxp_flow_seq_at(pv, i)), "resblock") &&
                fxp_resblock_set_logdet(fxp_flow_seq_at(pv, i), FXP_RESBLOCK_EXACT) < 0)
                goto fail;
    }
    if (fxp_tape_new(ctx, &t) < 0) goto fail;
    fxp_tape_set_grad_enabled(t, 0);
    int r;
    if ((r = read_opt(ctx, in, "v", &v)) < 0) goto fail;
    if (r == 0) {
        fxp_var *vv, *lp;
        if (fxp_tape_input(t, &vv, &v, 0) < 0 || fxp_image_model_log_density(m, t, 0, vv, &lp) < 0 ||
            fxp_tensor_alloc(ctx, &res[n_out], 1, lp->value.shape) < 0 ||
            fxp_tensor_copy(ctx, &res[n_out], &lp->value) < 0)
            goto fail;
        names[n_out++] = "log_p";
    }
    if ((r = read_opt(ctx, in, "x", &x)) < 0) goto fail;
    if (r == 0) {
        fxp_var *vx, *vn, *el, *lq;
        if (read_opt(ctx, in, "noise", &noise) != 0 || fxp_tape_input(t, &vx, &x, 0) < 0 ||
            fxp_tape_input(t, &vn, &noise, 0) < 0 ||
            fxp_image_model_elbo_noise(m, t, 0, &rng, vx, vn, &el, &lq) < 0 ||
            fxp_tensor_alloc(ctx, &res[n_out], 1, el->value.shape) < 0 ||
            fxp_tensor_copy(ctx, &res[n_out], &el->value) < 0 ||
            fxp_tensor_alloc(ctx, &res[n_out + 1], 1, lq->value.shape) < 0 ||
            fxp_tensor_copy(ctx, &res[n_out + 1], &lq->value) < 0)
            goto fail;
        names[n_out++] = "elbo";
        names[n_out++] = "log_q";
    }
    if ((r = read_opt(ctx, in, "top_eps", &top)) < 0) goto fail;
    if (r == 0) {
        fxp_latents lat = { 0 };
        char nm[32];
        for (;; n_split++) {
            snprintf(nm, sizeof nm, "split_eps_%d", n_split);
            if (n_split >= FXP_LATENTS_MAX || (r = read_opt(ctx, in, nm, &split[n_split])) == 1)
                break;
            if (r < 0 || fxp_tape_input(t, &lat.z[n_split], &split[n_split], 0) < 0) goto fail;
        }
        lat.n = n_split;
        fxp_var *ve, *dec;
        if (fxp_tape_input(t, &ve, &top, 0) < 0 || fxp_image_model_decode(m, t, ve, &lat, &dec) < 0 ||
            fxp_tensor_alloc(ctx, &res[n_out], 4, dec->value.shape) < 0 ||
            fxp_tensor_copy(ctx, &res[n_out], &dec->value) < 0)
            goto fail;
        names[n_out++] = "decoded";
    }
    for (int i = 0; i < n_out; i++) arrays[i] = &res[i];
    if (fxp_h5_write_arrays(ctx, outp, n_out, names, arrays, 0, NULL) < 0) goto fail;
    status = 0;
fail:
    if (status) fprintf(stderr, "fxp-crosscheck: %s\n", fxp_last_error());
    for (int i = 0; i < 4; i++) fxp_tensor_release(&res[i]);
    for (int i = 0; i < n_split; i++) fxp_tensor_release(&split[i]);
    fxp_tensor_release(&v);
    fxp_tensor_release(&x);
    fxp_tensor_release(&noise);
    fxp_tensor_release(&top);
    fxp_tape_free(t);
    fxp_image_model_free(m);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
    return status;
}
