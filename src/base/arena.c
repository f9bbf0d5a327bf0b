#include "arena.h"
#include <stdlib.h>
#include <string.h>
#include <stdint.h>

rl_status rl_arena_init(rl_arena *a, size_t cap) {
    a->used = 0;
    a->cap = cap;
    /* 64-byte alignment of the block itself: cache lines and AVX-512 loads. */
    a->base = NULL;
    if (posix_memalign((void **)&a->base, 64, cap ? cap : 64) != 0)
        return rl_fail(RL_ENOMEM, "arena: cannot allocate %zu bytes", cap);
    memset(a->base, 0, cap);
    return RL_OK;
}

void *rl_arena_alloc(rl_arena *a, size_t n, size_t align) {
    if (align == 0) align = 1;
    size_t off = (a->used + (align - 1)) & ~(align - 1);
    if (off > a->cap || n > a->cap - off) return NULL;
    a->used = off + n;
    return a->base + off;
}

void rl_arena_reset(rl_arena *a) { a->used = 0; }

void rl_arena_free(rl_arena *a) {
    free(a->base);
    a->base = NULL;
    a->cap = a->used = 0;
}
