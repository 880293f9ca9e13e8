/* flowexp info: what a checkpoint holds — model kind and size, the whole
 * configuration, the dataset it was trained on, progress, the best
 * validation result and timings — as text or one JSON object.  The file is
 * validated as by eval (configuration, run state, and that the parameters
 * load into the model they describe). */
#include <math.h>
#include <string.h>

#include "args.h"
#include "image.h"
#include "store.h"
#include "text.h"

/* FNV-1a (64 bit) of the parameter values, trainable then state: equal
 * hashes mean bit-identical models (e.g. a resumed and an uninterrupted
 * run). */
unsigned long long tool_params_hash(const fxp_params *ps)
{
    unsigned long long h = 0xcbf29ce484222325ull;
    for (int kind = FXP_PARAM_TRAINABLE; kind <= FXP_PARAM_STATE; kind++) {
        const unsigned char *p = (const unsigned char *)fxp_params_data(ps, kind);
        const size_t n = fxp_params_size(ps, kind) * sizeof(float);
        for (size_t i = 0; p && i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    }
    return h;
}

static void json_config(const fxp_graph_model_config *cfg)
{
    printf("{");
    for (int i = 0; i < fxp_graph_model_config_n_keys(); i++) {
        char v[128];
        const char *key = fxp_graph_model_config_key(i);
        fxp_graph_model_config_get(cfg, key, v, sizeof v);
        printf("%s", i ? ", " : "");
        json_string(stdout, key);
        printf(": ");
        json_string(stdout, v);
    }
    printf("}");
}

/* A finite number, or null. */
static void json_number(double x)
{
    if (isfinite(x)) printf("%.17g", x);
    else printf("null");
}

static void print_json(const char *path, const char *version, const fxp_graph_model_config *cfg,
                       size_t n_params, unsigned long long hash, const run_state *st, int has_run)
{
    printf("{\"checkpoint\": ");
    json_string(stdout, path);
    printf(", \"library_version\": ");
    json_string(stdout, version);
    printf(", \"model\": ");
    json_string(stdout, fxp_graph_model_kind_name(cfg->kind));
    printf(", \"parameters\": %zu, \"parameters_fnv1a\": \"%016llx\", \"config\": ", n_params, hash);
    json_config(cfg);
    if (has_run) {
        printf(", \"run\": {\"step\": %lld, \"train_steps\": %d, \"train_seconds\": ", st->step,
               cfg->train_steps);
        json_number(st->train_seconds);
        printf(", \"best_valid_nll\": ");
        json_number(st->best_valid);
        printf(", \"best_step\": ");
        if (st->best_step >= 0) printf("%lld", st->best_step);
        else printf("null");
        printf(", \"dataset\": ");
        json_string(stdout, st->dataset);
        printf(", \"entropy_per_node\": ");
        json_number(st->entropy);
        printf(", \"nodes\": %d, \"seed\": %llu, \"eval_every\": %d, \"ckpt_every\": %d, "
               "\"threads\": %d, \"data\": ",
               st->nodes, st->seed, st->eval_every, st->ckpt_every, st->threads);
        json_string(stdout, st->data);
        printf("}");
    }
    printf("}\n");
}

static void print_text(const char *path, const char *version, const fxp_graph_model_config *cfg,
                       size_t n_params, unsigned long long hash, const run_state *st, int has_run)
{
    char p[512], d[512];
    printf("%s: flowexp checkpoint (libflowexp %s)\n", text_sanitize(p, sizeof p, path),
           version[0] ? version : "?");
    printf("  model        %s, %zu parameters (values' FNV-1a %016llx)\n",
           fxp_graph_model_kind_name(cfg->kind), n_params, hash);
    if (has_run) {
        printf("  dataset      %s, graphs of %d nodes", st->dataset[0] ? st->dataset : "(unnamed)",
               st->nodes);
        if (isfinite(st->entropy)) printf(", entropy %.4f nats/node", st->entropy);
        printf("\n  data file    %s\n", st->data[0] ? text_sanitize(d, sizeof d, st->data) : "(not recorded)");
        printf("  progress     step %lld of %d, %.1f s of training\n", st->step, cfg->train_steps,
               st->train_seconds);
        if (st->best_step >= 0)
            printf("  best valid   %.4f nats/node at step %lld\n", st->best_valid, st->best_step);
        else
            printf("  best valid   none yet\n");
        printf("  run          seed %llu", st->seed);
        if (st->eval_every)
            printf(", validation every %d steps, checkpoint every %d", st->eval_every, st->ckpt_every);
        if (st->threads) printf(", %d thread(s)", st->threads);
        printf("\n");
    } else {
        printf("  run          (no run state: not written by flowexp train)\n");
    }
    printf("  config      ");
    for (int i = 0; i < fxp_graph_model_config_n_keys(); i++) {
        char v[128];
        const char *key = fxp_graph_model_config_key(i);
        fxp_graph_model_config_get(cfg, key, v, sizeof v);
        printf("%s%s = %s\n", i ? "               " : " ", key, v);
    }
}

int cmd_info(int argc, char **argv)
{
    int json = 0;
    const char *pos[1] = { NULL };
    int n_pos = 0;
    arg_spec specs[] = {
        { "json", ARG_FLAG, &json, NULL, "print one JSON object instead of text", 0, 0, NULL, 0, 0 },
    };
    const int n_specs = (int)(sizeof specs / sizeof specs[0]);
    char err[512];
    int help;
    if (args_parse(specs, n_specs, argc, argv, pos, 1, &n_pos, &help, err, sizeof err) < 0) {
        tool_error("info", "%s", err);
        return EXIT_USAGE;
    }
    if (help) {
        args_print_help("flowexp info CHECKPOINT [--json]",
                        "What a checkpoint written by flowexp train holds: model kind, number of\n"
                        "parameters and an FNV-1a hash of their values (equal hashes: bit-identical\n"
                        "models), the configuration, dataset and node count, steps done, the best\n"
                        "validation NLL and its step, training time, seed and schedule. With --json,\n"
                        "one object (unknown numbers are null).",
                        specs, n_specs);
        return 0;
    }
    if (n_pos != 1) {
        tool_error("info", "expected one checkpoint file (see --help)");
        return EXIT_USAGE;
    }
    const char *path = pos[0];
    {
        fxp_ctx *c0;
        int is_image = 0;
        if (fxp_ctx_new(&c0) == 0) {
            is_image = image_checkpoint_is_image(c0, path);
            fxp_ctx_free(c0);
        }
        if (is_image) return image_info(path, json);
    }
    int rc = 1, seen = 0;
    fxp_ctx *ctx = NULL;
    tool_model m;
    memset(&m, 0, sizeof m);
    fxp_graph_model_config cfg;
    run_state st;
    if (fxp_ctx_new(&ctx) < 0 || store_read_config(ctx, path, &cfg, &st, &seen) < 0 ||
        tool_model_build(ctx, &cfg, 0, &m) < 0 || store_load(ctx, path, &m, NULL) < 0) {
        tool_error("info", "%s", tool_message());
        goto done;
    }
    char version[64];
    if (fxp_h5_read_attr(ctx, path, "library_version", version, sizeof version) < 0 ||
        !text_is_name(version))
        version[0] = '\0';
    const size_t n_params = fxp_params_size(m.ps, FXP_PARAM_TRAINABLE);
    const unsigned long long hash = tool_params_hash(m.ps);
    if (json) print_json(path, version, &cfg, n_params, hash, &st, seen != 0);
    else print_text(path, version, &cfg, n_params, hash, &st, seen != 0);
    rc = 0;
done:
    tool_model_free(&m);
    fxp_ctx_free(ctx);
    return rc;
}
