/* text.h — small text helpers of the feedback server: UTF-8 validation and
 * repair (model output is bytes; a byte-level BPE token can end in the middle
 * of a character), and XML/HTML escaping for server-side SVG. */
#ifndef RL_SERVE_TEXT_H
#define RL_SERVE_TEXT_H
#include <stddef.h>

/* 1 if s[0..n) is valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF) with
 * no NUL byte and no control characters other than, if allow_newlines, \n \r \t. */
int text_utf8_valid(const char *s, size_t n, int allow_newlines);
/* A malloc'd NUL-terminated copy of s[0..n) with every invalid sequence, NUL
 * byte and control character other than \n \r \t replaced by U+FFFD (the
 * result passes text_utf8_valid(.., 1)). NULL on out of memory. */
char *text_utf8_sanitize(const char *s, size_t n);
/* Length of the longest prefix of s[0..n) that does not end inside an
 * incomplete (but so far valid) multi-byte character: stream that much now
 * and keep the rest until the next token completes it. */
size_t text_utf8_complete_prefix(const char *s, size_t n);
/* Appends s, escaped for XML text and attributes (& < > " '), to out[*len..cap),
 * truncating if needed; out stays NUL-terminated. */
void text_xml_escape(char *out, size_t cap, size_t *len, const char *s);

#endif
