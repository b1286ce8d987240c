/* codec.h - CRC-32 and base64 (src/util/crc32.c, src/util/base64.c).
 * Self-contained on purpose: it does not include common.h, so the two codec
 * TUs do not recompile when common.h changes. */
#ifndef DEMO_CODEC_H
#define DEMO_CODEC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

uint32_t demo_crc32(const void *data, size_t len);
uint32_t util_crc32_run(void);

/* Writes NUL-terminated base64 into out; returns its length, or 0 if cap is too small. */
size_t demo_base64_encode(const unsigned char *in, size_t n, char *out, size_t cap);
uint32_t util_base64_run(void);

#ifdef __cplusplus
}
#endif

#endif /* DEMO_CODEC_H */
