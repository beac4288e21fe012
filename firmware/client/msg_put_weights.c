/*
 * PUT_WEIGHTS: u32 offset, u32 total, u32 image_crc, u32 step, u8 data[]; the header's step id is
 * the push's nonce. Writes a whole state image (docs/protocol.md, "Weights"), in order from
 * offset 0, over the board's own: the host restores a board that rebooted (or ran ahead of the
 * host's checkpoint). The first chunk drops the step in flight and enters LOADING: no training
 * or evaluation until the last chunk arrived, the image's CRC is image_crc and every value is
 * one training can run on; then `step` becomes the last committed step. Every chunk is
 * answered with STATUS (loaded = bytes taken in order), repeats included, so the host resumes
 * after a lost chunk where the board stopped. A --private export's image is sealed (seal.c):
 * it is opened chunk by chunk as it arrives, and refused whole when its tag does not verify.
 */
#include "client_internal.h"
#include "ts_crc32.h"
#include "ts_le.h"

void ts_msg_put_weights(const ts_header_t *h, const uint8_t *payload)
{
    if (h->length < TS_PUT_WEIGHTS_FIXED_SIZE) {
        ts_client_error(h->step, TS_ERR_CODE_BAD_REQUEST, "PUT_WEIGHTS too short");
        return;
    }
    const uint32_t offset = ts_get_u32(payload + TS_PUT_WEIGHTS_OFF_OFFSET);
    const uint32_t total = ts_get_u32(payload + TS_PUT_WEIGHTS_OFF_TOTAL);
    const uint32_t n = (uint32_t)h->length - TS_PUT_WEIGHTS_FIXED_SIZE;
    if (total != ts_wire_image_size()) {
        ts_client_error(h->step, TS_ERR_CODE_BAD_REQUEST,
                        "PUT_WEIGHTS total is not this board's state size (another model?)");
        return;
    }
    if (n == 0u || offset > total || n > total - offset) {
        ts_client_error(h->step, TS_ERR_CODE_BAD_INDEX, "PUT_WEIGHTS chunk out of range");
        return;
    }
    const int same_push = ts_client.has_push && h->step == ts_client.push_id;
    if (same_push && (ts_client.state != TS_STATE_LOADING || offset < ts_client.push_next)) {
        ts_client.stats.duplicates++; /* applied (or taken) already */
        ts_send_status(h->step);
        return;
    }
    if (!same_push) {
        if (offset != 0u) {
            ts_client.stats.stale++; /* the push's first chunk was lost, or it was replaced */
            ts_send_status(h->step);
            return;
        }
        if (ts_client_abort_step()) {
            ts_client.stats.aborts++;
        }
        ts_client.state = TS_STATE_LOADING;
        ts_client.has_push = 1u;
        ts_client.push_id = h->step;
        ts_client.push_next = 0;
        ts_client.push_crc = ts_crc32_begin();
        ts_client.has_done = 0u;
    }
    if (offset > ts_client.push_next) {
        ts_client.stats.stale++; /* a gap: STATUS says where to go on */
        ts_send_status(h->step);
        return;
    }
    const uint8_t *data = payload + TS_PUT_WEIGHTS_FIXED_SIZE;
    ts_wire_push_write(offset, data, n, ts_get_u32(payload + TS_PUT_WEIGHTS_OFF_STEP));
    ts_client.push_crc = ts_crc32_update(ts_client.push_crc, data, n);
    ts_client.push_next += n;
    if (ts_client.push_next == total) {
        ts_client.has_push = 0u; /* a new push must start over, whatever happens next */
        if (ts_crc32_end(ts_client.push_crc) !=
            ts_get_u32(payload + TS_PUT_WEIGHTS_OFF_IMAGE_CRC)) {
            ts_client_error(h->step, TS_ERR_CODE_PUT_CRC,
                            "pushed image does not match its CRC: push it again");
            return;
        }
        if (!ts_wire_push_end()) {
            ts_client_error(h->step, TS_ERR_CODE_SEAL_INVALID,
                            "sealed state image refused: its tag does not verify (tampered, or "
                            "sealed by another export's board)");
            return;
        }
        if (!ts_state_image_valid()) {
            ts_client_error(h->step, TS_ERR_CODE_BAD_REQUEST,
                            "pushed weights hold values training cannot run on");
            return;
        }
        ts_client.has_push = 1u; /* keep answering repeats of this push's chunks */
        ts_client.state = TS_STATE_IDLE;
        ts_client.committed = ts_get_u32(payload + TS_PUT_WEIGHTS_OFF_STEP);
        ts_client.weights_crc = ts_weights_blob_crc();
        ts_client.stats.pushes++;
    }
    ts_send_status(h->step);
}
