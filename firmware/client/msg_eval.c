/* EVAL: u8 split (0 train, 1 test), u8 pad, u16 start, u16 count. Streams SMASHED frames.
 * Reads only: a repeat computes the same frames again. */
#include "client_internal.h"
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
    if (h->length != TS_EVAL_FIXED_SIZE || payload[TS_EVAL_OFF_PAD] != 0u) {
        ts_client_error(h->step, TS_ERR_CODE_BAD_REQUEST, "EVAL length or padding mismatch");
        return;
    }
    uint8_t split = payload[TS_EVAL_OFF_SPLIT];
    uint16_t start = ts_get_u16(payload + TS_EVAL_OFF_START);
    uint16_t count = ts_get_u16(payload + TS_EVAL_OFF_COUNT);
    uint32_t n_rows = split == TS_SPLIT_TRAIN ? TS_MODEL_N_TRAIN : TS_MODEL_N_TEST;
    if (split > TS_SPLIT_TEST || count == 0u || (uint32_t)start + count > n_rows) {
        ts_client_error(h->step, TS_ERR_CODE_BAD_INDEX, "EVAL range out of bounds");
        return;
    }
    if (split == TS_SPLIT_TRAIN) {
        ts_stream_forward(h->step, ts_train_x, ts_train_y, 0, start, count, 0);
    } else {
        ts_stream_forward(h->step, ts_test_x, ts_test_y, 0, start, count, 0);
    }
}
