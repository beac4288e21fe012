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
 *   kind 0xFF:   the payload goes through the client's frame decoder byte by byte (the wire),
 *                and the paired link's filter (pairing.c) as on the board.
 *   kind 0xFD:   (paired images) a sealed message, as a host holding the key sends it: the
 *                harness opens a session first (a genuine OPEN), then seals payload[1..) as
 *                the message types[payload[0]] (step from sel) and sends it over the wire path;
 *                sel bit 7 flips the bit (seq % 8) of byte (seq / 8) of the sealed frame (a
 *                forgery), sel bit 6 sends the same sealed bytes twice (a replay).
 * Every input starts from the same state: the weights of the export, a fresh client.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "client_internal.h"
#include "ts_aead.h"
#include "ts_crc32.h"
#include "ts_le.h"
#include "ts_secure.h"

void fuzz_board_reset(void);

static const uint8_t types[] = {
    TS_MSG_HELLO_REQ, TS_MSG_SYNC,    TS_MSG_TRAIN_STEP,  TS_MSG_GRAD,  TS_MSG_COMMIT,
    TS_MSG_EVAL,      TS_MSG_GET_WEIGHTS, TS_MSG_PUT_WEIGHTS, TS_MSG_STATS_REQ, TS_MSG_TRAIN_STEP,
    TS_MSG_GRAD,      TS_MSG_GRAD,    TS_MSG_COMMIT,      TS_MSG_HEAD_IN, TS_MSG_GRAD_PACKED,
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

static void wire_in(const uint8_t *bytes, size_t n)
{
    for (size_t i = 0; i < n; ++i) {
        ts_header_t h;
        const uint8_t *payload;
        if (ts_frame_decoder_push(&wire, bytes[i], &h, &payload) &&
            ts_pairing_accept(&h, wire.raw, &payload)) {
            ts_client_handle(&h, payload);
        }
    }
}

#if TS_MODEL_PAIRED
static ts_secure_t host_end;
static uint8_t sealed_frame[TS_WIRE_MAX_ENCODED];

/* A genuine OPEN, as core/protocol/secure.py makes it, unless the session is open. */
static void open_session(void)
{
    if (ts_pairing_open()) {
        return;
    }
    static const uint8_t host_nonce[TS_WIRE_OPEN_NONCE_SIZE] = {7, 6, 5, 4, 3, 2, 1, 0};
    uint8_t key[32];
    ts_secure_derive(ts_pair_key, ts_pairing_challenge(), host_nonce, key);
    ts_header_t h = {TS_MSG_OPEN, ts_client.session, 0x0F0Fu, 0u, TS_OPEN_FIXED_SIZE};
    uint8_t aad[TS_WIRE_HEADER_SIZE + TS_WIRE_OPEN_NONCE_SIZE];
    ts_frame_pack_header(&h, aad);
    memcpy(aad + TS_WIRE_HEADER_SIZE, host_nonce, sizeof host_nonce);
    uint8_t nonce[TS_AEAD_NONCE_SIZE] = {0};
    ts_put_u32(nonce, ts_client.session);
    ts_put_u32(nonce + 4, TS_DIR_TO_BOARD);
    uint8_t payload[TS_OPEN_FIXED_SIZE];
    memcpy(payload + TS_OPEN_OFF_HOST_NONCE, host_nonce, sizeof host_nonce);
    ts_aead_t a;
    ts_aead_init(&a, key, nonce, aad, (uint32_t)sizeof aad);
    ts_aead_finish(&a, payload + TS_OPEN_OFF_TAG);
    size_t n = ts_frame_encode(&h, payload, sizeof payload, sealed_frame, sizeof sealed_frame);
    wire_in(sealed_frame, n);
    if (!ts_pairing_open()) {
        abort(); /* the board refused a genuine OPEN */
    }
    ts_secure_start(&host_end, key, ts_client.session);
}

static void sealed(uint8_t sel, uint16_t seq, const uint8_t *data, uint16_t len)
{
    if (len == 0u) {
        return;
    }
    open_session();
    ts_header_t h = {types[data[0] % sizeof types], ts_client.session, pick_step(sel), seq, 0};
    size_t n = ts_secure_encode(&host_end, TS_DIR_TO_BOARD, &h, data + 1, len - 1u,
                                sealed_frame, sizeof sealed_frame);
    if (n == 0u) {
        abort();
    }
    if ((sel & 0x80u) && (size_t)(seq / 8u) < n - 1u) {
        sealed_frame[seq / 8u] ^= (uint8_t)(1u << (seq % 8u));
    }
    wire_in(sealed_frame, n);
    if (sel & 0x40u) {
        wire_in(sealed_frame, n);
    }
}
#endif

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
            wire_in(body, len);
#if TS_MODEL_PAIRED
        } else if (kind == 0xFDu) {
            sealed(sel, seq, body, (uint16_t)len);
#endif
        } else if (kind == 0xFEu) {
            push_image(sel, body, (uint16_t)len);
        } else {
            uint8_t type = kind >= 0xC0u ? kind : types[kind % sizeof types];
            handle(type, sel, seq, body, (uint16_t)len);
        }
    }
    return 0;
}
