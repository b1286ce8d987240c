/* tp_hash.h - a tiny vendored, header-only hash (Murmur-style mixing with the
 * MurmurHash3 32-bit finalizer). It lives in a second include directory,
 * third_party/include/, which the Makefile passes after include/:
 *   -Iinclude -Ithird_party/include -I$(BUILD)/generated
 * so a tp_hash.h placed in include/ (or in a directory given through
 * CPPFLAGS, which comes first) would shadow this one. */
#ifndef TP_HASH_H
#define TP_HASH_H

#include <stddef.h>
#include <stdint.h>

#define TP_HASH_VERSION 3

static inline uint32_t tp_fmix32(uint32_t h)
{
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

static inline uint32_t tp_hash32(const void *data, size_t len, uint32_t seed)
{
    const unsigned char *p = (const unsigned char *)data;
    uint32_t h = seed ^ (uint32_t)len;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x5bd1e995u;
        h ^= h >> 15;
    }
    return tp_fmix32(h);
}

#endif /* TP_HASH_H */
