/*
 * libFuzzer harness: the frame decoder (ts_frame.c) and COBS (ts_cobs.c) on arbitrary bytes.
 *
 * Checks, beyond "no crash, no ASan/UBSan report": every dropped frame is counted once
 * (resyncs is the sum of the drop counters); every frame the decoder accepts is a frame the
 * encoder makes again byte for byte, and decodes again to itself; the whole-buffer COBS
 * decoder never writes past the buffer it is given. Sealed frames (ts_secure.c): every accepted
 * frame is also opened with a fixed session key (a refused one is left byte for byte as it
 * came, and only a frame that really was sealed with the key opens), and its payload sealed
 * and opened again round trips. Build: firmware/fuzz/fuzz.mk.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ts_cobs.h"
#include "ts_frame.h"
#include "ts_pack.h"
#include "ts_wire.h"
#include "ts_secure.h"

static ts_frame_decoder_t decoder;
static ts_frame_decoder_t again;
static uint8_t wire[TS_WIRE_MAX_ENCODED];
static uint8_t payload_copy[TS_WIRE_MAX_WIRE_PAYLOAD];
static uint8_t body[TS_WIRE_MAX_WIRE_PAYLOAD];
static const uint8_t session_key[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static ts_secure_t board_in;  /* opens the input's frames */
static ts_secure_t host_end;  /* seals their payloads again ... */
static ts_secure_t board_end; /* ... and opens them */

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

/* Opening a frame with the fixed key: refused frames stay as they came; a clear payload sealed
 * by the host end opens to itself at the board end. */
static void secure(const ts_header_t *h, const uint8_t *payload)
{
    memcpy(body, payload, h->length);
    uint16_t n = 0;
    const ts_header_t opened = *h;
    ts_seal_result_t r = ts_secure_open(&board_in, TS_DIR_TO_BOARD, body, &opened, &n);
    if (r != TS_SEAL_OK) {
        check(memcmp(body, payload, h->length) == 0);
    } else {
        check(n + TS_WIRE_SEAL_OVERHEAD == h->length);
    }
    if (h->length > TS_WIRE_MAX_PAYLOAD) {
        return;
    }
    size_t m = ts_secure_encode(&host_end, TS_DIR_TO_BOARD, h, payload, h->length, wire,
                                sizeof wire);
    check(m > 0);
    ts_frame_decoder_init(&again);
    ts_header_t h2;
    const uint8_t *p2 = NULL;
    int got = 0;
    for (size_t i = 0; i < m; ++i) {
        got |= ts_frame_decoder_push(&again, wire[i], &h2, &p2);
    }
    check(got && (h2.type & TS_WIRE_SEALED));
    memcpy(body, p2, h2.length);
    check(ts_secure_open(&board_end, TS_DIR_TO_BOARD, body, &h2, &n) == TS_SEAL_OK);
    check(n == h->length && memcmp(body + TS_WIRE_SEAL_COUNTER_SIZE, payload, n) == 0);
}

/* An accepted frame encodes to a frame that decodes to the same header and payload. */
static void round_trip(const ts_header_t *h, const uint8_t *payload)
{
    check(h->length <= TS_WIRE_MAX_WIRE_PAYLOAD);
    secure(h, payload);
    if (h->length > TS_WIRE_MAX_PAYLOAD) {
        return; /* only a sealed frame is this long: its clear encoding does not exist */
    }
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
    ts_secure_start(&board_in, session_key, 0x5354u);
    ts_secure_start(&board_end, session_key, 0x5354u);
    ts_secure_start(&host_end, session_key, 0x5354u);
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

    /* The wire formats' codec (ts_pack.c) on the input: a gradient body read beside
     * activations taken from the input too, and activations packed into an exactly-sized heap
     * buffer (ASan sees any overrun). */
    if (size >= 2u) {
        const uint32_t n = (uint32_t)(size / 2u);
        const int8_t zp = (int8_t)(-128 + (data[0] % 241u)); /* 127 - zp >= 15 */
        int8_t *g = malloc(n);
        check(g != NULL);
        for (uint8_t fmt = 2u; fmt <= 14u; fmt = (uint8_t)(fmt + 2u)) {
            int32_t used = ts_unpack_grad(data + n, (uint32_t)(size - n), data, n, fmt, g);
            check(used <= (int32_t)(size - n));
            const uint32_t worst = ((fmt & TS_WIRE_SPARSE) ? (n + 7u) / 8u : 0u) +
                                   ((fmt & TS_WIRE_ACTS4) ? (n + 1u) / 2u : n);
            uint8_t *packed = malloc(worst ? worst : 1u);
            check(packed != NULL);
            check(ts_pack_acts((const int8_t *)data, n, zp, fmt, packed) <= worst);
            free(packed);
        }
        free(g);
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
