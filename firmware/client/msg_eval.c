/* EVAL: u8 split (0 train, 1 test, 2 live), u8 flags, u16 start, u16 count. Streams SMASHED
 * frames; with flag TIMING then one EVAL_DONE with the cycles the forward passes took.
 * Train and test rows come from the shard in flash, live ones from ts_board_read_sample.
 * Reads only: a repeat computes the same frames again. */
#include "client_internal.h"
#include "ts_board.h"
#include "ts_le.h"

void ts_msg_eval(const ts_header_t *h, const uint8_t *payload)
{
    if (ts_client.state == TS_STATE_LOADING) {
        ts_client_error(h->step, TS_ERR_CODE_WEIGHTS_INCOMPLETE,
                        "EVAL while PUT_WEIGHTS is incomplete");
        return;
    }
    if (ts_client.state != TS_STATE_IDLE) {
        /* Evaluation would overwrite the outputs the step in flight keeps for backward. */
        ts_client_error(h->step, TS_ERR_CODE_UNEXPECTED, "EVAL while a step is in flight");
        return;
    }
    if (h->length != TS_EVAL_FIXED_SIZE) {
        ts_client_error(h->step, TS_ERR_CODE_BAD_REQUEST, "EVAL length mismatch");
        return;
    }
    const uint8_t flags = payload[TS_EVAL_OFF_FLAGS];
    if ((flags & ~TS_EVAL_FLAG_TIMING) != 0u) {
        ts_client_error(h->step, TS_ERR_CODE_BAD_REQUEST, "EVAL flags unknown");
        return;
    }
    uint8_t split = payload[TS_EVAL_OFF_SPLIT];
    uint16_t start = ts_get_u16(payload + TS_EVAL_OFF_START);
    uint16_t count = ts_get_u16(payload + TS_EVAL_OFF_COUNT);
    uint32_t n_rows = split == TS_SPLIT_TRAIN ? TS_MODEL_N_TRAIN : TS_MODEL_N_TEST;
    if (split > TS_SPLIT_LIVE || count == 0u ||
        (split != TS_SPLIT_LIVE && (uint32_t)start + count > n_rows)) {
        ts_client_error(h->step, TS_ERR_CODE_BAD_INDEX, "EVAL range out of bounds");
        return;
    }
#if TS_MODEL_HEAD
    ts_head_note_eval(h->step, split, start, count);
#endif
    uint32_t cycles = 0;
    if (split == TS_SPLIT_TRAIN) {
        cycles = ts_stream_forward(h->step, ts_train_x, ts_train_y, 0, start, count, 0);
    } else if (split == TS_SPLIT_TEST) {
        cycles = ts_stream_forward(h->step, ts_test_x, ts_test_y, 0, start, count, 0);
    } else {
        for (uint16_t i = 0; i < count; ++i) {
            uint8_t label = TS_LABEL_UNKNOWN;
            const int8_t *x = ts_board_read_sample((uint32_t)start + i, &label);
            if (!x) {
                ts_client_error(h->step, TS_ERR_CODE_BAD_INDEX, "no such live sample");
                return;
            }
            cycles += ts_forward_sample(h->step, i, count, x, label, 0);
        }
    }
    if (flags & TS_EVAL_FLAG_TIMING) {
        uint8_t *p = ts_tx_payload;
        ts_put_u16(p + TS_EVAL_DONE_OFF_COUNT, count);
        ts_put_u16(p + TS_EVAL_DONE_OFF_PAD, 0u);
        ts_put_u32(p + TS_EVAL_DONE_OFF_CYCLES, cycles);
        ts_client_send(TS_MSG_EVAL_DONE, h->step, 0, p, TS_EVAL_DONE_FIXED_SIZE);
    }
}
