/* chat.c — the chat template (see chat.h). One walker produces the pieces of
 * a rendering; chat_render copies them, chat_segments records them. Keeping a
 * single walker is what guarantees that the segments describe exactly the
 * string that chat_render returns. */
#include "chat.h"
#include <stdlib.h>
#include <string.h>

const char *chat_role_name(chat_role r) {
    switch (r) {
    case CHAT_ROLE_USER: return "user";
    case CHAT_ROLE_ASSISTANT: return "assistant";
    case CHAT_ROLE_SYSTEM: return "system";
    }
    return "?";
}

int chat_role_parse(const char *s, chat_role *r) {
    if (!s) return -1;
    if (!strcmp(s, "user") || !strcmp(s, "human") || !strcmp(s, "prompter")) { *r = CHAT_ROLE_USER; return 0; }
    if (!strcmp(s, "assistant") || !strcmp(s, "gpt") || !strcmp(s, "bot") || !strcmp(s, "model")) { *r = CHAT_ROLE_ASSISTANT; return 0; }
    if (!strcmp(s, "system")) { *r = CHAT_ROLE_SYSTEM; return 0; }
    return -1;
}

/* Receives the pieces in order. Adjacent text pieces with the same train flag
 * are merged by the segment sink, not here. */
typedef struct {
    char *out;        /* render sink: may be NULL */
    size_t cap;
    size_t len;       /* bytes produced so far (also past cap) */
    chat_segment *seg;/* segment sink: may be NULL */
    int max_seg;
    int nseg;
    int want_segments;
} sink;

static void emit(sink *k, const char *p, size_t n, int special, int train) {
    if (n == 0) return;
    if (k->out && k->len < k->cap) {
        size_t room = k->cap - k->len;
        memcpy(k->out + k->len, p, n < room ? n : room);
    }
    if (k->want_segments) {
        /* Text pieces merge with a preceding text piece of the same flag
         * (system text + "\n\n" + user text is one segment). seg[] always
         * has room: chat_segments sizes it from an upper bound. */
        chat_segment *last = k->nseg > 0 ? &k->seg[k->nseg - 1] : NULL;
        if (last && !special && !last->special && last->train == train && last->end == k->len) {
            last->end = k->len + n;
        } else if (k->nseg < k->max_seg) {
            chat_segment s = {k->len, k->len + n, special, train};
            k->seg[k->nseg++] = s;
        }
    }
    k->len += n;
}

static int index_of_last_assistant(const chat_turn *t, int n) {
    for (int i = n - 1; i >= 0; i--) if (t[i].role == CHAT_ROLE_ASSISTANT) return i;
    return -1;
}

/* Returns 0, or -1 on invalid input. */
static int walk(const chat_turn *t, int n, int add_gen, int which, sink *k) {
    for (int i = 0; i < n; i++) {
        if (!t[i].text) return -1;
        if (t[i].role != CHAT_ROLE_USER && t[i].role != CHAT_ROLE_ASSISTANT && t[i].role != CHAT_ROLE_SYSTEM) return -1;
    }
    int last_a = index_of_last_assistant(t, n);
    emit(k, CHAT_BOS, strlen(CHAT_BOS), 1, 0);
    int sys_from = -1; /* first pending system turn, -1 if none */
    for (int i = 0; i <= n; i++) {
        int flush_sys = sys_from >= 0 && (i == n || t[i].role == CHAT_ROLE_ASSISTANT);
        if (flush_sys) {
            /* System text with no user turn to join: render it as a user turn. */
            emit(k, CHAT_USER, strlen(CHAT_USER), 1, 0);
            for (int j = sys_from; j < i; j++) {
                if (j > sys_from) emit(k, "\n\n", 2, 0, 0);
                emit(k, t[j].text, strlen(t[j].text), 0, 0);
            }
            emit(k, CHAT_END, strlen(CHAT_END), 1, 0);
            sys_from = -1;
        }
        if (i == n) break;
        if (t[i].role == CHAT_ROLE_SYSTEM) {
            if (sys_from < 0) sys_from = i;
            continue;
        }
        if (t[i].role == CHAT_ROLE_USER) {
            emit(k, CHAT_USER, strlen(CHAT_USER), 1, 0);
            if (sys_from >= 0) {
                for (int j = sys_from; j < i; j++) {
                    emit(k, t[j].text, strlen(t[j].text), 0, 0);
                    emit(k, "\n\n", 2, 0, 0);
                }
                sys_from = -1;
            }
            emit(k, t[i].text, strlen(t[i].text), 0, 0);
            emit(k, CHAT_END, strlen(CHAT_END), 1, 0);
        } else {
            int train = which == CHAT_TRAIN_LAST_ASSISTANT ? (i == last_a) : 1;
            emit(k, CHAT_ASSISTANT, strlen(CHAT_ASSISTANT), 1, 0);
            emit(k, t[i].text, strlen(t[i].text), 0, train);
            emit(k, CHAT_END, strlen(CHAT_END), 1, train);
        }
    }
    if (add_gen) emit(k, CHAT_ASSISTANT, strlen(CHAT_ASSISTANT), 1, 0);
    return 0;
}

