/* arena.h — plan memory, allocate once. A bump allocator over one block: a
 * trainer sizes everything up front, allocates the block once, and hands out
 * aligned pieces; nothing is freed individually. */
#ifndef RL_ARENA_H
#define RL_ARENA_H
#include <stddef.h>
#include "check.h"

typedef struct {
    unsigned char *base; /* owned; NULL until rl_arena_init */
    size_t cap;          /* bytes */
    size_t used;         /* bytes handed out, alignment padding included */
} rl_arena;

/* Allocates `cap` bytes (zeroed). RL_ENOMEM if that fails. */
rl_status rl_arena_init(rl_arena *a, size_t cap);
/* Next `n` bytes aligned to `align` (a power of two, at most 4096); NULL when
 * the arena is full (callers plan sizes, so that is a bug: check it). */
void *rl_arena_alloc(rl_arena *a, size_t n, size_t align);
/* Forget every allocation (memory is kept, not zeroed). */
void rl_arena_reset(rl_arena *a);
void rl_arena_free(rl_arena *a);

#endif
