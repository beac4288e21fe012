/*
 * libFuzzer harness: the frame decoder (ts_frame.c) and COBS (ts_cobs.c) on arbitrary bytes.
 *
 * Checks, beyond "no crash, no ASan/UBSan report": every dropped frame is counted once
 * (resyncs is the sum of the drop counters); every frame the decoder accepts is a frame the
 * encoder makes again byte for byte, and decodes again to itself; the whole-buffer COBS
 * decoder never writes past the buffer it is given. Build: firmware/fuzz/fuzz.mk.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ts_cobs.h"
#include "ts_frame.h"

static ts_frame_decoder_t decoder;
static ts_frame_decoder_t again;
static uint8_t wire[TS_WIRE_MAX_ENCODED];
static uint8_t payload_copy[TS_WIRE_MAX_PAYLOAD];

static void check(int ok)
{
    if (!ok) {
        abort();
    }
}

static uint32_t drops(const ts_frame_decoder_t *d)
{
    return d->crc_errors + d->cobs_errors + d->oversize + d->short_frames + d->bad_magic +
           d->bad_version + d->bad_length;
}

/* An accepted frame encodes to a frame that decodes to the same header and payload. */
static void round_trip(const ts_header_t *h, const uint8_t *payload)
{
    check(h->length <= TS_WIRE_MAX_PAYLOAD);
    memcpy(payload_copy, payload, h->length);
    size_t n = ts_frame_encode(h, payload_copy, h->length, wire, sizeof wire);
    check(n > 0 && n <= TS_WIRE_MAX_ENCODED && wire[n - 1] == 0u);
    ts_frame_decoder_init(&again);
    ts_header_t h2;
    const uint8_t *p2 = NULL;
    int got = 0;
    for (size_t i = 0; i < n; ++i) {
        if (ts_frame_decoder_push(&again, wire[i], &h2, &p2)) {
            check(i == n - 1);
            got = 1;
        }
    }
    check(got && h2.type == h->type && h2.session == h->session && h2.step == h->step &&
          h2.seq == h->seq && h2.length == h->length &&
          memcmp(p2, payload_copy, h->length) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ts_frame_decoder_init(&decoder);
    for (size_t i = 0; i < size; ++i) {
        ts_header_t h;
        const uint8_t *payload = NULL;
        /* A gap in the stream now and then: what the client's main loop does on a timeout. */
        if (i % 97u == 96u) {
            (void)ts_frame_decoder_expire(&decoder);
        }
        if (ts_frame_decoder_push(&decoder, data[i], &h, &payload)) {
            round_trip(&h, payload);
        }
        check(decoder.resyncs == drops(&decoder));
        check(decoder.raw_len <= TS_WIRE_MAX_RAW);
    }

    /* Whole-buffer COBS into an exactly-sized heap buffer: ASan sees any overrun. */
    size_t cap = size > 64u ? (size_t)data[0] * 4u : size;
    uint8_t *out = malloc(cap ? cap : 1u);
    check(out != NULL);
    size_t out_len = 0;
    ts_status_t st = ts_cobs_decode(data, size, out, cap, &out_len);
    check(st != TS_OK || out_len <= cap);
    free(out);
    return 0;
}
