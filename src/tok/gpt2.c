/* gpt2.c — import OpenAI's GPT-2 vocabulary (encoder.json + vocab.bpe).
 *
 * GPT-2 writes token bytes as printable unicode: bytes that are printable
 * Latin-1 ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for themselves, the other 68
 * bytes map in order to U+0100, U+0101, ... We invert that mapping. */
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <jansson.h>
#include "tok_internal.h"

/* code point -> byte (or -1), the inverse of GPT-2's bytes_to_unicode */
static void unicode_to_byte(int inv[512]) {
    for (int i = 0; i < 512; i++) inv[i] = -1;
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
        if (printable) inv[b] = b;
        else inv[256 + n++] = b;
    }
}

/* Converts a GPT-2 token string (UTF-8) to raw bytes in out (room for n).
 * Returns the byte count, or -1 if it holds a character outside the mapping. */
static long gpt2_str_bytes(const int inv[512], const unsigned char *s, size_t n, unsigned char *out) {
    long k = 0;
    for (size_t i = 0; i < n;) {
        unsigned cp;
        if (s[i] < 0x80) { cp = s[i]; i += 1; }
        else if ((s[i] & 0xe0) == 0xc0 && i + 1 < n) { cp = (unsigned)(s[i] & 0x1f) << 6 | (s[i + 1] & 0x3f); i += 2; }
        else return -1;
        if (cp >= 512 || inv[cp] < 0) return -1;
        out[k++] = (unsigned char)inv[cp];
    }
    return k;
}

