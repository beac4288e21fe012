/*
 * TRAIN_STEP: f32 lr, u32 base_crc, u16 batch, u16 count, u16 index[count]; seq = position of
 * index[0] in the batch (a batch of more than TS_TRAIN_STEP_MAX_COUNT samples takes several
 * frames, in order). base_crc is the CRC of the weights the host expects the step to start
 * from: a board holding other weights (it rebooted, or ran ahead) refuses the step
 * (BASE_MISMATCH) instead of training the wrong weights. Once every index is in, runs the
 * forward pass of every sample and streams the cut-layer outputs (SMASHED) as frames fill,
 * without waiting for the host.
 *
 * Idempotent, keyed by (session, step, seq): a repeat of the step in flight re-sends its
 * SMASHED frames from the kept outputs (nothing is recomputed, no range observed twice); a
 * repeat of the last committed step re-sends its STEP_DONE; an older step is ignored.
 */
#include "client_internal.h"
#include "ts_board.h"
#include "ts_crc32.h"
#include "ts_le.h"
#include "ts_pack.h"

static int8_t frame_acts[TS_CLIENT_SMASHED_PER_FRAME_INT8 * TS_MODEL_CUT_SIZE];
static uint8_t frame_labels[TS_CLIENT_SMASHED_PER_FRAME_INT8];

#if TS_MODEL_WIRE & TS_WIRE_SPARSE
#define SENT_MASK_BYTES ((TS_MODEL_CUT_SIZE + 7u) / 8u)
static uint8_t sent_mask[TS_MODEL_MAX_BATCH][SENT_MASK_BYTES];

const uint8_t *ts_sent_mask_of(uint16_t pos)
{
    return sent_mask[pos];
}
#endif

#if TS_MODEL_WIRE
/* SMASHED_PACKED (--wire): f32 scale, i8 zero point, u8 flags, u16 count, u8 wire, u8 pad,
 * u16 cut size, u8 label[count] (absent with NO_LABELS), then each sample coded (ts_pack.c). */
static void send_smashed(uint32_t step, uint16_t first, uint16_t n)
{
    const ts_quant_t q = ts_cut_params()->out_q;
    uint8_t *p = ts_tx_payload;
    ts_put_f32(p + TS_SMASHED_PACKED_OFF_SCALE, q.scale);
    p[TS_SMASHED_PACKED_OFF_ZERO_POINT] = (uint8_t)(int8_t)q.zero_point;
    ts_put_u16(p + TS_SMASHED_PACKED_OFF_COUNT, n);
    p[TS_SMASHED_PACKED_OFF_WIRE] = (uint8_t)TS_MODEL_WIRE;
    p[TS_SMASHED_PACKED_OFF_PAD] = 0u;
    ts_put_u16(p + TS_SMASHED_PACKED_OFF_CUT_SIZE, (uint16_t)TS_MODEL_CUT_SIZE);
    uint32_t pos = TS_SMASHED_PACKED_FIXED_SIZE;
#if TS_MODEL_HEAD
    p[TS_SMASHED_PACKED_OFF_FLAGS] = TS_SMASHED_FLAG_NO_LABELS;
#else
    p[TS_SMASHED_PACKED_OFF_FLAGS] = 0u;
    for (uint16_t i = 0; i < n; ++i) {
        p[pos++] = frame_labels[i];
    }
#endif
    for (uint16_t i = 0; i < n; ++i) {
        const uint32_t at = pos;
        pos += ts_pack_acts(frame_acts + (uint32_t)i * TS_MODEL_CUT_SIZE, TS_MODEL_CUT_SIZE,
                            (int8_t)q.zero_point, (uint8_t)TS_MODEL_WIRE, p + pos);
#if TS_MODEL_WIRE & TS_WIRE_SPARSE
        /* A training step's sample: keep the bitmap it sent, where its gradient comes back. */
        if (ts_client.state == TS_STATE_AWAIT_GRAD && (uint32_t)first + i < TS_MODEL_MAX_BATCH) {
            for (uint32_t b = 0; b < SENT_MASK_BYTES; ++b) {
                sent_mask[first + i][b] = p[at + b];
            }
        }
#else
        (void)at;
#endif
    }
    ts_client_send(TS_MSG_SMASHED_PACKED, step, first, p, (uint16_t)pos);
}
#else
/* SMASHED: f32 scale, i8 zero point, u8 flags, u16 count, u8 label[count], i8 act[count * cut].
 * A U-shaped export's frames have flag NO_LABELS and no label field: its labels stay here. */
