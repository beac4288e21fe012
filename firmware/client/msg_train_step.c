/*
 * TRAIN_STEP: f32 lr, u16 count, u16 index[count]. Runs the forward pass of every sample and
 * streams the cut-layer outputs (SMASHED) as frames fill, without waiting for the host.
 */
#include "client_internal.h"
#include "ts_board.h"
#include "ts_le.h"

/* SMASHED: f32 scale, i8 zero point, u8 pad, u16 count, u8 label[count], i8 act[count * cut]. */
static void send_smashed(uint32_t step, uint16_t first, uint16_t n, const uint8_t *labels,
                         const int8_t *acts)
{
    const ts_fc_layer_t *cut = &ts_model_layers[TS_MODEL_N_LAYERS - 1];
    uint8_t *p = ts_tx_payload;
    ts_put_f32(p + 0, cut->out_q.scale);
    p[4] = (uint8_t)(int8_t)cut->out_q.zero_point;
    p[5] = 0u;
    ts_put_u16(p + 6, n);
    for (uint16_t i = 0; i < n; ++i) {
        p[8 + i] = labels[i];
    }
    uint8_t *a = p + 8 + n;
    for (uint32_t i = 0; i < (uint32_t)n * TS_MODEL_CUT_SIZE; ++i) {
        a[i] = (uint8_t)acts[i];
    }
    ts_client_send(TS_MSG_SMASHED, step, first, p,
                   (uint16_t)(8u + n + (uint32_t)n * TS_MODEL_CUT_SIZE));
}

static int8_t frame_acts[TS_SMASHED_PER_FRAME(TS_MODEL_CUT_SIZE) * TS_MODEL_CUT_SIZE];
static uint8_t frame_labels[TS_SMASHED_PER_FRAME(TS_MODEL_CUT_SIZE)];

void ts_stream_forward(uint32_t step, const int8_t *xs, const uint8_t *ys, const uint16_t *index,
                       uint16_t start, uint16_t n, int keep)
{
    const uint16_t per_frame = TS_SMASHED_PER_FRAME(TS_MODEL_CUT_SIZE);
    uint16_t in_frame = 0;
    uint16_t first = 0;
    for (uint16_t i = 0; i < n; ++i) {
        uint32_t row = index ? index[i] : (uint32_t)start + i;
        uint32_t t0 = ts_board_cycles();
        const int8_t *out = ts_train_forward(xs + row * TS_MODEL_INPUT_SIZE, keep ? (int)i : -1);
        ts_client.step_cycles += ts_board_cycles() - t0;
        for (uint32_t k = 0; k < TS_MODEL_CUT_SIZE; ++k) {
            frame_acts[(uint32_t)in_frame * TS_MODEL_CUT_SIZE + k] = out[k];
        }
        frame_labels[in_frame] = ys[row];
        ++in_frame;
        if (in_frame == per_frame || i + 1u == n) {
            send_smashed(step, first, in_frame, frame_labels, frame_acts);
            first = (uint16_t)(i + 1u);
            in_frame = 0;
        }
    }
}

void ts_msg_train_step(const ts_header_t *h, const uint8_t *payload)
{
    if (ts_client.state != TS_STATE_IDLE) {
        ts_client_error(h->step, TS_ERR_CODE_UNEXPECTED, "TRAIN_STEP while a step is in flight");
        return;
    }
    if (h->length < 6u) {
        ts_client_error(h->step, TS_ERR_CODE_BAD_REQUEST, "TRAIN_STEP too short");
        return;
    }
    float lr = ts_get_f32(payload);
    uint16_t count = ts_get_u16(payload + 4);
    if (count == 0u || count > TS_MODEL_MAX_BATCH) {
        ts_client_error(h->step, TS_ERR_CODE_BATCH_TOO_LARGE, "batch size out of range");
        return;
    }
    if (h->length != 6u + 2u * (uint32_t)count) {
        ts_client_error(h->step, TS_ERR_CODE_BAD_REQUEST, "TRAIN_STEP length mismatch");
        return;
    }
    if (!(lr >= 0.0f && lr < 1e6f)) { /* also refuses NaN */
        ts_client_error(h->step, TS_ERR_CODE_BAD_REQUEST, "learning rate not finite");
        return;
    }
    for (uint16_t i = 0; i < count; ++i) {
        uint16_t idx = ts_get_u16(payload + 6 + 2u * i);
        if (idx >= TS_MODEL_N_TRAIN) {
            ts_client_error(h->step, TS_ERR_CODE_BAD_INDEX, "sample index out of range");
            return;
        }
        ts_client.index[i] = idx;
    }
    ts_client.step = h->step;
    ts_client.lr = lr;
    ts_client.count = count;
    ts_client.next_grad = 0;
    ts_client.step_cycles = 0;
    ts_train_begin_batch();
    ts_stream_forward(h->step, ts_train_x, ts_train_y, ts_client.index, 0, count, 1);
    ts_client.state = TS_STATE_AWAIT_GRAD;
}
