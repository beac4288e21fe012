/*
 * GRAD: u16 count, u16 pad, f32 scale[count], i8 grad[count * cut]; seq = position of the first
 * sample in the minibatch. Gradients must arrive in order; each sample is back-propagated as it
 * arrives, and the minibatch is applied after its last sample (then STEP_DONE).
 */
#include "client_internal.h"
#include "ts_board.h"
#include "ts_le.h"

static int8_t grad_row[TS_MODEL_CUT_SIZE];

static void send_step_done(uint32_t step)
{
    const ts_fc_layer_t *cut = &ts_model_layers[TS_MODEL_N_LAYERS - 1];
    uint8_t *p = ts_tx_payload;
    ts_put_u32(p + 0, ts_weights_blob_crc());
    ts_put_f32(p + 4, cut->range_min);
    ts_put_f32(p + 8, cut->range_max);
    ts_put_u32(p + 12, ts_client.step_cycles);
    ts_client_send(TS_MSG_STEP_DONE, step, 0, p, 16u);
}

void ts_msg_grad(const ts_header_t *h, const uint8_t *payload)
{
    if (ts_client.state != TS_STATE_AWAIT_GRAD || h->step != ts_client.step) {
        ts_client_error(h->step, TS_ERR_CODE_UNEXPECTED, "GRAD for a step that is not in flight");
        return;
    }
    if (h->length < 4u) {
        ts_client_error(h->step, TS_ERR_CODE_BAD_REQUEST, "GRAD too short");
        return;
    }
    uint16_t n = ts_get_u16(payload);
    if (h->seq < ts_client.next_grad) {
        return; /* a retransmission of gradients already applied: never apply twice */
    }
    if (h->seq != ts_client.next_grad || n == 0u || (uint32_t)h->seq + n > ts_client.count) {
        ts_client_error(h->step, TS_ERR_CODE_BAD_INDEX, "GRAD positions out of order or range");
        return;
    }
    if (h->length != 4u + (uint32_t)n * (4u + TS_MODEL_CUT_SIZE)) {
        ts_client_error(h->step, TS_ERR_CODE_BAD_REQUEST, "GRAD length mismatch");
        return;
    }
    /* Check every scale before touching any weight: a step is applied whole or not at all. */
    for (uint16_t j = 0; j < n; ++j) {
        float s = ts_get_f32(payload + 4 + 4u * j);
        if (!(s >= 0.0f && s < 3.0e38f)) {
            ts_client_error(h->step, TS_ERR_CODE_BAD_REQUEST, "gradient scale not finite");
            return;
        }
    }
    const uint8_t *grads = payload + 4 + 4u * n;
    uint32_t t0 = ts_board_cycles();
    for (uint16_t j = 0; j < n; ++j) {
        for (uint32_t k = 0; k < TS_MODEL_CUT_SIZE; ++k) {
            grad_row[k] = (int8_t)grads[(uint32_t)j * TS_MODEL_CUT_SIZE + k];
        }
        ts_train_backward((uint16_t)(h->seq + j), grad_row, ts_get_f32(payload + 4 + 4u * j));
    }
    ts_client.next_grad = (uint16_t)(h->seq + n);
    if (ts_client.next_grad == ts_client.count) {
        ts_train_commit(ts_client.lr);
        ts_client.step_cycles += ts_board_cycles() - t0;
        ts_client.state = TS_STATE_IDLE;
        send_step_done(h->step);
    } else {
        ts_client.step_cycles += ts_board_cycles() - t0;
    }
}