static void send_smashed(uint32_t step, uint16_t first, uint16_t n)
{
    const ts_quant_t q = ts_cut_params()->out_q;
    uint8_t *p = ts_tx_payload;
    ts_put_f32(p + TS_SMASHED_OFF_SCALE, q.scale);
    p[TS_SMASHED_OFF_ZERO_POINT] = (uint8_t)(int8_t)q.zero_point;
    ts_put_u16(p + TS_SMASHED_OFF_COUNT, n);
#if TS_MODEL_HEAD
    p[TS_SMASHED_OFF_FLAGS] = TS_SMASHED_FLAG_NO_LABELS;
    const uint16_t n_labels = 0;
#else
    p[TS_SMASHED_OFF_FLAGS] = 0u;
    const uint16_t n_labels = n;
    for (uint16_t i = 0; i < n; ++i) {
        p[TS_SMASHED_FIXED_SIZE + i] = frame_labels[i];
    }
#endif
    uint8_t *a = p + TS_SMASHED_FIXED_SIZE + n_labels;
    for (uint32_t i = 0; i < (uint32_t)n * TS_MODEL_CUT_SIZE; ++i) {
        a[i] = (uint8_t)frame_acts[i];
    }
    ts_client_send(TS_MSG_SMASHED, step, first, p,
                   (uint16_t)(TS_SMASHED_FIXED_SIZE + n_labels + (uint32_t)n * TS_MODEL_CUT_SIZE));
}
#endif

/* Adds sample i of n to the frame being filled; sends the frame when it is full or last. */
static void put_sample(uint32_t step, uint16_t i, uint16_t n, uint8_t label, const int8_t *out)
{
    const uint16_t per_frame = TS_CLIENT_SMASHED_PER_FRAME;
    const uint16_t in_frame = (uint16_t)(i % per_frame);
#if TS_MODEL_NOISE
    ts_noise_apply(frame_acts + (uint32_t)in_frame * TS_MODEL_CUT_SIZE, out, TS_MODEL_CUT_SIZE,
                   step, i);
#else
    for (uint32_t k = 0; k < TS_MODEL_CUT_SIZE; ++k) {
        frame_acts[(uint32_t)in_frame * TS_MODEL_CUT_SIZE + k] = out[k];
    }
#endif
    frame_labels[in_frame] = label;
    if (in_frame + 1u == per_frame || i + 1u == n) {
        send_smashed(step, (uint16_t)(i - in_frame), (uint16_t)(in_frame + 1u));
    }
}

uint32_t ts_forward_sample(uint32_t step, uint16_t i, uint16_t n, const int8_t *x, uint8_t label,
                           int keep)
{
    uint32_t t0 = ts_board_cycles();
    const int8_t *out = ts_train_forward(x, keep ? (int)i : -1);
    uint32_t cycles = ts_board_cycles() - t0;
    put_sample(step, i, n, label, out);
    return cycles;
}

uint32_t ts_stream_forward(uint32_t step, const int8_t *xs, const uint8_t *ys,
                           const uint16_t *index, uint16_t start, uint16_t n, int keep)
{
    uint32_t cycles = 0;
    for (uint16_t i = 0; i < n; ++i) {
        uint32_t row = index ? index[i] : (uint32_t)start + i;
        cycles += ts_forward_sample(step, i, n, xs + row * TS_MODEL_INPUT_SIZE, ys[row], keep);
    }
    return cycles;
}

void ts_resend_smashed(void)
{
    ts_client.stats.retransmits++;
    for (uint16_t i = 0; i < ts_client.count; ++i) {
        put_sample(ts_client.step, i, ts_client.count, ts_train_y[ts_client.index[i]],
                   ts_train_cut_output(i));
    }
}

