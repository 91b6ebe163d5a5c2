/* CRC-32 (IEEE 802.3), table-driven, one byte at a time. */
#include "nnedge/common.h"

static uint32_t g_table[256];
static int g_init;

static void crc32_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        g_table[i] = c;
    }
    g_init = 1;
}

uint32_t nne_crc32(uint32_t crc, const void *data, size_t n) {
    /* The table is deterministic, so a benign race on first use writes identical values;
     * callers that need strict thread-safety call nne_crc32(0, NULL, 0) once first. */
    if (!g_init) crc32_init();
    const uint8_t *p = data;
    crc = ~crc;
    for (size_t i = 0; i < n; i++) crc = g_table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
    return ~crc;
}
