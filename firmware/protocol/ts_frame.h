/*
 * Frames of the wire protocol (docs/protocol.md, Framing): COBS(header | payload | crc32) 0x00.
 * Host twin: core/protocol/frame.py; both give the same frames and counters for a byte stream.
 */
#ifndef TS_FRAME_H
#define TS_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "ts_wire.h"

/** A frame header; magic and version are implied (TS_WIRE_MAGIC, TS_WIRE_VERSION). */
typedef struct {
    uint8_t type;     /**< TS_MSG_* */
    uint32_t session; /**< random per device boot */
    uint32_t step;    /**< train step, or the request id of an eval/weights request */
    uint16_t seq;     /**< first sample (or chunk) this frame carries */
    uint16_t length;  /**< payload bytes */
} ts_header_t;

/** The 16 header bytes of h as they go on the wire (magic and version included). */
void ts_frame_pack_header(const ts_header_t *h, uint8_t out[TS_WIRE_HEADER_SIZE]);

/**
 * Encodes header + payload + crc, COBS, trailing 0x00 into out (cap bytes; TS_WIRE_MAX_ENCODED
 * always suffices). Returns bytes written, 0 if it does not fit or payload_len exceeds
 * TS_WIRE_MAX_PAYLOAD. h->length is taken from payload_len. payload may be NULL if len is 0.
 */
size_t ts_frame_encode(const ts_header_t *h, const uint8_t *payload, size_t payload_len,
                       uint8_t *out, size_t cap);

/**
 * Byte-wise frame decoder. COBS is decoded on the fly into raw[], so the only buffer is one raw
 * frame (TS_WIRE_MAX_RAW bytes); no encoded copy is kept. Every invalid frame is dropped and
 * counted once, when its delimiter arrives, under the first check it fails, in this order:
 * oversize, cobs_errors, short_frames, crc_errors, bad_magic, bad_version, bad_length.
 * resyncs counts all dropped frames. Empty frames (0x00 0x00) are ignored and not counted.
 * Size: TS_FRAME_DECODER_SIZE bytes (2132 with TS_WIRE_MAX_RAW = 2088), same on every target.
 */
typedef struct {
    uint32_t frames_ok;    /**< valid frames returned */
    uint32_t crc_errors;   /**< CRC mismatch */
    uint32_t cobs_errors;  /**< the last COBS block was cut short by the delimiter */
    uint32_t oversize;     /**< more than TS_WIRE_MAX_RAW decoded bytes */
    uint32_t short_frames; /**< fewer than header + crc bytes */
    uint32_t bad_magic;    /**< CRC fine, magic is not TS_WIRE_MAGIC */
    uint32_t bad_version;  /**< CRC and magic fine, version is not TS_WIRE_VERSION */
    uint32_t bad_length;   /**< header length field disagrees with the frame size */
    uint32_t resyncs;      /**< dropped frames, all reasons */
    uint16_t raw_len;      /**< decoded bytes of the frame in progress */
    uint8_t code;          /**< current COBS block's code byte; 0: no byte since the delimiter */
    uint8_t left;          /**< data bytes still due in the current block */
    uint8_t skipping;      /**< 1: frame in progress is oversize, wait for the delimiter */
    uint8_t last_bad_version; /**< version of the last bad_version frame: when a push bumps
                                   bad_version, the client can answer ERROR 6 naming it */
    uint8_t reserved[2];
    _Alignas(4) uint8_t raw[TS_WIRE_MAX_RAW]; /**< header | payload | crc; payload 4-aligned */
} ts_frame_decoder_t;

#define TS_FRAME_DECODER_SIZE (44u + ((TS_WIRE_MAX_RAW + 3u) & ~3u))

/** Resets state and counters. */
void ts_frame_decoder_init(ts_frame_decoder_t *d);

/**
 * Feeds one received byte. Returns 1 when a valid frame completed: *h filled, *payload points
 * into the decoder (h->length bytes, 4-byte aligned, valid until the next push). 0 otherwise
 * (invalid frames are counted and dropped).
 */
int ts_frame_decoder_push(ts_frame_decoder_t *d, uint8_t byte, ts_header_t *h,
                          const uint8_t **payload);

/**
 * Drops the frame in progress, if any, without counting it (the caller counts: it knows why,
 * e.g. no byte arrived for too long, so the rest of the frame and its delimiter were lost).
 * Returns 1 if a frame was in progress. Counters are kept.
 */
int ts_frame_decoder_expire(ts_frame_decoder_t *d);

#endif
