/* demo_tool — the in-process steps of `rlhf demo`, for bench/demo_gate.sh.
 *   demo_tool render SFT_JSONL OUT_TXT                 world demos -> pretraining text
 *   demo_tool answer MODEL TOK PROMPTS_JSONL OUT [N]   greedy answers to the first N prompts (chat template)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../../src/demo/demo.h"

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "render")) {
        long n = 0;
        CHECK_OK(demo_render_text(argv[2], argv[3], &n), "render");
        printf("%ld demonstrations\n", n);
        return 0;
    }
    if ((argc == 6 || argc == 7) && !strcmp(argv[1], "answer")) {
        demo_gen_opts o = {argv[2], argv[3], 1, 0.0f, 48, argc == 7 ? atoi(argv[6]) : 0, 64, 1};
        long n = 0;
        CHECK_OK(demo_generate(&o, argv[4], argv[5], &n), "answer");
        printf("%ld answers\n", n);
        return 0;
    }
    fprintf(stderr, "usage: demo_tool render SFT_JSONL OUT_TXT | demo_tool answer MODEL TOK PROMPTS OUT [N]\n");
    return 2;
}