rl_status tok_import_gpt2(tok_tokenizer **out, const char *encoder_json, const char *vocab_bpe) {
    *out = NULL;
    int inv[512];
    unicode_to_byte(inv);
    json_error_t jerr;
    json_t *enc = json_load_file(encoder_json, 0, &jerr);
    if (!enc) {
        FILE *fp = fopen(encoder_json, "rb");
        if (!fp) return rl_fail(RL_ENOTFOUND, "%s: cannot open GPT-2 encoder.json: %s", encoder_json, strerror(errno));
        fclose(fp);
        return rl_fail(RL_EFORMAT, "%s:%d: not valid JSON (%s); expected GPT-2's encoder.json (token -> id)", encoder_json, jerr.line, jerr.text);
    }
    rl_status st = RL_OK;
    FILE *mf = NULL;
    char *line = NULL;
    size_t n0 = json_is_object(enc) ? json_object_size(enc) : 0;
    int V0 = (int)n0, S = 0, M = 0;
    uint32_t *tok_len = NULL, *merges = NULL, specials[1 + TOK_NCHAT_SPECIALS];
    unsigned char **tb = NULL;  /* (V) token bytes */
    tok_bmap bymap;             /* token bytes -> id (non-special) */
    tok_bmap_init(&bymap);
    unsigned char *blob = NULL;
    if (n0 < 257 || n0 > (1u << 24)) { st = rl_fail(RL_EFORMAT, "%s: expected a JSON object of GPT-2 tokens (token -> id), found %zu entries", encoder_json, n0); goto done; }
    int V = V0 + TOK_NCHAT_SPECIALS;
    tok_len = calloc((size_t)V, sizeof *tok_len);
    tb = calloc((size_t)V, sizeof *tb);
    merges = malloc((size_t)V * 3 * sizeof *merges);
    if (!tok_len || !tb || !merges) { st = rl_fail(RL_ENOMEM, "out of memory"); goto done; }
    const char *key;
    json_t *val;
    json_object_foreach(enc, key, val) {
        json_int_t id = json_is_integer(val) ? json_integer_value(val) : -1;
        if (id < 0 || id >= V0 || tb[id]) {
            st = rl_fail(RL_EFORMAT, "%s: token \"%s\" has id %s, not a unique integer in [0, %d)", encoder_json, key, json_is_integer(val) ? "out of range or repeated" : "that is not an integer", V0);
            goto done;
        }
        size_t kl = strlen(key);
        tb[id] = malloc(kl + 1);
        if (!tb[id]) { st = rl_fail(RL_ENOMEM, "out of memory"); goto done; }
        if (kl > 2 && key[0] == '<' && key[1] == '|' && key[kl - 1] == '>' && key[kl - 2] == '|') {
            /* a special token, e.g. <|endoftext|>: its bytes are its name */
            memcpy(tb[id], key, kl);
            tok_len[id] = (uint32_t)kl;
            if (S >= 1) { st = rl_fail(RL_EFORMAT, "%s: more than one special token (\"%s\"); expected GPT-2's encoder.json", encoder_json, key); goto done; }
            specials[S++] = (uint32_t)id;
            continue;
        }
        long bl = gpt2_str_bytes(inv, (const unsigned char *)key, kl, tb[id]);
        if (bl <= 0) { st = rl_fail(RL_EFORMAT, "%s: token \"%s\" (id %lld) uses a character outside GPT-2's byte mapping", encoder_json, key, (long long)id); goto done; }
        tok_len[id] = (uint32_t)bl;
        int ins;
        if (tok_bmap_insert(&bymap, tb[id], (size_t)bl, (int)id, &ins) < 0) { st = rl_fail(RL_ENOMEM, "out of memory"); goto done; }
        if (!ins) { st = rl_fail(RL_EFORMAT, "%s: two tokens have the same bytes (\"%s\")", encoder_json, key); goto done; }
    }
    uint32_t byte_id[256];
    for (int b = 0; b < 256; b++) {
        unsigned char c = (unsigned char)b;
        long slot = tok_bmap_find(&bymap, &c, 1);
        if (slot < 0) { st = rl_fail(RL_EFORMAT, "%s: byte 0x%02x has no token; not a byte-level BPE vocabulary", encoder_json, b); goto done; }
        byte_id[b] = (uint32_t)bymap.val[slot];
    }
    /* merges, in rank order */
    mf = fopen(vocab_bpe, "rb");
    if (!mf) { st = rl_fail(errno == ENOENT ? RL_ENOTFOUND : RL_EIO, "%s: cannot open GPT-2 vocab.bpe: %s", vocab_bpe, strerror(errno)); goto done; }
    size_t cap = 0;
    ssize_t ll;
    int lineno = 0;
    unsigned char ba[1024], bb[1024], bc[2048];
    while ((ll = getline(&line, &cap, mf)) >= 0) {
        lineno++;
        while (ll > 0 && (line[ll - 1] == '\n' || line[ll - 1] == '\r')) line[--ll] = 0;
        if (lineno == 1 && !strncmp(line, "#version", 8)) continue;
        if (ll == 0) continue;
        char *sp = strchr(line, ' ');
        if (!sp || strchr(sp + 1, ' ') || sp == line || !sp[1] || ll > 1000) {
            st = rl_fail(RL_EFORMAT, "%s:%d: expected a merge \"a b\" (two tokens, one space); is this GPT-2's vocab.bpe?", vocab_bpe, lineno);
            goto done;
        }
        *sp = 0;
        long la = gpt2_str_bytes(inv, (unsigned char *)line, strlen(line), ba);
        long lb = gpt2_str_bytes(inv, (unsigned char *)sp + 1, strlen(sp + 1), bb);
        if (la <= 0 || lb <= 0) { st = rl_fail(RL_EFORMAT, "%s:%d: merge uses a character outside GPT-2's byte mapping", vocab_bpe, lineno); goto done; }
        memcpy(bc, ba, (size_t)la);
        memcpy(bc + la, bb, (size_t)lb);
        long sa = tok_bmap_find(&bymap, ba, (size_t)la), sb = tok_bmap_find(&bymap, bb, (size_t)lb), sc = tok_bmap_find(&bymap, bc, (size_t)(la + lb));
        if (sa < 0 || sb < 0 || sc < 0) {
            st = rl_fail(RL_EFORMAT, "%s:%d: merge \"%s %s\" names a token that %s does not have; use the encoder.json and vocab.bpe of the same release", vocab_bpe, lineno, line, sp + 1, encoder_json);
            goto done;
        }
        if (M >= V0) { st = rl_fail(RL_EFORMAT, "%s: more merges than tokens", vocab_bpe); goto done; }
        merges[3 * M] = (uint32_t)bymap.val[sa];
        merges[3 * M + 1] = (uint32_t)bymap.val[sb];
        merges[3 * M + 2] = (uint32_t)bymap.val[sc];
        M++;
    }
    /* the chat specials after GPT-2's ids */
    for (int i = 0; i < TOK_NCHAT_SPECIALS; i++) {
        size_t kl = strlen(tok_chat_specials[i]);
        tb[V0 + i] = malloc(kl);
        if (!tb[V0 + i]) { st = rl_fail(RL_ENOMEM, "out of memory"); goto done; }
        memcpy(tb[V0 + i], tok_chat_specials[i], kl);
        tok_len[V0 + i] = (uint32_t)kl;
        specials[S++] = (uint32_t)(V0 + i);
    }
    if (256 + M + S != V) {
        st = rl_fail(RL_EFORMAT, "%s and %s disagree: %d tokens but 256 bytes + %d merges + %d specials; use files of the same release", encoder_json, vocab_bpe, V0, M, S - TOK_NCHAT_SPECIALS);
        goto done;
    }
    size_t total = 0;
    for (int i = 0; i < V; i++) total += tok_len[i];
    blob = malloc(total);
    if (!blob) { st = rl_fail(RL_ENOMEM, "out of memory"); goto done; }
    size_t o = 0;
    for (int i = 0; i < V; i++) { memcpy(blob + o, tb[i], tok_len[i]); o += tok_len[i]; }
    st = tok_build(out, V, byte_id, tok_len, blob, M, merges, S, specials, vocab_bpe);
done:
    if (mf) fclose(mf);
    free(line);
    if (tb) for (int i = 0; i < V0 + TOK_NCHAT_SPECIALS; i++) free(tb[i]);
    free(tb); free(tok_len); free(merges); free(blob);
    tok_bmap_free(&bymap);
    json_decref(enc);
    return st;
}
