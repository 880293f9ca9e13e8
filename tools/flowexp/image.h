/* flowexp's image-model support (image.c): checkpoints of image runs and the
 * train / eval / sample subcommands for image models. */
#ifndef FLOWEXP_TOOL_IMAGE_H
#define FLOWEXP_TOOL_IMAGE_H

#include "tool.h"
#include "flowexp/imagedata.h"

/* An image model with its parameters and configuration. */
typedef struct image_run {
    fxp_image_model_config cfg;
    fxp_params *ps;
    fxp_image_model *m;
} image_run;

/* What a training run keeps beside the model and the optimizer (stored as
 * run.* keys in the checkpoint's /config). */
typedef struct image_state {
    unsigned long long seed;
    long long step;
    double best_valid;      /* best validation bits/dim (INFINITY: none) */
    long long best_step;
    double train_seconds;
    char dataset[64];
    int eval_every;         /* part of the run: kept by --resume */
    int valid_n;            /* validation images (0: all) */
    double window_loss;     /* training loss summed since the last log line */
    long long window_n;
} image_state;

/* "flow-<mixing>" for the Table-1 flow, else the kind's name ("sylvester",
 * "resflow", ...): how the tool names a configuration in its messages. */
const char *image_model_label(const fxp_image_model_config *cfg, char *buf, size_t size);

/* Nonzero if name is an image model (a preset of imageflow.h). */
int image_is_model_name(const char *name);
/* Nonzero if the checkpoint's /config says family = image. */
int image_checkpoint_is_image(fxp_ctx *ctx, const char *path);

int image_build(fxp_ctx *ctx, const fxp_image_model_config *cfg, unsigned long long seed,
                image_run *r);
void image_free(image_run *r);
int image_save(fxp_ctx *ctx, const char *path, image_run *r, fxp_optim *opt,
               const image_state *st);
/* Configuration and run state of a checkpoint, every value validated. */
int image_read_config(fxp_ctx *ctx, const char *path, fxp_image_model_config *cfg,
                      image_state *st);
int image_load(fxp_ctx *ctx, const char *path, image_run *r, fxp_optim *opt);
/* One split of an image dataset file, checked against cfg's shape (cfg may be NULL). */
int image_read_split(fxp_ctx *ctx, const char *path, const char *split,
                     const fxp_image_model_config *cfg, fxp_images *out);
/* fxp_image_model_config_set for tool_keys (config files). */
int image_set_key(void *cfg, const char *key, const char *value);

int cmd_train_image(int argc, char **argv);
int cmd_eval_image(int argc, char **argv);
int cmd_sample_image(int argc, char **argv);
/* flowexp info for an image checkpoint (text or JSON). */
int image_info(const char *path, int json);
/* Both model families. */
int cmd_verify(int argc, char **argv);
int cmd_bench(int argc, char **argv);

#endif
