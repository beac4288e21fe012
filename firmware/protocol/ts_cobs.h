/*
 * Consistent Overhead Byte Stuffing (host twin: core/protocol/cobs.py). The encoding has no
 * 0x00, so 0x00 can end a frame. The encoder always closes its last block, so n bytes encode
 * to at most TS_COBS_MAX_ENCODED(n) bytes; the decoder also accepts the form without a final
 * 0x01 after a full block. The frame decoder (ts_frame.c) decodes on the fly, byte by byte;
 * these are for whole buffers.
 */
#ifndef TS_COBS_H
#define TS_COBS_H

#include <stddef.h>
#include <stdint.h>

#include "ts_support.h"

/** Worst-case encoded size of n bytes (no delimiter). */
#define TS_COBS_MAX_ENCODED(n) ((n) + (n) / 254u + 1u)

/** Streaming encoder into a caller-owned buffer; see ts_cobs_encoder_begin. */
typedef struct {
    uint8_t *out;    /**< destination */
    size_t cap;      /**< its size in bytes */
    size_t len;      /**< bytes written so far, including the open block's code byte */
    size_t code_at;  /**< position of the open block's code byte */
    uint8_t code;    /**< 1 + data bytes in the open block */
    uint8_t full;    /**< 1 once something did not fit: the result is discarded */
} ts_cobs_encoder_t;

/** Starts an encoding into out[0..cap). */
void ts_cobs_encoder_begin(ts_cobs_encoder_t *e, uint8_t *out, size_t cap);

/** Appends len bytes of data (NULL allowed when len is 0). */
void ts_cobs_encoder_put(ts_cobs_encoder_t *e, const uint8_t *data, size_t len);

/** Closes the last block. Returns the encoded length (no delimiter), 0 if it did not fit. */
size_t ts_cobs_encoder_end(ts_cobs_encoder_t *e);

/** Encodes in[0..len) into out (cap bytes). Returns the encoded length, 0 if it does not fit. */
size_t ts_cobs_encode(const uint8_t *in, size_t len, uint8_t *out, size_t cap);

/**
 * Decodes in[0..len) (no delimiter) into out (cap bytes), *out_len = decoded length.
 * TS_ERR_FRAME for a 0x00 inside or a truncated block, TS_ERR_ARG if out is too small.
 */
ts_status_t ts_cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t cap,
                           size_t *out_len);

#endif
