/* CRC-32/ISO-HDLC with a 16-entry table, one nibble at a time (see ts_crc32.h). */
#include "ts_crc32.h"

/* crc32 of each nibble value, reflected polynomial 0xEDB88320. */
static const uint32_t nibble_table[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u,
    0x4DB26158u, 0x5005713Cu, 0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu,
    0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu,
};

uint32_t ts_crc32_update(uint32_t state, const uint8_t *data, size_t len)
{
    for (size_t i = 0; i < len; ++i) {
        state ^= data[i];
        state = (state >> 4) ^ nibble_table[state & 0x0Fu];
        state = (state >> 4) ^ nibble_table[state & 0x0Fu];
    }
    return state;
}

uint32_t ts_crc32(const uint8_t *data, size_t len)
{
    return ts_crc32_end(ts_crc32_update(ts_crc32_begin(), data, len));
}
