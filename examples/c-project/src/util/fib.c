/* fib.c - Fibonacci numbers modulo 2^32 and Euclid's gcd. */
#include "util.h"

uint32_t demo_fib(unsigned n)
{
    uint32_t a = 0, b = 1;
    while (n-- > 0) {
        uint32_t t = a + b;
        a = b;
        b = t;
    }
    return a;
}

uint32_t demo_gcd(uint32_t a, uint32_t b)
{
    while (b != 0) {
        uint32_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

uint32_t util_fib_run(void)
{
    uint32_t h = DEMO_FNV_OFFSET;
    uint32_t rng = 99u;

    for (unsigned n = 0; n < 100; n += 7)
        h = demo_mix(h, demo_fib(n));
    for (int i = 0; i < 32; i++) {
        uint32_t a = (demo_lcg(&rng) >> 12) * 6u;
        uint32_t b = (demo_lcg(&rng) >> 12) * 4u;
        h = demo_mix(h, demo_gcd(a, b));
    }
    return h;
}
