/* Frame encoder and byte-wise decoder (see ts_frame.h). */
#include "ts_frame.h"

#include <string.h>

#include "ts_cobs.h"
#include "ts_crc32.h"
#include "ts_le.h"

_Static_assert(sizeof(ts_frame_decoder_t) == TS_FRAME_DECODER_SIZE,
               "TS_FRAME_DECODER_SIZE is out of date");
_Static_assert(TS_WIRE_MAX_RAW <= UINT16_MAX, "raw_len is a uint16_t");

void ts_frame_pack_header(const ts_header_t *h, uint8_t out[TS_WIRE_HEADER_SIZE])
{
    ts_put_u16(out + TS_HDR_OFF_MAGIC, TS_WIRE_MAGIC);
    out[TS_HDR_OFF_VERSION] = TS_WIRE_VERSION;
    out[TS_HDR_OFF_TYPE] = h->type;
    ts_put_u32(out + TS_HDR_OFF_SESSION, h->session);
    ts_put_u32(out + TS_HDR_OFF_STEP, h->step);
    ts_put_u16(out + TS_HDR_OFF_SEQ, h->seq);
    ts_put_u16(out + TS_HDR_OFF_LENGTH, h->length);
}

size_t ts_frame_encode(const ts_header_t *h, const uint8_t *payload, size_t payload_len,
                       uint8_t *out, size_t cap)
{
    if (payload_len > TS_WIRE_MAX_PAYLOAD || cap == 0u) {
        return 0;
    }
    uint8_t head[TS_WIRE_HEADER_SIZE];
    ts_header_t copy = *h;
    copy.length = (uint16_t)payload_len;
    ts_frame_pack_header(&copy, head);

    uint32_t crc = ts_crc32_begin();
    crc = ts_crc32_update(crc, head, sizeof head);
    crc = ts_crc32_update(crc, payload, payload_len);
    uint8_t tail[TS_WIRE_CRC_SIZE];
    ts_put_u32(tail, ts_crc32_end(crc));

    ts_cobs_encoder_t e;
    ts_cobs_encoder_begin(&e, out, cap - 1u); /* keep one byte for the delimiter */
    ts_cobs_encoder_put(&e, head, sizeof head);
    ts_cobs_encoder_put(&e, payload, payload_len);
    ts_cobs_encoder_put(&e, tail, sizeof tail);
    size_t n = ts_cobs_encoder_end(&e);
    if (n == 0u) {
        return 0;
    }
    out[n] = 0u;
    return n + 1u;
}

void ts_frame_decoder_init(ts_frame_decoder_t *d)
{
    memset(d, 0, sizeof *d);
}

static void start_frame(ts_frame_decoder_t *d)
{
    d->raw_len = 0;
    d->code = 0;
    d->left = 0;
    d->skipping = 0;
}

static void append(ts_frame_decoder_t *d, uint8_t byte)
{
    if (d->raw_len >= TS_WIRE_MAX_RAW) {
        d->skipping = 1u; /* counted as oversize when the delimiter arrives */
        return;
    }
    d->raw[d->raw_len] = byte;
    d->raw_len++;
}

static int drop(ts_frame_decoder_t *d, uint32_t *counter)
{
    (*counter)++;
    d->resyncs++;
    return 0;
}

/* Checks the complete raw frame in d->raw[0..raw_len). */
static int finish_frame(ts_frame_decoder_t *d, ts_header_t *h, const uint8_t **payload)
{
    const size_t n = d->raw_len;
    if (d->skipping) {
        return drop(d, &d->oversize);
    }
    if (d->code == 0u) {
        return 0; /* empty frame: a sender's flush, not an error */
    }
    if (d->left != 0u) {
        return drop(d, &d->cobs_errors);
    }
    if (n < TS_WIRE_HEADER_SIZE + TS_WIRE_CRC_SIZE) {
        return drop(d, &d->short_frames);
    }
    const size_t body = n - TS_WIRE_CRC_SIZE;
    if (ts_crc32(d->raw, body) != ts_get_u32(d->raw + body)) {
        return drop(d, &d->crc_errors);
    }
    if (ts_get_u16(d->raw + TS_HDR_OFF_MAGIC) != TS_WIRE_MAGIC) {
        return drop(d, &d->bad_magic);
    }
    if (d->raw[TS_HDR_OFF_VERSION] != TS_WIRE_VERSION) {
        d->last_bad_version = d->raw[TS_HDR_OFF_VERSION];
        return drop(d, &d->bad_version);
    }
    const uint16_t length = ts_get_u16(d->raw + TS_HDR_OFF_LENGTH);
    if ((size_t)length != body - TS_WIRE_HEADER_SIZE) {
        return drop(d, &d->bad_length);
    }
    h->type = d->raw[TS_HDR_OFF_TYPE];
    h->session = ts_get_u32(d->raw + TS_HDR_OFF_SESSION);
    h->step = ts_get_u32(d->raw + TS_HDR_OFF_STEP);
    h->seq = ts_get_u16(d->raw + TS_HDR_OFF_SEQ);
    h->length = length;
    *payload = d->raw + TS_WIRE_HEADER_SIZE;
    d->frames_ok++;
    return 1;
}

int ts_frame_decoder_expire(ts_frame_decoder_t *d)
{
    if (d->code == 0u && !d->skipping) {
        return 0;
    }
    start_frame(d);
    return 1;
}

int ts_frame_decoder_push(ts_frame_decoder_t *d, uint8_t byte, ts_header_t *h,
                          const uint8_t **payload)
{
    if (byte == 0u) {
        int ok = finish_frame(d, h, payload);
        start_frame(d);
        return ok;
    }
    if (d->skipping) {
        return 0;
    }
    if (d->left > 0u) {
        append(d, byte);
        d->left--;
        return 0;
    }
    /* A code byte: the previous block, unless full (0xFF), ended with an implied zero. */
    if (d->code != 0u && d->code != 0xFFu) {
        append(d, 0u);
    }
    d->code = byte;
    d->left = (uint8_t)(byte - 1u);
    return 0;
}
