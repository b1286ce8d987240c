/* module_table.c - every C module, in the order both programs run them. */
#include "codec.h"
#include "core.h"
#include "modules.h"
#include "util.h"

const demo_module demo_modules[] = {
    {"core.checksum", core_checksum_run},
    {"core.arena", core_arena_run},
    {"core.vec", core_vec_run},
    {"core.strbuf", core_strbuf_run},
    {"core.sort", core_sort_run},
    {"core.matrix", core_matrix_run},
    {"core.version", core_version_run},
    {"util.crc32", util_crc32_run},
    {"util.base64", util_base64_run},
    {"util.rle", util_rle_run},
    {"util.primes", util_primes_run},
    {"util.fib", util_fib_run},
    {"util.stats", util_stats_run},
    {"util.hash", util_hash_run},
};

const size_t demo_module_count = DEMO_ARRAY_LEN(demo_modules);
