/* checksum.c - FNV-1a, the hash the other modules use for their results. */
#include <string.h>

#include "core.h"

uint32_t demo_checksum_bytes(const void *data, size_t len)
{
    const unsigned char *p = (const unsigned char *)data;
    uint32_t h = DEMO_FNV_OFFSET;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= DEMO_FNV_PRIME;
    }
    return h;
}

uint32_t demo_checksum_str(const char *s)
{
    return demo_checksum_bytes(s, strlen(s));
}

uint32_t core_checksum_run(void)
{
    /* FNV-1a of this sentence is the well-known 0x048fff90. */
    return demo_checksum_str("The quick brown fox jumps over the lazy dog");
}
