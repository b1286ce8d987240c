/* vec.c - a growable array of uint32_t. */
#include <stdlib.h>

#include "core.h"

int demo_vec_push(demo_vec *v, uint32_t x)
{
    if (v->len == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        uint32_t *items = (uint32_t *)realloc(v->items, cap * sizeof *items);
        if (items == NULL)
            return -1;
        v->items = items;
        v->cap = cap;
    }
    v->items[v->len++] = x;
    return 0;
}

void demo_vec_free(demo_vec *v)
{
    free(v->items);
    v->items = NULL;
    v->len = v->cap = 0;
}

uint32_t core_vec_run(void)
{
    demo_vec v = {NULL, 0, 0};
    uint32_t h = DEMO_FNV_OFFSET;
    uint32_t sum = 0;

    for (uint32_t i = 1; i <= 1000; i++) {
        if (demo_vec_push(&v, i * i) != 0) {
            demo_vec_free(&v);
            return 0;
        }
    }
    for (size_t i = 0; i < v.len; i++)
        sum += v.items[i];
    h = demo_mix(h, (uint32_t)v.len);
    h = demo_mix(h, sum); /* 333833500 */
    h = demo_mix(h, demo_checksum_bytes(v.items, v.len * sizeof v.items[0]));
    demo_vec_free(&v);
    return h;
}
