/* chat.h — the one chat template of rlhf.c, as pure text.
 *
 * A conversation is a list of turns {role, text}. It renders as
 *
 *   <|bos|><|user|>U1<|end|><|assistant|>A1<|end|><|user|>U2<|end|>...
 *
 * and, with add_generation_prompt, a trailing "<|assistant|>" so a model
 * continues with the assistant's answer (and is trained to stop by emitting
 * "<|end|>"). There are no newlines or other glue between turns: the special
 * tokens are the only delimiters, so the text of a turn is exactly its
 * content. A system turn, if any, is folded into the next user turn as
 * "<system text>\n\n<user text>" (the tokenizer has no <|system|> token; this
 * is the Llama-2 habit of putting the system prompt inside the first user
 * turn); a system turn with no user turn after it renders as a user turn.
 *
 * Tokens and masks. This module works on bytes; the tokenizer lives
 * elsewhere. chat_segments() cuts a rendered conversation into segments that
 * are either one special token or one piece of ordinary text, each with a
 * `train` flag. To tokenize: encode the segments one by one and concatenate —
 * a special segment becomes its single special-token id, a text segment is
 * BPE-encoded as ordinary text (so a user who types "<|end|>" gets ordinary
 * tokens, never the control token), and every token of a segment inherits
 * that segment's `train` flag. Because BPE never merges across a segment
 * boundary, the mask is exact: SFT computes the loss only where train = 1,
 * i.e. on assistant content and the "<|end|>" that closes it.
 * chat_assistant_spans() gives the same information as byte ranges of the
 * rendered string.
 */
#ifndef RL_CHAT_H
#define RL_CHAT_H
#include <stddef.h>

#define CHAT_BOS "<|bos|>"
#define CHAT_USER "<|user|>"
#define CHAT_ASSISTANT "<|assistant|>"
#define CHAT_END "<|end|>"

typedef enum { CHAT_ROLE_USER = 0, CHAT_ROLE_ASSISTANT = 1, CHAT_ROLE_SYSTEM = 2 } chat_role;

/* One turn. `text` is NUL-terminated UTF-8 and never NULL ("" is fine).
 * Shared with the feedback records (fb_record.prompt is a chat_turn array). */
typedef struct {
    chat_role role;
    const char *text;
} chat_turn;

/* "user" / "assistant" / "system"; "?" for a bad value. */
const char *chat_role_name(chat_role r);
/* Parses a role name; accepts the aliases "human", "prompter" (user) and
 * "gpt", "bot", "model" (assistant). Returns 0 and sets *r, or -1. */
int chat_role_parse(const char *s, chat_role *r);

/* Which assistant turns are trained on (masked in). */
enum {
    CHAT_TRAIN_ALL_ASSISTANT = 0, /* every assistant turn (multi-turn SFT) */
    CHAT_TRAIN_LAST_ASSISTANT = 1 /* only the final assistant turn (the judged response) */
};

/* One piece of a rendered conversation: bytes [start, end) of the string
 * chat_render produces. special = 1 means the piece is exactly one special
 * token (CHAT_BOS, CHAT_USER, CHAT_ASSISTANT, CHAT_END). train = 1 means the
 * tokens of this piece get a loss in SFT. Empty text pieces are omitted. */
typedef struct {
    size_t start, end;
    int special;
    int train;
} chat_segment;

/* Renders turns[0..n) into out (capacity cap bytes, NUL-terminated when
 * cap > 0, truncated like snprintf). Returns the full length the rendering
 * needs (excluding the NUL), or (size_t)-1 if a role is invalid or a text is
 * NULL. Call with cap = 0 to size the buffer. */
size_t chat_render(const chat_turn *turns, int n, int add_generation_prompt, char *out, size_t cap);

/* Same, into a malloc'd string the caller frees (NULL on invalid input or
 * out of memory). *len (if non-NULL) receives its length. */
char *chat_render_alloc(const chat_turn *turns, int n, int add_generation_prompt, size_t *len);

/* Cuts the rendering of turns[0..n) into segments (see chat_segment), in
 * order, covering the whole string. Writes at most `max` segments into seg
 * and returns how many there are in total (call with max = 0 to size), or
 * -1 on invalid input. `which` is CHAT_TRAIN_ALL_ASSISTANT or
 * CHAT_TRAIN_LAST_ASSISTANT. The "<|end|>" closing a trained assistant turn is
 * trained too (the model must learn to stop); the generation prompt's
 * trailing "<|assistant|>" is never trained. */
int chat_segments(const chat_turn *turns, int n, int add_generation_prompt, int which,
                  chat_segment *seg, int max);

/* A byte range [start, end) of a rendered conversation. */
typedef struct { size_t start, end; } chat_span;

/* Byte ranges of the rendered string (chat_render with the same turns and
 * add_generation_prompt = 0, or = 1: the ranges are the same) that are
 * assistant content to train on: each trained assistant turn's text and its
 * closing "<|end|>", in order. Writes at most `max` spans and returns the
 * total, or -1 on invalid input. */
int chat_assistant_spans(const chat_turn *turns, int n, int which, chat_span *spans, int max);

#endif
