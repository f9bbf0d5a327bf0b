/* sim_styles.c — held-out calculator items answered correctly in each of the
 * three styles, for scoring with reward models (scripts/align_population_gpt.sh).
 *
 *   sim_styles WORLD_DIR N SEED  → N×3 JSONL lines
 *     {"item": i, "style": "terse|sentence|working", "prompt": "...", "response": "..."}
 * Items come from the world's held-out split (sim_sample_item), plain and
 * leading prompts as the world's rates say. */
#include <stdio.h>
#include <stdlib.h>
#include <jansson.h>
#include "../../src/sim/sim.h"

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: sim_styles WORLD_DIR N SEED\n"); return 2; }
    sim_world w;
    sim_pop_config pc;
    if (sim_world_load(argv[1], &w, &pc) != RL_OK) { fprintf(stderr, "sim_styles: %s\n", rl_error()); return 1; }
    int n = atoi(argv[2]);
    rl_rng rng;
    rl_rng_seed(&rng, strtoull(argv[3], NULL, 10));
    char prompt[128], resp[256];
    for (int i = 0; i < n; i++) {
        sim_item it;
        if (sim_sample_item(&w, &rng, 1, &it) != RL_OK) { fprintf(stderr, "sim_styles: %s\n", rl_error()); return 1; }
        sim_format_prompt(&it, prompt, sizeof prompt);
        for (int s = 0; s < SIM_NSTYLES; s++) {
            sim_format_answer(&it, it.gold, (sim_style)s, 0, resp, sizeof resp);
            json_t *o = json_pack("{s:i, s:s, s:s, s:s}", "item", i, "style", sim_style_name((sim_style)s), "prompt", prompt, "response", resp);
            char *line = json_dumps(o, JSON_COMPACT);
            puts(line);
            free(line);
            json_decref(o);
        }
    }
    return 0;
}
