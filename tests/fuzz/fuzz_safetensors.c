/* libFuzzer target: the safetensors parser (st_parse) and every reader on
 * whatever it accepts. Built and run by tests/cli/fuzz.sh. */
#include <stdint.h>
#include <stdlib.h>
#include "../../src/model/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    st_file f;
    if (st_parse(&f, data, size, "fuzz") != RL_OK) return 0;
    for (int i = 0; i < f.ntensors; i++) {
        const st_tensor *t = &f.tensors[i];
        if (st_find(&f, t->name) != t) abort();   /* lookup must find every tensor */
        if (t->end > f.data_bytes) abort();
        if (t->numel <= (1u << 16)) {
            float *v = malloc((size_t)(t->numel ? t->numel : 1) * sizeof *v);
            st_read_f32(&f, t, v, t->numel);
            free(v);
        }
    }
    for (int i = 0; i < f.nmeta; i++) if (!st_meta(&f, f.meta[2 * i])) abort();
    st_close(&f);
    return 0;
}
