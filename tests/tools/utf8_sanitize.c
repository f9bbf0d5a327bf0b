/* utf8_sanitize — stdin to stdout through text_utf8_sanitize (src/serve/text.h),
 * the repair the feedback server applies to model output before storing it:
 * lets a CLI test compare `rlhf sample` bytes with a stored answer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../../src/serve/text.h"

int main(void) {
    size_t cap = 1 << 16, n = 0, k;
    char *buf = malloc(cap);
    if (!buf) return 1;
    while ((k = fread(buf + n, 1, cap - n, stdin)) > 0) {
        n += k;
        if (n == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) { free(buf); return 1; }
            buf = nb;
        }
    }
    char *out = text_utf8_sanitize(buf, n);
    free(buf);
    if (!out) return 1;
    fputs(out, stdout);
    free(out);
    return 0;
}
