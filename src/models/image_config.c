/* Configuration of the image models (imageflow.h): presets, keys, checks. */
#include <stdio.h>
#include <string.h>

#include "models/keys.h"
#include "flowexp/imageflow.h"

static const char *const kind_names[] = { "flow",     "sylvester", "sylvester-nobasis",
                                          "sylvester-nogen", "resflow", "coupling" };
static const char *const deq_names[] = { "uniform", "variational" };
static const char *const opt_names[] = { "adamax", "adam" };
static const char *const mixing_names[] = { "1x1",      "lu",      "householder", "emerging",
                                            "woodbury", "convexp", "convexp-circular" };
#define N_MIXINGS (int)(sizeof mixing_names / sizeof mixing_names[0])

#define OFF(f) offsetof(fxp_image_model_config, f)
#define NUM(f, t, lo, hi, help) { #f, t, OFF(f), lo, hi, NULL, 0, 0, help }
#define ENUM(f, names, help) { #f, FXP__K_ENUM, OFF(f), 0, 0, names, \
                               (int)(sizeof names / sizeof names[0]), 0, help }
static const fxp__key keys[] = {
    ENUM(kind, kind_names,
         "model family: flow (Table 1: couplings and mixing layers), sylvester, "
         "sylvester-nobasis, sylvester-nogen, resflow, coupling (Tables 2-3)"),
    { "mixing", FXP__K_STRING, OFF(mixing), 0, 0, mixing_names, N_MIXINGS, FXP_MIXING_NAME_MAX,
      "mixing layer between couplings (kind flow; the dequantizer's for every kind): 1x1, lu, "
      "householder, emerging, woodbury, convexp, convexp-circular" },
    NUM(channels, FXP__K_INT, 1, 4096, "image channels C (set from the data by flowexp train)"),
    NUM(height, FXP__K_INT, 2, 1 << 14, "image height H (set from the data)"),
    NUM(width, FXP__K_INT, 2, 1 << 14, "image width W (set from the data)"),
    NUM(levels, FXP__K_INT, 1, 8, "levels of the multi-scale flow"),
    NUM(subflows, FXP__K_INT, 1, 1024, "[coupling, mixing] pairs per level"),
    NUM(splitprior, FXP__K_INT, 0, 1, "1: factor out half the channels between levels"),
    NUM(depth, FXP__K_INT, 1, 256, "dense layers per DenseNet of a coupling"),
    NUM(growth, FXP__K_INT, 1, 1 << 14, "DenseNet growth (channels added per dense layer)"),
    NUM(intermediate, FXP__K_INT, 1, 1 << 14, "width of the coupling's residual DenseNet block"),
    NUM(gated, FXP__K_INT, 0, 1, "1: gated final convolution in each DenseNet"),
    NUM(n_densenets, FXP__K_INT, 1, 64, "residual DenseNets per coupling conditioner"),
    ENUM(dequantization, deq_names, "dequantization: uniform or variational (a conditional flow)"),
    NUM(deq_subflows, FXP__K_INT, 1, 1024, "couplings of the variational dequantizer's flow"),
    NUM(context_channels, FXP__K_INT, 1, 1 << 14, "channels of the dequantizer's context"),
    NUM(context_depth, FXP__K_INT, 1, 256, "depth of the context network's DenseNets"),
    NUM(context_growth, FXP__K_INT, 1, 1 << 14, "growth of the context network's DenseNets"),
    NUM(convexp_coeff, FXP__K_FLOAT, 1e-3, 100,
        "spectral-norm bound of the convexp kernel (and of Sylvester's exp(M))"),
    NUM(convexp_sn_eps, FXP__K_FLOAT, 0, 1,
        "added to the spectral rescaling factors (convexp, every Sylvester one; 1e-5: as theirs)"),
    NUM(convexp_terms_train, FXP__K_INT, 1, 1000,
        "convexp (and Sylvester exp(M)) series terms in training"),
    NUM(convexp_terms_eval, FXP__K_INT, 1, 1000, "... in evaluation and sampling"),
    NUM(convexp_power_steps, FXP__K_INT, 0, 1000,
        "power iterations per training forward (convexp, Sylvester)"),
    NUM(reflections, FXP__K_INT, 0, 1 << 14,
        "householder mixing and Sylvester Q: reflections (0: channels)"),
    NUM(woodbury_rank, FXP__K_INT, 1, 1 << 14, "woodbury mixing: rank of the spatial update"),
    NUM(normalize_shift, FXP__K_FLOAT, -1e6, 1e6, "first layer: v -> (v - shift) / scale"),
    NUM(normalize_scale, FXP__K_FLOAT, 1e-6, 1e6, "first layer's scale"),
    NUM(hidden, FXP__K_INT, 1, 1 << 16,
        "Tables 2-3 models: width of f_AR, of the residual blocks and of the coupling networks"),
    NUM(split_level0, FXP__K_INT, 0, 1,
        "Tables 2-3 models: 1 = split after level 0 too, 0 = from level 1 (coupling quirk)"),
    NUM(lipschitz, FXP__K_FLOAT, 1e-3, 100,
        "Sylvester: spectral-norm bound of f_AR's convolutions"),
    NUM(sylvester_atol, FXP__K_DOUBLE, 1e-12, 1, "Sylvester: fixed-point inverse tolerance"),
    NUM(sylvester_max_iter, FXP__K_INT, 0, 1 << 30,
        "Sylvester: fixed-point iterations at most (0: C H W, at least 100)"),
    NUM(resflow_coeff, FXP__K_FLOAT, 1e-3, 0.999999,
        "resflow: Lipschitz bound of each convolution"),
    NUM(resflow_sn_atol, FXP__K_DOUBLE, 0, 1, "resflow: power-iteration absolute tolerance"),
    NUM(resflow_sn_rtol, FXP__K_DOUBLE, 0, 1, "resflow: power-iteration relative tolerance"),
    NUM(resflow_sn_max_iter, FXP__K_INT, 1, 100000, "resflow: power iterations at most"),
    NUM(resflow_lambda, FXP__K_DOUBLE, 1e-3, 30, "resflow: Poisson rate of the Russian roulette"),
    NUM(resflow_exact_train, FXP__K_INT, 1, 1000, "resflow: exact series terms in training"),
    NUM(resflow_exact_eval, FXP__K_INT, 1, 1000, "resflow: exact series terms in evaluation"),
    NUM(resflow_inverse_atol, FXP__K_DOUBLE, 1e-12, 1, "resflow: fixed-point inverse atol"),
    NUM(resflow_inverse_rtol, FXP__K_DOUBLE, 0, 1, "resflow: fixed-point inverse rtol"),
    NUM(resflow_inverse_max_iter, FXP__K_INT, 1, 1 << 30,
        "resflow: fixed-point iterations at most"),
    NUM(batch, FXP__K_INT, 1, 1 << 20, "images per training step"),
    NUM(epochs, FXP__K_INT, 1, 1 << 20, "passes over the training split (when train_steps = 0)"),
    NUM(train_steps, FXP__K_INT, 0, 1 << 30, "> 0: optimizer steps, overriding epochs"),
    ENUM(optimizer, opt_names, "optimizer: adamax (Table 1) or adam"),
    NUM(lr, FXP__K_DOUBLE, 1e-12, 10, "learning rate"),
    NUM(beta1, FXP__K_DOUBLE, 0, 0.999999, "first-moment decay"),
    NUM(beta2, FXP__K_DOUBLE, 0, 0.999999, "second-moment (or infinity-norm) decay"),
    NUM(eps, FXP__K_DOUBLE, 1e-16, 1, "optimizer epsilon"),
    NUM(weight_decay, FXP__K_DOUBLE, 0, 10, "L2 weight decay added to the gradient"),
    NUM(clip_norm, FXP__K_DOUBLE, 0, 1e12, "gradient-norm clipping (0: off)"),
    NUM(warmup, FXP__K_INT, 0, 1 << 20, "warm-up epochs (0: none)"),
    NUM(warmup_quadratic, FXP__K_INT, 0, 1, "1: quadratic warm-up, 0: linear"),
    NUM(lr_decay, FXP__K_DOUBLE, 1e-6, 1, "learning-rate factor per epoch"),
    NUM(augment, FXP__K_INT, 0, 1, "1: random flips and shifts of training images (§12)"),
    NUM(eval_batch, FXP__K_INT, 1, 1 << 20, "(image, sample) rows per evaluation forward"),
};
#undef NUM
#undef ENUM
#undef OFF
enum { N_KEYS = (int)(sizeof keys / sizeof keys[0]) };

