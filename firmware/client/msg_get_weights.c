/* GET_WEIGHTS: u32 offset, u16 length -> WEIGHTS: u32 offset, u32 total, u8 bytes[]. */
#include "client_internal.h"
#include "ts_le.h"

void ts_msg_get_weights(const ts_header_t *h, const uint8_t *payload)
{
    if (h->length != 6u) {
        ts_client_error(h->step, TS_ERR_CODE_BAD_REQUEST, "GET_WEIGHTS length mismatch");
        return;
    }
    uint32_t offset = ts_get_u32(payload);
    uint32_t len = ts_get_u16(payload + 4);
    uint32_t total = ts_weights_blob_size();
    if (len > TS_WIRE_MAX_PAYLOAD - 8u) {
        len = TS_WIRE_MAX_PAYLOAD - 8u;
    }
    if (offset > total) {
        ts_client_error(h->step, TS_ERR_CODE_BAD_INDEX, "GET_WEIGHTS offset past the end");
        return;
    }
    uint8_t *p = ts_tx_payload;
    ts_put_u32(p, offset);
    ts_put_u32(p + 4, total);
    uint32_t n = ts_weights_blob_read(offset, p + 8, len);
    ts_client_send(TS_MSG_WEIGHTS, h->step, 0, p, (uint16_t)(8u + n));
}
