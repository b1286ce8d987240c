/* common.h - basics shared by most of the example: fixed-width types, C/C++
 * linkage macros and the hash-folding helper every module uses to turn its
 * result into one 32-bit value. Included directly or through core.h, util.h,
 * modules.h or demo.hpp; README.md lists the translation units that see it. */
#ifndef DEMO_COMMON_H
#define DEMO_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#define DEMO_BEGIN_C_DECLS extern "C" {
#define DEMO_END_C_DECLS }
#else
#define DEMO_BEGIN_C_DECLS
#define DEMO_END_C_DECLS
#endif

#define DEMO_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#define DEMO_FNV_OFFSET 2166136261u
#define DEMO_FNV_PRIME 16777619u

/* Fold a 32-bit value into a running FNV-1a hash, one byte at a time from the
 * least significant, so the result is the same on every byte order. */
static inline uint32_t demo_mix(uint32_t h, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        h ^= (v >> (8 * i)) & 0xffu;
        h *= DEMO_FNV_PRIME;
    }
    return h;
}

/* Deterministic pseudo-random numbers: a 32-bit LCG (Numerical Recipes). */
static inline uint32_t demo_lcg(uint32_t *state)
{
    *state = *state * 1664525u + 1013904223u;
    return *state;
}

#endif /* DEMO_COMMON_H */
