/* COBS encoder and whole-buffer decoder (see ts_cobs.h). */
#include "ts_cobs.h"

static void put_out(ts_cobs_encoder_t *e, uint8_t byte)
{
    if (e->len < e->cap) {
        e->out[e->len] = byte;
        e->len++;
    } else {
        e->full = 1u;
    }
}

/* Writes the open block's code and opens the next one (its code byte is reserved). */
static void close_block(ts_cobs_encoder_t *e)
{
    if (e->code_at < e->cap) {
        e->out[e->code_at] = e->code;
    }
    e->code_at = e->len;
    e->code = 1u;
    put_out(e, 0u);
}

void ts_cobs_encoder_begin(ts_cobs_encoder_t *e, uint8_t *out, size_t cap)
{
    e->out = out;
    e->cap = cap;
    e->len = 0;
    e->code_at = 0;
    e->code = 1u;
    e->full = 0u;
    put_out(e, 0u); /* the first block's code byte */
}

void ts_cobs_encoder_put(ts_cobs_encoder_t *e, const uint8_t *data, size_t len)
{
    for (size_t i = 0; i < len; ++i) {
        if (data[i] == 0u) {
            close_block(e);
        } else {
            put_out(e, data[i]);
            e->code++;
            if (e->code == 0xFFu) {
                close_block(e);
            }
        }
    }
}

size_t ts_cobs_encoder_end(ts_cobs_encoder_t *e)
{
    if (e->code_at < e->cap) {
        e->out[e->code_at] = e->code;
    }
    return e->full ? 0u : e->len;
}

size_t ts_cobs_encode(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
    ts_cobs_encoder_t e;
    ts_cobs_encoder_begin(&e, out, cap);
    ts_cobs_encoder_put(&e, in, len);
    return ts_cobs_encoder_end(&e);
}

ts_status_t ts_cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t cap,
                           size_t *out_len)
{
    size_t n = 0;
    size_t i = 0;
    *out_len = 0;
    while (i < len) {
        uint8_t code = in[i];
        if (code == 0u || (size_t)code > len - i) {
            return TS_ERR_FRAME; /* 0x00 inside, or the block runs past the end */
        }
        for (size_t k = 1; k < code; ++k) {
            if (in[i + k] == 0u) {
                return TS_ERR_FRAME;
            }
            if (n == cap) {
                return TS_ERR_ARG;
            }
            out[n++] = in[i + k];
        }
        i += code;
        if (code != 0xFFu && i < len) {
            if (n == cap) {
                return TS_ERR_ARG;
            }
            out[n++] = 0u;
        }
    }
    *out_len = n;
    return TS_OK;
}
