/*
 * SYNC: u32 committed (step id = a nonce). Drops the uncommitted step, if any, and takes
 * `committed` as the last committed step id; replies STATUS. A host sends it when it starts or
 * resumes a run, so the board's step ids and the host's agree. A repeat of the same nonce is a
 * duplicate: answered, not applied again. During a PUT_WEIGHTS nothing changes (the weights are
 * incomplete; only a complete push ends LOADING).
 */
#include "client_internal.h"
#include "ts_board.h"
#include "ts_le.h"

void ts_send_status(uint32_t step)
{
    uint8_t *p = ts_tx_payload;
    ts_put_u32(p + TS_STATUS_OFF_COMMITTED, ts_client.committed);
    ts_put_u32(p + TS_STATUS_OFF_WEIGHTS_CRC, ts_weights_blob_crc());
    ts_put_u32(p + TS_STATUS_OFF_STATE_SIZE, ts_wire_image_size());
    ts_put_u32(p + TS_STATUS_OFF_LOADED, ts_client.push_next);
    p[TS_STATUS_OFF_STATE] = (uint8_t)ts_client.state;
    p[TS_STATUS_OFF_PAD] = 0u;
    ts_client_send(TS_MSG_STATUS, step, 0u, p, TS_STATUS_FIXED_SIZE);
}

void ts_msg_sync(const ts_header_t *h, const uint8_t *payload)
{
    if (h->length != TS_SYNC_FIXED_SIZE) {
        ts_client_error(h->step, TS_ERR_CODE_BAD_REQUEST, "SYNC length mismatch");
        return;
    }
    if (ts_client.has_sync && h->step == ts_client.sync_nonce) {
        ts_client.stats.duplicates++;
        ts_send_status(h->step);
        return;
    }
    if (ts_client.state != TS_STATE_LOADING) {
        if (ts_client_abort_step()) {
            ts_client.stats.aborts++;
        }
        ts_client.committed = ts_get_u32(payload + TS_SYNC_OFF_COMMITTED);
        ts_client.has_done = 0u; /* the cached STEP_DONE belongs to the old numbering */
    }
    ts_client.sync_nonce = h->step;
    ts_client.has_sync = 1u;
    ts_send_status(h->step);
}
