/*
 * GRAD: u16 count, u16 pad, f32 scale[count], i8 grad[count * cut]; seq = position of the first
 * sample in the minibatch. Stages gradients: each sample is back-propagated as it arrives, into
 * the float32 gradient sums (grad_w, grad_b), never into the weights; COMMIT applies the step
 * after checking the CRC of everything staged. Frames must arrive in order: a repeat of staged
 * samples is ignored (never applied twice), a frame after a gap is ignored (COMMIT then reports
 * GRAD_MISSING and the host sends them again).
 *
 * GRAD_PACKED (--wire): u16 count, u8 wire, u8 pad, u16 cut size, u16 pad, f32 scale[count],
 * then each sample coded (ts_pack.c; SPARSE: only the positions that sample's SMASHED_PACKED
 * named, kept in ts_sent_mask), staged the same way.
 */
#include "client_internal.h"
#include "ts_board.h"
#include "ts_crc32.h"
#include "ts_le.h"
#include "ts_pack.h"

static int8_t grad_row[TS_MODEL_CUT_SIZE];

/* The checks every gradient frame passes: the step in flight, seq next, count in range. Returns
 * the frame's sample count, or 0 (counted, or answered with an ERROR). */
static uint16_t accept(const ts_header_t *h, const uint8_t *payload, uint32_t fixed)
{
    if (ts_client.state != TS_STATE_AWAIT_GRAD || h->step != ts_client.step) {
        if (h->step == ts_client.committed && ts_client.has_done) {
            ts_client.stats.duplicates++; /* a late copy of a committed step's gradients */
        } else {
            ts_client.stats.stale++;
        }
        return 0;
    }
    if (h->length < fixed) {
        ts_client_error(h->step, TS_ERR_CODE_BAD_REQUEST, "GRAD too short");
        return 0;
    }
    uint16_t n = ts_get_u16(payload); /* count is the first field of both layouts */
    if (h->seq < ts_client.next_grad) {
        ts_client.stats.duplicates++;
        return 0;
    }
    if (h->seq > ts_client.next_grad) {
        ts_client.stats.stale++;
        return 0;
    }
    if (n == 0u || (uint32_t)h->seq + n > ts_client.count) {
        ts_client_error(h->step, TS_ERR_CODE_BAD_INDEX, "GRAD positions out of range");
        return 0;
    }
    return n;
}

/* 1 if every scale is finite and non-negative: a frame is staged whole or not at all. */
static int scales_ok(const ts_header_t *h, const uint8_t *scales, uint16_t n)
{
    for (uint16_t j = 0; j < n; ++j) {
        float s = ts_get_f32(scales + 4u * j);
        if (!(s >= 0.0f && s < 3.0e38f)) {
            ts_client_error(h->step, TS_ERR_CODE_BAD_REQUEST, "gradient scale not finite");
            return 0;
        }
    }
    return 1;
}

void ts_msg_grad(const ts_header_t *h, const uint8_t *payload)
{
    uint16_t n = accept(h, payload, TS_GRAD_FIXED_SIZE);
    if (n == 0u) {
        return;
    }
    if (h->length != TS_GRAD_FIXED_SIZE + (uint32_t)n * (4u + TS_MODEL_CUT_SIZE) ||
        ts_get_u16(payload + TS_GRAD_OFF_PAD) != 0u) {
        ts_client_error(h->step, TS_ERR_CODE_BAD_REQUEST, "GRAD length or padding mismatch");
        return;
    }
    const uint8_t *scales = payload + TS_GRAD_FIXED_SIZE;
    if (!scales_ok(h, scales, n)) {
        return;
    }
    ts_client.grad_crc = ts_crc32_update(ts_client.grad_crc, payload, h->length);
    const uint8_t *grads = scales + 4u * n;
    uint32_t t0 = ts_board_cycles();
    for (uint16_t j = 0; j < n; ++j) {
        for (uint32_t k = 0; k < TS_MODEL_CUT_SIZE; ++k) {
            grad_row[k] = (int8_t)grads[(uint32_t)j * TS_MODEL_CUT_SIZE + k];
        }
        ts_train_backward((uint16_t)(h->seq + j), grad_row, ts_get_f32(scales + 4u * j));
    }
    ts_client.step_cycles += ts_board_cycles() - t0;
    ts_client.next_grad = (uint16_t)(h->seq + n);
}

/* Reads every coded sample of a GRAD_PACKED frame; stages them when `stage`. Returns 1 if the
 * samples fill the body exactly. */
static int walk_packed(const ts_header_t *h, const uint8_t *payload, uint16_t n, int stage)
{
    const uint8_t *scales = payload + TS_GRAD_PACKED_FIXED_SIZE;
    const uint8_t *body = scales + 4u * n;
    const uint32_t size = h->length - (TS_GRAD_PACKED_FIXED_SIZE + 4u * (uint32_t)n);
    uint32_t pos = 0;
    for (uint16_t j = 0; j < n; ++j) {
        const uint16_t at = (uint16_t)(h->seq + j);
        int32_t used = ts_unpack_grad(body + pos, size - pos, ts_sent_mask_of(at),
                                      TS_MODEL_CUT_SIZE, (uint8_t)TS_MODEL_WIRE, grad_row);
        if (used < 0) {
            return 0;
        }
        pos += (uint32_t)used;
        if (stage) {
            ts_train_backward(at, grad_row, ts_get_f32(scales + 4u * j));
        }
    }
    return pos == size;
}

void ts_msg_grad_packed(const ts_header_t *h, const uint8_t *payload)
{
    uint16_t n = accept(h, payload, TS_GRAD_PACKED_FIXED_SIZE);
    if (n == 0u) {
        return;
    }
    if (payload[TS_GRAD_PACKED_OFF_WIRE] != TS_MODEL_WIRE || TS_MODEL_WIRE == 0u ||
        ts_get_u16(payload + TS_GRAD_PACKED_OFF_CUT_SIZE) != TS_MODEL_CUT_SIZE) {
        ts_client_error(h->step, TS_ERR_CODE_BAD_REQUEST,
                        "GRAD_PACKED wire format or cut size is not this export's");
        return;
    }
    if (payload[TS_GRAD_PACKED_OFF_PAD] != 0u || ts_get_u16(payload + TS_GRAD_PACKED_OFF_PAD2) != 0u ||
        h->length < TS_GRAD_PACKED_FIXED_SIZE + 4u * (uint32_t)n) {
        ts_client_error(h->step, TS_ERR_CODE_BAD_REQUEST, "GRAD_PACKED length or padding mismatch");
        return;
    }
    const uint8_t *scales = payload + TS_GRAD_PACKED_FIXED_SIZE;
    if (!scales_ok(h, scales, n)) {
        return;
    }
    if (!walk_packed(h, payload, n, 0)) {
        ts_client_error(h->step, TS_ERR_CODE_BAD_REQUEST,
                        "GRAD_PACKED samples do not fill the frame as coded");
        return;
    }
    ts_client.grad_crc = ts_crc32_update(ts_client.grad_crc, payload, h->length);
    uint32_t t0 = ts_board_cycles();
    (void)walk_packed(h, payload, n, 1);
    ts_client.step_cycles += ts_board_cycles() - t0;
    ts_client.next_grad = (uint16_t)(h->seq + n);
}
