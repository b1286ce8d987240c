/* rle.c - run-length encoding as (count, byte) pairs; limits from rare.h. */
#include "rare.h"
#include "core.h"
#include "util.h"

size_t demo_rle_encode(const unsigned char *in, size_t n, unsigned char *out, size_t cap)
{
    size_t o = 0;
    size_t i = 0;
    while (i < n) {
        size_t run = 1;
        while (i + run < n && run < RARE_RLE_MAX_RUN && in[i + run] == in[i])
            run++;
        if (o + 2 > cap)
            return 0;
        out[o++] = (unsigned char)run;
        out[o++] = in[i];
        i += run;
    }
    return o;
}

uint32_t util_rle_run(void)
{
    unsigned char in[RARE_RLE_INPUT_LEN];
    unsigned char out[2 * RARE_RLE_INPUT_LEN];
    uint32_t rng = 1234u;
    size_t i = 0;

    while (i < sizeof in) {
        uint32_t r = demo_lcg(&rng);
        size_t run = 1 + (r >> 8) % 17u;
        unsigned char byte = (unsigned char)('a' + (r >> 24) % 4u);
        while (run-- > 0 && i < sizeof in)
            in[i++] = byte;
    }
    size_t n = demo_rle_encode(in, sizeof in, out, sizeof out);
    return demo_mix(demo_checksum_bytes(out, n), (uint32_t)n);
}
