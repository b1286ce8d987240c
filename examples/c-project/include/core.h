/* core.h - the core library (src/core/). */
#ifndef DEMO_CORE_H
#define DEMO_CORE_H

#include "common.h"

DEMO_BEGIN_C_DECLS

/* checksum.c: FNV-1a over bytes. */
uint32_t demo_checksum_bytes(const void *data, size_t len);
uint32_t demo_checksum_str(const char *s);
uint32_t core_checksum_run(void);

/* arena.c: a bump allocator over a caller-supplied buffer. */
typedef struct demo_arena {
    unsigned char *base;
    size_t cap;
    size_t used;
} demo_arena;
void demo_arena_init(demo_arena *a, void *buf, size_t cap);
void *demo_arena_alloc(demo_arena *a, size_t size);
uint32_t core_arena_run(void);

/* vec.c: a growable array of uint32_t. */
typedef struct demo_vec {
    uint32_t *items;
    size_t len;
    size_t cap;
} demo_vec;
int demo_vec_push(demo_vec *v, uint32_t x);
void demo_vec_free(demo_vec *v);
uint32_t core_vec_run(void);

/* strbuf.c: a growable NUL-terminated string. */
typedef struct demo_strbuf {
    char *data;
    size_t len;
    size_t cap;
} demo_strbuf;
int demo_strbuf_append(demo_strbuf *sb, const char *s);
int demo_strbuf_append_u32(demo_strbuf *sb, uint32_t v);
void demo_strbuf_free(demo_strbuf *sb);
uint32_t core_strbuf_run(void);

/* sort.c: a stable merge sort. */
void demo_sort_u32(uint32_t *a, size_t n);
uint32_t core_sort_run(void);

/* matrix.c: integer matrix product (sizes from rare.h). */
uint32_t core_matrix_run(void);

/* version_info.c: the version from the generated version.h. */
const char *demo_version_string(void);
uint32_t core_version_run(void);

DEMO_END_C_DECLS

#endif /* DEMO_CORE_H */
