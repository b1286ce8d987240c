/* crc32.c - table-driven CRC-32 (IEEE 802.3, reflected, poly 0xEDB88320).
 * Includes only codec.h, not common.h. */
#include "codec.h"

static uint32_t crc_table[256];
static int crc_table_ready;

static void crc32_init(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = (c & 1u) ? 0xedb88320u ^ (c >> 1) : c >> 1;
        crc_table[n] = c;
    }
    crc_table_ready = 1;
}

uint32_t demo_crc32(const void *data, size_t len)
{
    const unsigned char *p = (const unsigned char *)data;
    uint32_t c = 0xffffffffu;
    if (!crc_table_ready)
        crc32_init();
    for (size_t i = 0; i < len; i++)
        c = crc_table[(c ^ p[i]) & 0xffu] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

uint32_t util_crc32_run(void)
{
    /* The standard check value: CRC-32 of "123456789" is 0xcbf43926. */
    static const char check[] = "123456789";
    return demo_crc32(check, sizeof check - 1);
}
