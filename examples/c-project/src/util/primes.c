/* primes.c - sieve of Eratosthenes. */
#include <string.h>

#include "util.h"

#define PRIME_LIMIT 10000u

size_t demo_count_primes(uint32_t limit, uint32_t *sum)
{
    static unsigned char composite[PRIME_LIMIT + 1];
    size_t count = 0;
    uint32_t s = 0;

    if (limit > PRIME_LIMIT)
        limit = PRIME_LIMIT;
    memset(composite, 0, sizeof composite);
    for (uint32_t i = 2; i <= limit; i++) {
        if (composite[i])
            continue;
        count++;
        s += i;
        for (uint32_t j = i * i; j <= limit; j += i)
            composite[j] = 1;
    }
    if (sum != NULL)
        *sum = s;
    return count;
}

uint32_t util_primes_run(void)
{
    uint32_t sum = 0;
    size_t count = demo_count_primes(PRIME_LIMIT, &sum); /* 1229 primes, sum 5736396 */
    return demo_mix(demo_mix(DEMO_FNV_OFFSET, (uint32_t)count), sum);
}
