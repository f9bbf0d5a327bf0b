/* pretok.c — GPT-2's pre-split regex, matched by hand over UTF-8:
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * Character classes come from unicode_tab.h (generated from JavaScript's own
 * regex engine, so we agree with the JS reference encoders). A byte that does
 * not start a valid UTF-8 sequence is one character of class "other", which
 * keeps any byte string splittable and the round trip lossless. */
#include <string.h>
#include "tok_internal.h"
#include "unicode_tab.h"

enum { C_OTHER = 0, C_L = 1, C_N = 2, C_S = 3 };

static int in_ranges(const unsigned int (*r)[2], int n, unsigned int cp) {
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) >> 1;
        if (cp < r[mid][0]) hi = mid - 1;
        else if (cp > r[mid][1]) lo = mid + 1;
        else return 1;
    }
    return 0;
}

static int class_of_cp(unsigned int cp) {
    if (in_ranges(tok_uc_L, TOK_UC_L_N, cp)) return C_L;
    if (in_ranges(tok_uc_N, TOK_UC_N_N, cp)) return C_N;
    if (in_ranges(tok_uc_S, TOK_UC_S_N, cp)) return C_S;
    return C_OTHER;
}

static unsigned char ascii_class[128];
static pthread_once_t ascii_once = PTHREAD_ONCE_INIT;
static void ascii_init(void) { for (unsigned c = 0; c < 128; c++) ascii_class[c] = (unsigned char)class_of_cp(c); }

/* Decodes the character at p[0..n) (n > 0): returns its class and sets *len
 * to its byte length. Strict UTF-8 (no overlongs, no surrogates, <= U+10FFFF);
 * anything else is a 1-byte "other". */
static inline int char_at(const unsigned char *p, size_t n, size_t *len) {
    unsigned c = p[0];
    if (c < 0x80) { *len = 1; return ascii_class[c]; }
    unsigned cp = 0; size_t k = 0;
    if (c >= 0xc2 && c <= 0xdf) { k = 2; cp = c & 0x1f; }
    else if (c >= 0xe0 && c <= 0xef) { k = 3; cp = c & 0x0f; }
    else if (c >= 0xf0 && c <= 0xf4) { k = 4; cp = c & 0x07; }
    if (k == 0 || k > n) { *len = 1; return C_OTHER; }
    for (size_t i = 1; i < k; i++) {
        if ((p[i] & 0xc0) != 0x80) { *len = 1; return C_OTHER; }
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((k == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (k == 4 && (cp < 0x10000 || cp > 0x10ffff))) {
        *len = 1; return C_OTHER;
    }
    *len = k;
    return class_of_cp(cp);
}

/* End of the run of class `cls` starting at i. */
static size_t run_end(const unsigned char *p, size_t n, size_t i, int cls) {
    while (i < n) {
        size_t k;
        if (char_at(p + i, n - i, &k) != cls) break;
        i += k;
    }
    return i;
}

size_t tok_pretok_next(const unsigned char *p, size_t n) {
    pthread_once(&ascii_once, ascii_init);
    if (n == 0) return 0;
    /* 's 't 're 've 'm 'll 'd (case-sensitive, ASCII apostrophe only) */
    if (p[0] == '\'' && n >= 2) {
        unsigned char c = p[1];
        if (c == 's' || c == 't' || c == 'm' || c == 'd') return 2;
        if (n >= 3 && ((c == 'r' && p[2] == 'e') || (c == 'v' && p[2] == 'e') || (c == 'l' && p[2] == 'l'))) return 3;
    }
    size_t k0;
    int c0 = char_at(p, n, &k0);
    /* ' ?X+' for X in L, N, other: an optional U+0020 then a run of one class. */
    if (p[0] == ' ' && n >= 2) {
        size_t k1;
        int c1 = char_at(p + 1, n - 1, &k1);
        if (c1 != C_S) return run_end(p, n, 1 + k1, c1);
    }
    if (c0 != C_S) return run_end(p, n, k0, c0);
    /* \s+(?!\S) then \s+: a whitespace run, less its last character when a
     * non-space follows and the run has more than one character. */
    size_t i = k0, last = 0;
    while (i < n) {
        size_t k;
        if (char_at(p + i, n - i, &k) != C_S) break;
        last = i;
        i += k;
    }
    if (i == n || last == 0) return i;
    return last;
}
