/* Fuzz target: flowexp's config-file parser (tool_config_parse, on the
 * bytes as given) applied to each kind's defaults.  Checks: a failure has a
 * message naming the input; a success leaves every key readable, and its
 * text form sets the same value again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fxp_graph_model_config cfg, again;
    char err[512];
    fxp_graph_model_config_default(&cfg, (fxp_graph_model_kind)(size % 3));
    err[0] = '\0';
    if (tool_config_parse((const char *)data, size, "fuzz.cfg", &cfg, err, sizeof err) < 0) {
        if (strncmp(err, "fuzz.cfg", 8) != 0) abort();
        return 0;
    }
    memset(&again, 0, sizeof again);
    for (int i = 0; i < fxp_graph_model_config_n_keys(); i++) {
        char v[128];
        const char *key = fxp_graph_model_config_key(i);
        if (fxp_graph_model_config_get(&cfg, key, v, sizeof v) < 0) abort();
        if (fxp_graph_model_config_set(&again, key, v) < 0) abort();
    }
    if (memcmp(&cfg, &again, sizeof cfg) != 0) abort();
    return 0;
}