static const char *const presets[] = { "flow-1x1",      "flow-lu",        "flow-householder",
                                       "flow-emerging", "flow-woodbury",  "flow-convexp",
                                       "sylvester",     "sylvester-nobasis", "sylvester-nogen",
                                       "resflow",       "resflow-half",   "coupling-flow" };
#define N_PRESETS (int)(sizeof presets / sizeof presets[0])
enum { N_FLOW_PRESETS = 6 };

const char *fxp_image_model_preset_name(int i) { return i >= 0 && i < N_PRESETS ? presets[i] : NULL; }

/* Settings every preset shares (the Table-1 model's), and the Tables 2-3
 * models' own keys at the authors' values (unused by kind flow). */
static void common_defaults(fxp_image_model_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->kind = FXP_IMAGE_FLOW;
    snprintf(cfg->mixing, sizeof cfg->mixing, "1x1");
    cfg->channels = 3;
    cfg->height = cfg->width = 32;
    cfg->levels = 2;
    cfg->subflows = 10;
    cfg->splitprior = 1;
    cfg->depth = 8;
    cfg->growth = 64;
    cfg->intermediate = 64;
    cfg->gated = 1;
    cfg->n_densenets = 1;
    cfg->dequantization = FXP_DEQUANT_VARIATIONAL;
    cfg->deq_subflows = 4;
    cfg->context_channels = 32;
    cfg->context_depth = 4;
    cfg->context_growth = 32;
    cfg->convexp_coeff = 0.9f; /* the paper's text; the authors' code defaults to 0.95 */
    cfg->convexp_terms_train = 6;
    cfg->convexp_terms_eval = 13;
    cfg->convexp_power_steps = 1;
    cfg->reflections = 0;
    cfg->woodbury_rank = 24;
    cfg->normalize_shift = 128;
    cfg->normalize_scale = 256;
    cfg->hidden = 528;
    cfg->split_level0 = 1;
    cfg->lipschitz = 1.5f;
    cfg->sylvester_atol = 1e-4;
    cfg->sylvester_max_iter = 0;
    cfg->resflow_coeff = 0.98f;
    cfg->resflow_sn_atol = 1e-3;
    cfg->resflow_sn_rtol = 1e-3;
    cfg->resflow_sn_max_iter = 200;
    cfg->resflow_lambda = 2;
    cfg->resflow_exact_train = 2;
    cfg->resflow_exact_eval = 20;
    cfg->resflow_inverse_atol = 1e-5;
    cfg->resflow_inverse_rtol = 1e-5;
    cfg->resflow_inverse_max_iter = 1000;
    cfg->batch = 256;
    cfg->epochs = 1000;
    cfg->train_steps = 0;
    cfg->optimizer = FXP_OPT_ADAMAX;
    cfg->lr = 1e-3;
    cfg->beta1 = 0.9;
    cfg->beta2 = 0.999;
    cfg->eps = 1e-7;
    cfg->weight_decay = 0;
    cfg->clip_norm = 0;
    cfg->warmup = 10;
    cfg->warmup_quadratic = 0;
    cfg->lr_decay = 0.995;
    cfg->augment = 1;
    cfg->eval_batch = 256;
}

