/* st_tool — the C side of tests/ref/test_safetensors.py.
 *   st_tool dump FILE    one line per tensor, sorted by name:
 *                        "name<TAB>dtype<TAB>d0,d1,..<TAB>v0 v1 ..." with values as
 *                        float32 in C99 hex (%a, exact); then "meta<TAB>k<TAB>v" lines
 *   st_tool check FILE   exit 0 if it parses, 1 with the error on stderr
 *   st_tool write OUT    writes fixed F32 tensors (values i*0.25-3, exactly representable)
 */
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include "../../src/model/safetensors.h"

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: st_tool dump|check|write FILE\n"); return 2; }
    if (!strcmp(argv[1], "write")) {
        static float a[2 * 3 * 4], b[5], s[1] = {42.5f};
        for (int i = 0; i < 24; i++) a[i] = (float)i * 0.25f - 3.0f;
        for (int i = 0; i < 5; i++) b[i] = -(float)i * 0.25f;
        int64_t sa[3] = {2, 3, 4}, sb[1] = {5}, se[2] = {3, 0};
        st_entry e[4] = {{"h.0.mlp.c_fc.weight", 3, sa, a}, {"wpe", 1, sb, b}, {"scalar", 0, NULL, s}, {"empty", 2, se, NULL}};
        const char *meta[] = {"format", "pt", "producer", "rlhf.c"};
        CHECK_OK(st_write_f32(argv[2], e, 4, meta, 2), "st_tool write");
        return 0;
    }
    st_file f;
    if (st_open(&f, argv[2]) != RL_OK) { fprintf(stderr, "%s\n", rl_error()); return 1; }
    if (!strcmp(argv[1], "check")) { st_close(&f); return 0; }
    for (int i = 0; i < f.ntensors; i++) {
        const st_tensor *t = &f.tensors[i];
        printf("%s\t%s\t", t->name, st_dtype_name(t->dtype));
        for (int d = 0; d < t->ndim; d++) printf(d ? ",%lld" : "%lld", (long long)t->shape[d]);
        putchar('\t');
        float *v = malloc((t->numel ? t->numel : 1) * sizeof *v);
        if (st_read_f32(&f, t, v, t->numel) == RL_OK)
            for (uint64_t j = 0; j < t->numel; j++) printf(j ? " %a" : "%a", (double)v[j]);
        else printf("unsupported");
        putchar('\n');
        free(v);
    }
    for (int i = 0; i < f.nmeta; i++) printf("meta\t%s\t%s\n", f.meta[2 * i], f.meta[2 * i + 1]);
    st_close(&f);
    return 0;
}
