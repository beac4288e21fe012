/*
 * GRAD: u16 count, u16 pad, f32 scale[count], i8 grad[count * cut]; seq = position of the first
 * sample in the minibatch. Stages gradients: each sample is back-propagated as it arrives, into
 * the float32 gradient sums (grad_w, grad_b), never into the weights; COMMIT applies the step
 * after checking the CRC of everything staged. Frames must arrive in order: a repeat of staged
 * samples is ignored (never applied twice), a frame after a gap is ignored (COMMIT then reports
 * GRAD_MISSING and the host sends them again).
 */
#include "client_internal.h"
#include "ts_board.h"
#include "ts_crc32.h"
#include "ts_le.h"

static int8_t grad_row[TS_MODEL_CUT_SIZE];

void ts_msg_grad(const ts_header_t *h, const uint8_t *payload)
{
    if (ts_client.state != TS_STATE_AWAIT_GRAD || h->step != ts_client.step) {
        if (h->step == ts_client.committed && ts_client.has_done) {
            ts_client.stats.duplicates++; /* a late copy of a committed step's gradients */
        } else {
            ts_client.stats.stale++;
        }
        return;
    }
    if (h->length < TS_GRAD_FIXED_SIZE) {
        ts_client_error(h->step, TS_ERR_CODE_BAD_REQUEST, "GRAD too short");
        return;
    }
    uint16_t n = ts_get_u16(payload + TS_GRAD_OFF_COUNT);
    if (h->seq < ts_client.next_grad) {
        ts_client.stats.duplicates++;
        return;
    }
    if (h->seq > ts_client.next_grad) {
        ts_client.stats.stale++;
        return;
    }
    if (n == 0u || (uint32_t)h->seq + n > ts_client.count) {
        ts_client_error(h->step, TS_ERR_CODE_BAD_INDEX, "GRAD positions out of range");
        return;
    }
    if (h->length != TS_GRAD_FIXED_SIZE + (uint32_t)n * (4u + TS_MODEL_CUT_SIZE) ||
        ts_get_u16(payload + TS_GRAD_OFF_PAD) != 0u) {
        ts_client_error(h->step, TS_ERR_CODE_BAD_REQUEST, "GRAD length or padding mismatch");
        return;
    }
    /* Check every scale before staging anything: a frame is staged whole or not at all. */
    const uint8_t *scales = payload + TS_GRAD_FIXED_SIZE;
    for (uint16_t j = 0; j < n; ++j) {
        float s = ts_get_f32(scales + 4u * j);
        if (!(s >= 0.0f && s < 3.0e38f)) {
            ts_client_error(h->step, TS_ERR_CODE_BAD_REQUEST, "gradient scale not finite");
            return;
        }
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