int fxp_image_model_config_preset(fxp_image_model_config *cfg, const char *name)
{
    int p = -1;
    for (int i = 0; name && i < N_PRESETS; i++)
        if (strcmp(presets[i], name) == 0) p = i;
    if (!cfg || p < 0)
        return FXP_ERR(NULL, FXP_EINVAL,
                       "unknown image model \"%s\" (flow-1x1, flow-lu, flow-householder, "
                       "flow-emerging, flow-woodbury, flow-convexp, sylvester, sylvester-nobasis, "
                       "sylvester-nogen, resflow, resflow-half, coupling-flow)",
                       name ? name : "(null)");
    common_defaults(cfg);
    if (p < N_FLOW_PRESETS) {
        snprintf(cfg->mixing, sizeof cfg->mixing, "%s", name + 5);
        cfg->growth = p == 0 ? 64 : 63; /* the authors' README: 64 for 1x1, 63 for the others */
        return FXP_OK;
    }
    /* Tables 2-3 (experiment_sylvester_network.py and its README commands) */
    static const fxp_image_model_kind kinds[] = {
        FXP_IMAGE_SYLVESTER, FXP_IMAGE_SYLVESTER_NOBASIS, FXP_IMAGE_SYLVESTER_NOGEN,
        FXP_IMAGE_RESFLOW,   FXP_IMAGE_RESFLOW,           FXP_IMAGE_COUPLING };
    cfg->kind = kinds[p - N_FLOW_PRESETS];
    cfg->levels = 3;
    cfg->subflows = !strcmp(name, "resflow-half") ? 8 : 16;
    cfg->gated = 0;
    cfg->intermediate =
        cfg->kind == FXP_IMAGE_RESFLOW || cfg->kind == FXP_IMAGE_COUPLING ? 528 : 64;
    cfg->convexp_coeff = 0.95f; /* not passed by the README: the code's default */
    cfg->convexp_terms_train = 9;
    cfg->convexp_terms_eval = 20;
    cfg->split_level0 = cfg->kind != FXP_IMAGE_COUPLING && cfg->kind != FXP_IMAGE_SYLVESTER_NOGEN;
    if (cfg->kind == FXP_IMAGE_SYLVESTER_NOBASIS) cfg->sylvester_atol = 1e-6;
    if (cfg->kind == FXP_IMAGE_SYLVESTER_NOGEN)
        cfg->convexp_terms_train = cfg->convexp_terms_eval = 10;
    cfg->optimizer = FXP_OPT_ADAM;
    cfg->beta2 = 0.99;
    cfg->warmup_quadratic = 1;
    cfg->clip_norm = 1.0;
    return FXP_OK;
}

