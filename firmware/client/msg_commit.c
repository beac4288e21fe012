/*
 * COMMIT: u32 grad_crc, u16 count, u16 pad. Applies the staged step whole, only if its step id is
 * the one in flight, every gradient is staged and their CRC is grad_crc (the CRC-32 of the
 * step's GRAD payloads in order); then STEP_DONE with the CRC of the new weights. A repeat of
 * the last committed step's COMMIT re-sends its STEP_DONE: a step is never applied twice.
 */
#include "client_internal.h"
#include "ts_board.h"
#include "ts_crc32.h"
#include "ts_le.h"

void ts_resend_step_done(void)
{
    ts_client.stats.retransmits++;
    ts_client_send(TS_MSG_STEP_DONE, ts_client.committed, 0u, ts_client.done,
                   TS_STEP_DONE_FIXED_SIZE);
}

void ts_msg_commit(const ts_header_t *h, const uint8_t *payload)
{
    if (h->length != TS_COMMIT_FIXED_SIZE || ts_get_u16(payload + TS_COMMIT_OFF_PAD) != 0u) {
        ts_client_error(h->step, TS_ERR_CODE_BAD_REQUEST, "COMMIT length or padding mismatch");
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
    if (ts_client.state != TS_STATE_AWAIT_GRAD || h->step != ts_client.step) {
        ts_client_error(h->step, TS_ERR_CODE_NOT_IN_FLIGHT,
                        "COMMIT for a step the board does not hold: run the step again");
        return;
    }
    if (ts_get_u16(payload + TS_COMMIT_OFF_COUNT) != ts_client.count) {
        ts_client_error(h->step, TS_ERR_CODE_BAD_REQUEST, "COMMIT count is not the batch's");
        return;
    }
    if (ts_client.next_grad < ts_client.count) {
        ts_client_error(h->step, TS_ERR_CODE_GRAD_MISSING,
                        "COMMIT before every gradient arrived: send them again");
        return;
    }
#if TS_MODEL_HEAD
    if (!ts_head_complete()) {
        ts_client_error(h->step, TS_ERR_CODE_UNEXPECTED,
                        "COMMIT before every sample went through the head (HEAD_IN)");
        return;
    }
#endif
    if (ts_crc32_end(ts_client.grad_crc) != ts_get_u32(payload + TS_COMMIT_OFF_GRAD_CRC)) {
        /* Staged from other gradients than the host's: drop them all and take them again. */
        ts_client.stats.grad_crc_errors++;
        ts_train_drop_staged();
        ts_client.next_grad = 0;
        ts_client.grad_crc = ts_crc32_begin();
        ts_client_error(h->step, TS_ERR_CODE_GRAD_CRC,
                        "staged gradients do not match COMMIT's CRC: dropped, send them again");
        return;
    }
    if (!ts_train_commit_ok(ts_client.lr)) {
        ts_client_abort_step();
        ts_client.stats.aborts++;
        ts_client_error(h->step, TS_ERR_CODE_BAD_REQUEST,
                        "the step would push weights past +-1e6: refused (lower the lr)");
        return;
    }
    uint32_t t0 = ts_board_cycles();
    ts_train_commit(ts_client.lr);
    ts_client.step_cycles += ts_board_cycles() - t0;
    ts_client.state = TS_STATE_IDLE;
    ts_client.committed = h->step;
    ts_client.stats.commits++;

    const ts_params_t *cut = ts_cut_params();
    uint8_t *p = ts_client.done;
    ts_client.weights_crc = ts_weights_blob_crc();
    ts_put_u32(p + TS_STEP_DONE_OFF_WEIGHTS_CRC, ts_client.weights_crc);
    ts_put_f32(p + TS_STEP_DONE_OFF_RANGE_MIN, cut->range_min);
    ts_put_f32(p + TS_STEP_DONE_OFF_RANGE_MAX, cut->range_max);
    ts_put_u32(p + TS_STEP_DONE_OFF_CYCLES, ts_client.step_cycles);
    ts_client.has_done = 1u;
    ts_client_send(TS_MSG_STEP_DONE, h->step, 0u, p, TS_STEP_DONE_FIXED_SIZE);
}
