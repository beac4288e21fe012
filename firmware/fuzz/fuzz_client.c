/*
 * libFuzzer harness: the client's message handlers and state machine (firmware/client) on
 * arbitrary messages, past the CRC (a fuzzer cannot forge CRCs; the link's bit flips never get
 * past them, but a host can send anything well-framed).
 *
 * The input is a sequence of records: u8 kind, u8 sel, u16 seq, u16 len, then len payload bytes.
 *   kind < 0xF0: a message; its type is one of the protocol's (kind % their count) or, for
 *                kind >= 0xC0, kind itself. sel picks the session (bit 7: a wrong one) and the
 *                step id (low bits: the committed step, the next, the one in flight, ...);
 *                sel bit 6 fills in the CRC fields a real host would get right (TRAIN_STEP's
 *                base_crc, COMMIT's grad_crc) so the deeper paths are reached.
 *   kind 0xFE:   a PUT_WEIGHTS of a whole image: the initial one XOR the payload bytes, with
 *                its correct CRC, in chunks (so pushed values reach validation and training).
 *   kind 0xFF:   the payload goes through the client's frame decoder byte by byte (the wire).
 * Every input starts from the same state: the weights of the export, a fresh client.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "client_internal.h"
#include "ts_crc32.h"
#include "ts_le.h"

void fuzz_board_reset(void);

static const uint8_t types[] = {
    TS_MSG_HELLO_REQ, TS_MSG_SYNC,    TS_MSG_TRAIN_STEP,  TS_MSG_GRAD,  TS_MSG_COMMIT,
    TS_MSG_EVAL,      TS_MSG_GET_WEIGHTS, TS_MSG_PUT_WEIGHTS, TS_MSG_STATS_REQ, TS_MSG_TRAIN_STEP,
    TS_MSG_GRAD,      TS_MSG_GRAD,    TS_MSG_COMMIT,      TS_MSG_HEAD_IN,
};

static uint8_t initial[16384];
static uint32_t image_size;
static uint8_t image[16384];
static ts_frame_decoder_t wire;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    image_size = ts_state_image_size();
    if (image_size > sizeof initial) {
        abort(); /* a bigger model: raise the buffers */
    }
    ts_state_image_read(0, initial, image_size);
    return 0;
}

static uint32_t pick_step(uint8_t sel)
{
    switch (sel & 0x7u) {
    case 0: return ts_client.committed;
    case 1: return ts_client.committed + 1u;
    case 2: return ts_client.step;
    case 3: return ts_client.committed + 2u;
    case 4: return 0x80000001u;
    case 5: return ts_client.push_id;
    case 6: return ts_client.sync_nonce;
    default: return (uint32_t)sel << 8;
    }
}

static void handle(uint8_t type, uint8_t sel, uint16_t seq, const uint8_t *data, uint16_t len)
{
    ts_header_t h;
    h.type = type;
    h.session = (sel & 0x80u) ? ts_client.session ^ 0x1u : ts_client.session;
    h.step = pick_step(sel);
    h.seq = seq;
    h.length = len;
    uint8_t *payload = malloc(len ? len : 1u); /* exactly len bytes: ASan sees over-reads */
    if (payload == NULL) {
        abort();
    }
    memcpy(payload, data, len);
    if (sel & 0x40u) {
        if (type == TS_MSG_TRAIN_STEP && len >= TS_TRAIN_STEP_FIXED_SIZE) {
            ts_put_u32(payload + TS_TRAIN_STEP_OFF_BASE_CRC, ts_client.weights_crc);
        } else if (type == TS_MSG_COMMIT && len >= TS_COMMIT_FIXED_SIZE) {
            ts_put_u32(payload + TS_COMMIT_OFF_GRAD_CRC, ts_crc32_end(ts_client.grad_crc));
        }
    }
    ts_client_handle(&h, payload);
    free(payload);
}

static void push_image(uint8_t sel, const uint8_t *data, uint16_t len)
{
    for (uint32_t i = 0; i < image_size; ++i) {
        image[i] = (uint8_t)(initial[i] ^ (len ? data[i % len] : 0u));
    }
    const uint32_t crc = ts_crc32(image, image_size);
    uint8_t frame[TS_WIRE_MAX_PAYLOAD];
    for (uint32_t off = 0; off < image_size; off += TS_PUT_WEIGHTS_MAX_DATA) {
        uint32_t n = image_size - off;
        if (n > TS_PUT_WEIGHTS_MAX_DATA) {
            n = TS_PUT_WEIGHTS_MAX_DATA;
        }
        ts_put_u32(frame + TS_PUT_WEIGHTS_OFF_OFFSET, off);
        ts_put_u32(frame + TS_PUT_WEIGHTS_OFF_TOTAL, image_size);
        ts_put_u32(frame + TS_PUT_WEIGHTS_OFF_IMAGE_CRC, crc);
        ts_put_u32(frame + TS_PUT_WEIGHTS_OFF_STEP, sel);
        memcpy(frame + TS_PUT_WEIGHTS_FIXED_SIZE, image + off, n);
        ts_header_t h = {TS_MSG_PUT_WEIGHTS, ts_client.session, 0xFEFE0000u | sel, 0,
                         (uint16_t)(TS_PUT_WEIGHTS_FIXED_SIZE + n)};
        ts_client_handle(&h, frame);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_board_reset();
    ts_state_image_write(0, initial, image_size);
    ts_train_drop_staged();
    ts_client_init();
    ts_frame_decoder_init(&wire);

    size_t pos = 0;
    while (size - pos >= 6u) {
        const uint8_t kind = data[pos];
        const uint8_t sel = data[pos + 1];
        const uint16_t seq = ts_get_u16(data + pos + 2);
        size_t len = ts_get_u16(data + pos + 4) % (TS_WIRE_MAX_PAYLOAD + 1u);
        pos += 6u;
        if (len > size - pos) {
            len = size - pos;
        }
        const uint8_t *body = data + pos;
        pos += len;
        if (kind == 0xFFu) {
            for (size_t i = 0; i < len; ++i) {
                ts_header_t h;
                const uint8_t *payload;
                if (ts_frame_decoder_push(&wire, body[i], &h, &payload)) {
                    ts_client_handle(&h, payload);
                }
            }
        } else if (kind == 0xFEu) {
            push_image(sel, body, (uint16_t)len);
        } else {
            uint8_t type = kind >= 0xC0u ? kind : types[kind % sizeof types];
            handle(type, sel, seq, body, (uint16_t)len);
        }
    }
    return 0;
}
