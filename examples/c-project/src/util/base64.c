/* base64.c - RFC 4648 base64 encoding. Includes only codec.h, not common.h. */
#include "codec.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t demo_base64_encode(const unsigned char *in, size_t n, char *out, size_t cap)
{
    size_t need = 4 * ((n + 2) / 3);
    size_t o = 0;
    if (cap < need + 1)
        return 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = alphabet[(v >> 18) & 63u];
        out[o++] = alphabet[(v >> 12) & 63u];
        out[o++] = (i + 1 < n) ? alphabet[(v >> 6) & 63u] : '=';
        out[o++] = (i + 2 < n) ? alphabet[v & 63u] : '=';
    }
    out[o] = '\0';
    return o;
}

uint32_t util_base64_run(void)
{
    static const unsigned char msg[] = "hello from the accel compile cache example";
    char out[128];
    size_t n = demo_base64_encode(msg, sizeof msg - 1, out, sizeof out);
    return demo_crc32(out, n) ^ (uint32_t)n;
}
