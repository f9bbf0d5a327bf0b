/* text.c — see text.h. */
#include "text.h"
#include <stdlib.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s[0..n), 0 if invalid or incomplete;
 * *incomplete = 1 if it is a valid start cut short by the end of the buffer. */
static size_t seq_len(const unsigned char *s, size_t n, int *incomplete) {
    *incomplete = 0;
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; min = 0x10000; }
    else return 0;
    unsigned cp = c & (len == 2 ? 0x1F : len == 3 ? 0x0F : 0x07);
    for (size_t i = 1; i < len; i++) {
        if (i >= n) {
            *incomplete = 1;
            return 0;
        }
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
        /* Reject overlongs and surrogates as early as the second byte tells. */
        if (i == 1 && len == 3 && c == 0xE0 && s[1] < 0xA0) return 0;
        if (i == 1 && len == 3 && c == 0xED && s[1] >= 0xA0) return 0;
        if (i == 1 && len == 4 && c == 0xF0 && s[1] < 0x90) return 0;
        if (i == 1 && len == 4 && c == 0xF4 && s[1] >= 0x90) return 0;
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

int text_utf8_valid(const char *str, size_t n, int allow_newlines) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x20 || c == 0x7F) {
            if (!(allow_newlines && (c == '\n' || c == '\r' || c == '\t'))) return 0;
        }
        int inc;
        size_t l = seq_len(s + i, n - i, &inc);
        if (!l) return 0;
        i += l;
    }
    return 1;
}

char *text_utf8_sanitize(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    char *out = malloc(3 * n + 1);
    if (!out) return NULL;
    size_t o = 0, i = 0;
    while (i < n) {
        int inc;
        /* Control characters (but \n \r \t) are replaced too: a byte-level
         * model can emit any byte, and stored text must pass text_utf8_valid. */
        int ctl = (s[i] < 0x20 && s[i] != '\n' && s[i] != '\r' && s[i] != '\t') || s[i] == 0x7F;
        size_t l = ctl ? 0 : seq_len(s + i, n - i, &inc);
        if (!l) {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        } else {
            memcpy(out + o, s + i, l);
            o += l;
            i += l;
        }
    }
    out[o] = 0;
    return out;
}

size_t text_utf8_complete_prefix(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    /* Only the last 3 bytes can start an incomplete character. */
    size_t start = n > 3 ? n - 3 : 0;
    for (size_t i = start; i < n; i++) {
        if ((s[i] & 0xC0) == 0x80) continue;
        int inc;
        size_t l = seq_len(s + i, n - i, &inc);
        if (!l && inc) return i;
        if (l) i += l - 1;
    }
    return n;
}

void text_xml_escape(char *out, size_t cap, size_t *len, const char *s) {
    if (!cap) return;
    size_t o = *len;
    for (; *s; s++) {
        const char *rep = NULL;
        switch (*s) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        }
        size_t rl = rep ? strlen(rep) : 1;
        if (o + rl + 1 > cap) break;
        if (rep) memcpy(out + o, rep, rl);
        else out[o] = *s;
        o += rl;
    }
    out[o < cap ? o : cap - 1] = 0;
    *len = o;
}
