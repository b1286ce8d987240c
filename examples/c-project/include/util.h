/* util.h - the utility library (src/util/), except the codecs (codec.h). */
#ifndef DEMO_UTIL_H
#define DEMO_UTIL_H

#include "common.h"

DEMO_BEGIN_C_DECLS

/* primes.c */
size_t demo_count_primes(uint32_t limit, uint32_t *sum);
uint32_t util_primes_run(void);

/* fib.c */
uint32_t demo_fib(unsigned n); /* modulo 2^32 */
uint32_t demo_gcd(uint32_t a, uint32_t b);
uint32_t util_fib_run(void);

/* stats.c */
uint32_t util_stats_run(void);

/* rle.c */
size_t demo_rle_encode(const unsigned char *in, size_t n, unsigned char *out, size_t cap);
uint32_t util_rle_run(void);

/* hash_tp.c: wraps the vendored third_party/include/tp_hash.h */
uint32_t util_hash_run(void);

DEMO_END_C_DECLS

#endif /* DEMO_UTIL_H */