int fxp_image_model_config_n_keys(void) { return N_KEYS; }
const char *fxp_image_model_config_key(int i) { return i >= 0 && i < N_KEYS ? keys[i].key : NULL; }
const char *fxp_image_model_config_key_help(int i)
{
    return i >= 0 && i < N_KEYS ? keys[i].help : NULL;
}

int fxp_image_model_config_set(fxp_image_model_config *cfg, const char *key, const char *value)
{
    FXP_API_SCOPE();
    return fxp__keys_set(__func__, keys, N_KEYS, cfg, "image model", key, value);
}

int fxp_image_model_config_get(const fxp_image_model_config *cfg, const char *key, char *buf,
                               size_t size)
{
    FXP_API_SCOPE();
    return fxp__keys_get(__func__, keys, N_KEYS, cfg, "image model", key, buf, size);
}

/* The prior's levels: channel count of each level and whether a split
 * prior follows it (the same walk as the model's construction). */
static int split_after(const fxp_image_model_config *c, int l)
{
    if (l >= c->levels - 1 || !c->splitprior) return 0;
    return c->kind == FXP_IMAGE_FLOW || l >= 1 || c->split_level0;
}

int fxp_image_model_config_validate(fxp_ctx *ctx, const fxp_image_model_config *cfg)
{
    FXP_API_SCOPE();
    int rc = fxp__keys_validate(__func__, ctx, keys, N_KEYS, cfg);
    if (rc < 0) return rc;
    /* squeezes: one before level 0, then one after each split (kind flow)
     * or after every level but the last (the Tables 2-3 models) */
    int squeezes = 1;
    for (int l = 0; l < cfg->levels - 1; l++)
        squeezes += cfg->kind != FXP_IMAGE_FLOW || split_after(cfg, l);
    const int div = 1 << squeezes;
    if (cfg->height % div || cfg->width % div)
        return FXP_ERR(ctx, FXP_EINVAL,
                       "an image of %dx%d cannot be squeezed %d times (levels %d, splitprior %d): "
                       "height and width must be multiples of %d",
                       cfg->height, cfg->width, squeezes, cfg->levels, cfg->splitprior, div);
    /* each split halves the channels, each squeeze multiplies them by 4 */
    int c = 4 * cfg->channels;
    for (int l = 0; l < cfg->levels; l++) {
        const int gen =
            cfg->kind == FXP_IMAGE_SYLVESTER || cfg->kind == FXP_IMAGE_SYLVESTER_NOBASIS;
        if (gen && cfg->hidden % c && c % cfg->hidden)
            return FXP_ERR(ctx, FXP_EINVAL,
                           "level %d has %d channels and f_AR %d hidden units: one must divide "
                           "the other (the autoregressive masks' channel groups)",
                           l, c, cfg->hidden);
        if (split_after(cfg, l)) {
            if (c % 2)
                return FXP_ERR(ctx, FXP_EINVAL, "level %d has %d channels: a split needs an even "
                                                "count", l, c);
            c /= 2;
        }
        if (cfg->kind == FXP_IMAGE_COUPLING && c % 2)
            return FXP_ERR(ctx, FXP_EINVAL, "level %d has %d channels: a coupling needs an even "
                                            "count", l, c);
        if (l < cfg->levels - 1 && (cfg->kind != FXP_IMAGE_FLOW || split_after(cfg, l))) c *= 4;
    }
    if (!strcmp(cfg->mixing, "emerging") && (cfg->height < 4 || cfg->width < 4))
        return FXP_ERR(ctx, FXP_EINVAL, "emerging mixing needs images of at least 4x4");
    return FXP_OK;
}