size_t chat_render(const chat_turn *turns, int n, int add_generation_prompt, char *out, size_t cap) {
    sink k = {0};
    k.out = out;
    k.cap = cap ? cap - 1 : 0;
    if (n < 0 || (n > 0 && !turns) || walk(turns, n, add_generation_prompt, CHAT_TRAIN_ALL_ASSISTANT, &k) != 0) {
        if (out && cap) out[0] = 0;
        return (size_t)-1;
    }
    if (out && cap) out[k.len < k.cap ? k.len : k.cap] = 0;
    return k.len;
}

char *chat_render_alloc(const chat_turn *turns, int n, int add_generation_prompt, size_t *len) {
    size_t need = chat_render(turns, n, add_generation_prompt, NULL, 0);
    if (need == (size_t)-1) return NULL;
    char *s = malloc(need + 1);
    if (!s) return NULL;
    chat_render(turns, n, add_generation_prompt, s, need + 1);
    if (len) *len = need;
    return s;
}

int chat_segments(const chat_turn *turns, int n, int add_generation_prompt, int which,
                  chat_segment *seg, int max) {
    if (which != CHAT_TRAIN_ALL_ASSISTANT && which != CHAT_TRAIN_LAST_ASSISTANT) return -1;
    if (n < 0 || (n > 0 && !turns) || n > (1 << 24)) return -1;
    /* Segments are counted by storing them in a temporary array of an upper
     * bound's size (merging looks at the previous segment), then copied. */
    /* Upper bound on pieces: <|bos|>, 3 per user/assistant turn, 2 per
     * system turn (its text and a separator) plus 2 per system flush, and
     * the generation prompt. */
    int cap = 5 * n + 8;
    chat_segment *tmp = malloc((size_t)cap * sizeof *tmp);
    if (!tmp) return -1;
    sink k = {0};
    k.seg = tmp;
    k.max_seg = cap;
    k.want_segments = 1;
    int rc = walk(turns, n, add_generation_prompt, which, &k);
    int total = k.nseg;
    if (rc == 0 && seg) memcpy(seg, tmp, (size_t)(total < max ? total : max) * sizeof *seg);
    free(tmp);
    return rc == 0 ? total : -1;
}

int chat_assistant_spans(const chat_turn *turns, int n, int which, chat_span *spans, int max) {
    int ns = chat_segments(turns, n, 0, which, NULL, 0);
    if (ns < 0) return -1;
    chat_segment *seg = malloc((size_t)(ns + 1) * sizeof *seg);
    if (!seg) return -1;
    chat_segments(turns, n, 0, which, seg, ns);
    int count = 0;
    size_t cur_s = 0, cur_e = 0;
    int open = 0;
    for (int i = 0; i < ns; i++) {
        if (!seg[i].train) continue;
        if (open && seg[i].start == cur_e) { cur_e = seg[i].end; continue; }
        if (open) {
            if (count < max) { spans[count].start = cur_s; spans[count].end = cur_e; }
            count++;
        }
        cur_s = seg[i].start; cur_e = seg[i].end; open = 1;
    }
    if (open) {
        if (count < max) { spans[count].start = cur_s; spans[count].end = cur_e; }
        count++;
    }
    free(seg);
    return count;
}
