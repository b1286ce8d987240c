/* stats.c - integer summary statistics over a pseudo-random sample.
 *
 * THIS FILE WARNS ON PURPOSE: `unused_scratch` below is never used, so
 * -Wall gives "unused variable 'unused_scratch' [-Wunused-variable]". Tests
 * use it to check that a compile cache replays warnings on a hit. Do not fix. */
#include "core.h"
#include "util.h"

uint32_t util_stats_run(void)
{
    uint32_t sample[257];
    uint32_t rng = 2024u;
    uint32_t sum = 0, min = UINT32_MAX, max = 0;
    int unused_scratch = 42;

    for (size_t i = 0; i < DEMO_ARRAY_LEN(sample); i++) {
        uint32_t v = demo_lcg(&rng) % 10000u;
        sample[i] = v;
        sum += v;
        if (v < min)
            min = v;
        if (v > max)
            max = v;
    }
    uint32_t n = (uint32_t)DEMO_ARRAY_LEN(sample);
    uint32_t mean = sum / n;
    uint32_t var = 0;
    for (size_t i = 0; i < DEMO_ARRAY_LEN(sample); i++) {
        uint32_t d = sample[i] > mean ? sample[i] - mean : mean - sample[i];
        var += d * d / n;
    }
    demo_sort_u32(sample, DEMO_ARRAY_LEN(sample));
    uint32_t median = sample[n / 2];

    uint32_t h = DEMO_FNV_OFFSET;
    h = demo_mix(h, mean);
    h = demo_mix(h, var);
    h = demo_mix(h, min);
    h = demo_mix(h, max);
    return demo_mix(h, median);
}
