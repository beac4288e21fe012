/* GET_WEIGHTS: u32 offset, u16 length -> WEIGHTS: u32 offset, u32 total, u32 weights_size,
 * u8 bytes[] of the state image as it crosses the wire (seal.c: sealed for a --private export;
 * docs/protocol.md, "Weights"). Reads only. */
#include "client_internal.h"
#include "ts_le.h"

void ts_msg_get_weights(const ts_header_t *h, const uint8_t *payload)
{
    if (h->length != TS_GET_WEIGHTS_FIXED_SIZE) {
        ts_client_error(h->step, TS_ERR_CODE_BAD_REQUEST, "GET_WEIGHTS length mismatch");
        return;
    }
    uint32_t offset = ts_get_u32(payload + TS_GET_WEIGHTS_OFF_OFFSET);
    uint32_t len = ts_get_u16(payload + TS_GET_WEIGHTS_OFF_LENGTH);
    uint32_t total = ts_wire_image_size();
    if (len > TS_WEIGHTS_MAX_DATA) {
        len = TS_WEIGHTS_MAX_DATA;
    }
    if (offset > total) {
        ts_client_error(h->step, TS_ERR_CODE_BAD_INDEX, "GET_WEIGHTS offset past the end");
        return;
    }
    uint8_t *p = ts_tx_payload;
    ts_put_u32(p + TS_WEIGHTS_OFF_OFFSET, offset);
    ts_put_u32(p + TS_WEIGHTS_OFF_TOTAL, total);
    ts_put_u32(p + TS_WEIGHTS_OFF_WEIGHTS_SIZE, ts_wire_weights_size());
    uint32_t n = ts_wire_image_read(offset, p + TS_WEIGHTS_FIXED_SIZE, len);
    ts_client_send(TS_MSG_WEIGHTS, h->step, 0, p, (uint16_t)(TS_WEIGHTS_FIXED_SIZE + n));
}
