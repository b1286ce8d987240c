/* strbuf.c - a growable NUL-terminated string. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

static int strbuf_reserve(demo_strbuf *sb, size_t extra)
{
    size_t need = sb->len + extra + 1;
    if (need <= sb->cap)
        return 0;
    size_t cap = sb->cap ? sb->cap : 32;
    while (cap < need)
        cap *= 2;
    char *data = (char *)realloc(sb->data, cap);
    if (data == NULL)
        return -1;
    sb->data = data;
    sb->cap = cap;
    return 0;
}

int demo_strbuf_append(demo_strbuf *sb, const char *s)
{
    size_t n = strlen(s);
    if (strbuf_reserve(sb, n) != 0)
        return -1;
    memcpy(sb->data + sb->len, s, n + 1);
    sb->len += n;
    return 0;
}

int demo_strbuf_append_u32(demo_strbuf *sb, uint32_t v)
{
    char tmp[16];
    snprintf(tmp, sizeof tmp, "%lu", (unsigned long)v);
    return demo_strbuf_append(sb, tmp);
}

void demo_strbuf_free(demo_strbuf *sb)
{
    free(sb->data);
    sb->data = NULL;
    sb->len = sb->cap = 0;
}

uint32_t core_strbuf_run(void)
{
    demo_strbuf sb = {NULL, 0, 0};
    uint32_t h;

    for (uint32_t i = 0; i < 200; i++) {
        if (demo_strbuf_append(&sb, i ? "," : "[") != 0 || demo_strbuf_append_u32(&sb, i * 7919u) != 0) {
            demo_strbuf_free(&sb);
            return 0;
        }
    }
    if (demo_strbuf_append(&sb, "]") != 0) {
        demo_strbuf_free(&sb);
        return 0;
    }
    h = demo_mix(demo_checksum_bytes(sb.data, sb.len), (uint32_t)sb.len);
    demo_strbuf_free(&sb);
    return h;
}
