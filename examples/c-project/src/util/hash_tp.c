/* hash_tp.c - hashes a few strings with the vendored tp_hash.h, found through
 * the second include directory (third_party/include). */
#include <string.h>

#include "tp_hash.h"
#include "util.h"

uint32_t util_hash_run(void)
{
    static const char *const words[] = {"accel", "compile", "cache", "farm", "store", "mirror"};
    uint32_t h = DEMO_FNV_OFFSET;

    h = demo_mix(h, TP_HASH_VERSION);
    for (size_t i = 0; i < DEMO_ARRAY_LEN(words); i++)
        h = demo_mix(h, tp_hash32(words[i], strlen(words[i]), (uint32_t)i));
    return h;
}