/* Checks every field; 1 if the frame is well formed (nothing is stored yet). */
static int check(const ts_header_t *h, const uint8_t *payload, float *lr, uint32_t *base,
                 uint16_t *batch, uint16_t *count)
{
    if (h->length < TS_TRAIN_STEP_FIXED_SIZE) {
        ts_client_error(h->step, TS_ERR_CODE_BAD_REQUEST, "TRAIN_STEP too short");
        return 0;
    }
    *lr = ts_get_f32(payload + TS_TRAIN_STEP_OFF_LR);
    *base = ts_get_u32(payload + TS_TRAIN_STEP_OFF_BASE_CRC);
    *batch = ts_get_u16(payload + TS_TRAIN_STEP_OFF_BATCH);
    *count = ts_get_u16(payload + TS_TRAIN_STEP_OFF_COUNT);
    if (*batch == 0u || *batch > TS_MODEL_MAX_BATCH) {
        ts_client_error(h->step, TS_ERR_CODE_BATCH_TOO_LARGE, "batch size out of range");
        return 0;
    }
    if (h->length != TS_TRAIN_STEP_FIXED_SIZE + 2u * (uint32_t)*count) {
        ts_client_error(h->step, TS_ERR_CODE_BAD_REQUEST, "TRAIN_STEP length mismatch");
        return 0;
    }
    if (*count == 0u || (uint32_t)h->seq + *count > *batch) {
        ts_client_error(h->step, TS_ERR_CODE_BAD_INDEX, "TRAIN_STEP positions out of range");
        return 0;
    }
    if (!(*lr >= 0.0f && *lr < 1e6f)) { /* also refuses NaN */
        ts_client_error(h->step, TS_ERR_CODE_BAD_REQUEST, "learning rate not finite");
        return 0;
    }
    for (uint16_t i = 0; i < *count; ++i) {
        if (ts_get_u16(payload + TS_TRAIN_STEP_FIXED_SIZE + 2u * i) >= TS_MODEL_N_TRAIN) {
            ts_client_error(h->step, TS_ERR_CODE_BAD_INDEX, "sample index out of range");
            return 0;
        }
    }
    return 1;
}

/* Takes the indices at positions seq.. (seq == n_index); starts the forward pass when all are in. */
static void take(const ts_header_t *h, const uint8_t *payload, uint16_t count)
{
    for (uint16_t i = 0; i < count; ++i) {
        ts_client.index[h->seq + i] = ts_get_u16(payload + TS_TRAIN_STEP_FIXED_SIZE + 2u * i);
    }
    ts_client.n_index = (uint16_t)(h->seq + count);
    if (ts_client.n_index == ts_client.count) {
        ts_client.step_cycles = 0;
        ts_train_begin_batch();
        ts_client.state = TS_STATE_AWAIT_GRAD;
        ts_client.step_cycles += ts_stream_forward(ts_client.step, ts_train_x, ts_train_y,
                                                   ts_client.index, 0, ts_client.count, 1);
    }
}

void ts_msg_train_step(const ts_header_t *h, const uint8_t *payload)
{
    if (ts_client.state == TS_STATE_LOADING) {
        ts_client_error(h->step, TS_ERR_CODE_WEIGHTS_INCOMPLETE,
                        "TRAIN_STEP while PUT_WEIGHTS is incomplete");
        return;
    }
    float lr;
    uint32_t base;
    uint16_t batch;
    uint16_t count;
    if (!check(h, payload, &lr, &base, &batch, &count)) {
        return;
    }
    if (h->step == ts_client.committed && ts_client.has_done) {
        ts_client.stats.duplicates++;
        ts_resend_step_done();
        return;
    }
    if (h->step <= ts_client.committed) {
        ts_client.stats.stale++;
        return;
    }
    const int in_flight = ts_client.state != TS_STATE_IDLE && h->step == ts_client.step;
    if (in_flight) {
        if (batch != ts_client.count || lr != ts_client.lr || base != ts_client.weights_crc) {
            ts_client_error(h->step, TS_ERR_CODE_BAD_REQUEST,
                            "TRAIN_STEP differs from the step in flight with this id");
            return;
        }
        if (ts_client.state == TS_STATE_AWAIT_GRAD) {
            ts_client.stats.duplicates++;
            ts_resend_smashed();
        } else if (h->seq < ts_client.n_index) {
            ts_client.stats.duplicates++;
        } else if (h->seq > ts_client.n_index) {
            ts_client.stats.stale++; /* an earlier chunk was lost: the host sends them again */
        } else {
            take(h, payload, count);
        }
        return;
    }
    /* A new step: whatever was in flight is dropped (its weights were never touched). */
    if (ts_client_abort_step()) {
        ts_client.stats.aborts++;
    }
    if (h->seq != 0u) {
        ts_client.stats.stale++; /* its first chunk was lost: the host sends them again */
        return;
    }
    if (base != ts_client.weights_crc) {
        ts_client_error(h->step, TS_ERR_CODE_BASE_MISMATCH,
                        "the board's weights are not the ones this step starts from");
        return;
    }
    ts_client.step = h->step;
    ts_client.lr = lr;
    ts_client.count = batch;
    ts_client.n_index = 0;
    ts_client.next_grad = 0;
    ts_client.grad_crc = ts_crc32_begin();
#if TS_MODEL_HEAD
    ts_head_begin_step();
#endif
    ts_client.state = TS_STATE_COLLECT;
    take(h, payload, count);
}
