/* arena.c - a bump allocator: 8-byte aligned blocks from one buffer. */
#include <string.h>

#include "core.h"

#define ARENA_ALIGN 8u

void demo_arena_init(demo_arena *a, void *buf, size_t cap)
{
    a->base = (unsigned char *)buf;
    a->cap = cap;
    a->used = 0;
}

void *demo_arena_alloc(demo_arena *a, size_t size)
{
    size_t start = (a->used + (ARENA_ALIGN - 1)) & ~(size_t)(ARENA_ALIGN - 1);
    if (start > a->cap || size > a->cap - start)
        return NULL;
    a->used = start + size;
    return a->base + start;
}

uint32_t core_arena_run(void)
{
    unsigned char buf[4096];
    demo_arena arena;
    uint32_t rng = 42u;
    uint32_t h = DEMO_FNV_OFFSET;
    unsigned blocks = 0;

    memset(buf, 0, sizeof buf);
    demo_arena_init(&arena, buf, sizeof buf);
    for (;;) {
        size_t size = 1 + demo_lcg(&rng) % 100u;
        unsigned char *p = (unsigned char *)demo_arena_alloc(&arena, size);
        if (p == NULL)
            break;
        memset(p, (int)(blocks & 0xffu), size);
        blocks++;
    }
    h = demo_mix(h, blocks);
    h = demo_mix(h, (uint32_t)arena.used);
    return demo_mix(h, demo_checksum_bytes(buf, arena.used));
}
