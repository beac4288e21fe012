/*
 * HEAD_IN (U-shaped exports only): u8 mode, u8 pad, u16 count, f32 scale[count],
 * i8 act[count * TS_MODEL_HEAD_SIZE]; seq = position of the first sample. The server segment's
 * last activations come back to the board, which finishes the forward pass in its head
 * (head.c) against its own labels and answers HEAD_OUT.
 *
 * TRAIN, for the step in flight: in order like GRAD. A frame at the next position stages the
 * head's weight gradient and answers the gradient of the activations, the summed loss and the
 * correct predictions; a repeat of staged positions (the host lost the answer) answers the same
 * again without staging anything twice; a frame past a gap is ignored (the host sends again).
 * EVAL, for the last EVAL request (same step id): counts correct predictions of its samples.
 * Neither answer carries a label or a logit.
 */
#include "client_internal.h"

#if TS_MODEL_HEAD

#include "ts_board.h"
#include "ts_le.h"

static struct {
    uint16_t next;       /**< TRAIN: position of the next HEAD_IN the step stages */
    uint8_t eval_valid;  /**< 1: the fields below describe the last EVAL */
    uint8_t eval_split;  /**< its split (TRAIN or TEST; LIVE rows have no label here) */
    uint16_t eval_start; /**< its first row */
    uint16_t eval_count; /**< its number of rows */
    uint32_t eval_step;  /**< its request id */
} head;

void ts_head_begin_step(void)
{
    head.next = 0;
    ts_head_drop_staged();
}

int ts_head_complete(void)
{
    return head.next == ts_client.count;
}

void ts_head_note_eval(uint32_t step, uint8_t split, uint16_t start, uint16_t count)
{
    head.eval_valid = 1u;
    head.eval_step = step;
    head.eval_split = split;
    head.eval_start = start;
    head.eval_count = count;
}

/* The label of position pos of the request being answered; 0xFF: none. */
static uint8_t label_of(int train, uint32_t pos)
{
    if (train) {
        return ts_train_y[ts_client.index[pos]];
    }
    const uint32_t row = (uint32_t)head.eval_start + pos;
    return head.eval_split == TS_SPLIT_TRAIN ? ts_train_y[row] : ts_test_y[row];
}

void ts_msg_head_in(const ts_header_t *h, const uint8_t *payload)
{
    if (h->length < TS_HEAD_IN_FIXED_SIZE) {
        ts_client_error(h->step, TS_ERR_CODE_BAD_REQUEST, "HEAD_IN too short");
        return;
    }
    const uint8_t mode = payload[TS_HEAD_IN_OFF_MODE];
    const uint16_t n = ts_get_u16(payload + TS_HEAD_IN_OFF_COUNT);
    const int train = mode == TS_HEAD_MODE_TRAIN;
    if ((mode != TS_HEAD_MODE_TRAIN && mode != TS_HEAD_MODE_EVAL) ||
        payload[TS_HEAD_IN_OFF_PAD] != 0u ||
        h->length != TS_HEAD_IN_FIXED_SIZE + (uint32_t)n * (4u + TS_MODEL_HEAD_SIZE) ||
        n > TS_HEAD_PER_FRAME(TS_MODEL_HEAD_SIZE)) {
        ts_client_error(h->step, TS_ERR_CODE_BAD_REQUEST, "HEAD_IN mode, length or padding");
        return;
    }
    int stage = 0;
    if (train) {
        if (ts_client.state != TS_STATE_AWAIT_GRAD || h->step != ts_client.step) {
            ts_client.stats.stale++;
            return;
        }
        if (h->seq > head.next) {
            ts_client.stats.stale++; /* an earlier frame was lost: the host sends them again */
            return;
        }
        if (n == 0u || (uint32_t)h->seq + n > ts_client.count) {
            ts_client_error(h->step, TS_ERR_CODE_BAD_INDEX, "HEAD_IN positions out of range");
            return;
        }
        stage = h->seq == head.next;
        if (!stage && (uint32_t)h->seq + n > head.next) {
            ts_client.stats.stale++; /* overlaps staged and unstaged positions: not the host's */
            return;
        }
        if (!stage) {
            ts_client.stats.duplicates++; /* answered again, staged once */
        }
    } else {
        if (!head.eval_valid || h->step != head.eval_step) {
            ts_client.stats.stale++;
            return;
        }
        if (n == 0u || (uint32_t)h->seq + n > head.eval_count) {
            ts_client_error(h->step, TS_ERR_CODE_BAD_INDEX, "HEAD_IN positions out of range");
            return;
        }
        if (head.eval_split == TS_SPLIT_LIVE) {
            ts_client_error(h->step, TS_ERR_CODE_UNEXPECTED,
                            "HEAD_IN for live samples: their labels are not known");
            return;
        }
    }
    const uint8_t *scales = payload + TS_HEAD_IN_FIXED_SIZE;
    for (uint16_t j = 0; j < n; ++j) {
        const float s = ts_get_f32(scales + 4u * j);
        if (!(s >= 0.0f && s < 3.0e38f)) {
            ts_client_error(h->step, TS_ERR_CODE_BAD_REQUEST, "HEAD_IN scale not finite");
            return;
        }
    }
    const int8_t *acts = (const int8_t *)(scales + 4u * n);
    uint8_t *out = ts_tx_payload;
    uint8_t *out_scales = out + TS_HEAD_OUT_FIXED_SIZE;
    int8_t *out_grads = (int8_t *)(out_scales + 4u * n);
    uint16_t correct = 0;
    float loss_sum = 0.0f;
    const uint32_t t0 = ts_board_cycles();
    for (uint16_t j = 0; j < n; ++j) {
        const uint32_t pos = (uint32_t)h->seq + j;
        const uint8_t label = label_of(train, pos);
        const int8_t *x = acts + (uint32_t)j * TS_MODEL_HEAD_SIZE;
        const float s_h = ts_get_f32(scales + 4u * j);
        if (!train) {
            correct = (uint16_t)(correct + ts_head_sample(x, s_h, label, 1u, 0, 0, 0, 0));
            continue;
        }
        float s_dh = 0.0f;
        float loss = 0.0f;
        int8_t *dh = out_grads + (uint32_t)j * TS_MODEL_HEAD_SIZE;
        correct = (uint16_t)(correct + ts_head_sample(x, s_h, label, ts_client.count, dh, &s_dh,
                                                      &loss, stage));
        ts_put_f32(out_scales + 4u * j, s_dh);
        loss_sum = loss_sum + loss;
    }
    ts_client.step_cycles += ts_board_cycles() - t0;
    out[TS_HEAD_OUT_OFF_MODE] = mode;
    out[TS_HEAD_OUT_OFF_PAD] = 0u;
    ts_put_u16(out + TS_HEAD_OUT_OFF_COUNT, n);
    ts_put_u16(out + TS_HEAD_OUT_OFF_CORRECT, correct);
    ts_put_u16(out + TS_HEAD_OUT_OFF_PAD2, 0u);
    ts_put_f32(out + TS_HEAD_OUT_OFF_LOSS_SUM, loss_sum);
    if (stage) {
        head.next = (uint16_t)(h->seq + n);
    }
    ts_client_send(TS_MSG_HEAD_OUT, h->step, h->seq, out,
                   (uint16_t)(TS_HEAD_OUT_FIXED_SIZE +
                              (train ? (uint32_t)n * (4u + TS_MODEL_HEAD_SIZE) : 0u)));
}

#endif
