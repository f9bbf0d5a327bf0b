/* fuzz_feedback.c — libFuzzer target for the feedback importers.
 *
 * Built and run for a bounded time by tests/cli/fuzz_feedback.sh:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined tests/fuzz/fuzz_feedback.c \
 *         src/data/{chat,feedback,feedback_io}.c src/base/*.c -ljansson -lz -lm
 *
 * Input: first byte picks the format (low 2 bits) and skip-bad (bit 2); the
 * rest is the file content. Properties (abort on violation, so the fuzzer
 * reports them like crashes): skip-bad imports never fail; counts add up;
 * every record that gets in validates and survives canonical JSON equal;
 * expansions and the chat template accept every record. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../../src/data/feedback.h"

#define PROPERTY(c) do { if (!(c)) { fprintf(stderr, "property failed: %s (%s)\n", #c, rl_error()); abort(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    fb_format fmt = (fb_format)(data[0] & 3);
    fb_import_opts o = {(data[0] >> 2) & 1};
    fb_set s;
    fb_set_init(&s);
    fb_import_stats st;
    rl_status rc = fb_import_mem(&s, "fz", (const char *)data + 1, size - 1, fmt, &o, &st);
    if (o.skip_bad) PROPERTY(rc == RL_OK);
    else PROPERTY(rc == RL_OK || (rc == RL_EFORMAT && !strncmp(rl_error(), "fz:", 3)));
    int64_t added = 0;
    for (int k = 0; k < FB_NKINDS; k++) added += st.added[k];
    PROPERTY(added == s.n);
    PROPERTY(st.bad <= st.lines);
    for (int64_t i = 0; i < s.n; i++) {
        const fb_record *r = &s.records[i];
        PROPERTY(fb_record_validate(r) == RL_OK);
        char *js = fb_record_to_json(r);
        PROPERTY(js != NULL);
        fb_set b;
        fb_set_init(&b);
        PROPERTY(fb_import_mem(&b, "rt", js, strlen(js), FB_FMT_JSONL, NULL, NULL) == RL_OK);
        PROPERTY(b.n == 1 && fb_record_equal(r, &b.records[0], NULL, 0));
        fb_set_free(&b);
        free(js);
        char *chat = chat_render_alloc(r->prompt, r->n_prompt, 1, NULL);
        PROPERTY(chat != NULL);
        free(chat);
    }
    fb_pair *p;
    fb_thumb *t;
    fb_demo *d;
    int64_t n;
    PROPERTY(fb_to_pairs(&s, &p, &n) == RL_OK);
    free(p);
    PROPERTY(fb_to_thumbs(&s, FB_THUMBS_FROM_PAIRS | FB_THUMBS_FROM_RATINGS, &t, &n) == RL_OK);
    free(t);
    PROPERTY(fb_to_demos(&s, FB_DEMOS_FROM_WINNERS, &d, &n) == RL_OK);
    free(d);
    fb_set_free(&s);
    return 0;
}
