/*
 * CRC-32/ISO-HDLC, the CRC of zlib.crc32, Ethernet and PNG (reflected poly 0xEDB88320, init and
 * xorout 0xFFFFFFFF; check value 0xCBF43926 for "123456789").
 *
 * One half-byte at a time from a 16-entry table (64 bytes of flash): two lookups per byte instead
 * of the bitwise loop's eight shift-and-xor rounds, at a 16th of the flash of the usual 1 KB
 * byte table. For a ~11.5 KB/s UART and a weight blob of tens of KB per step that is fast
 * enough; the 960 bytes are worth more on a small part.
 *
 *     uint32_t c = ts_crc32_begin();
 *     c = ts_crc32_update(c, a, na);
 *     c = ts_crc32_update(c, b, nb);
 *     uint32_t crc = ts_crc32_end(c);    == ts_crc32(a|b) == zlib.crc32(a + b)
 */
#ifndef TS_CRC32_H
#define TS_CRC32_H

#include <stddef.h>
#include <stdint.h>

/** Running state before any data. */
static inline uint32_t ts_crc32_begin(void)
{
    return 0xFFFFFFFFu;
}

/** Folds len bytes into the running state (data may be NULL when len is 0). */
uint32_t ts_crc32_update(uint32_t state, const uint8_t *data, size_t len);

/** The CRC of everything folded into state. */
static inline uint32_t ts_crc32_end(uint32_t state)
{
    return state ^ 0xFFFFFFFFu;
}

/** CRC-32 of one buffer. */
uint32_t ts_crc32(const uint8_t *data, size_t len);

#endif
