/* HELLO: who the board is and what it runs. Sent at boot (step 0) and in reply to HELLO_REQ
 * (echoing the request's step id, so the host can tell its reply from a boot HELLO), in clear;
 * sealed in reply to an accepted OPEN (pairing.c). */
#include <string.h>

#include "client_internal.h"
#include "ts_board.h"
#include "ts_le.h"

#define TS_BOARD_NAME_MAX 32u

void ts_send_hello(uint32_t step, int sealed)
{
    uint8_t *p = ts_tx_payload;
    ts_put_u16(p + TS_HELLO_OFF_PROTO, TS_WIRE_VERSION);
    ts_put_u16(p + TS_HELLO_OFF_MAX_PAYLOAD, TS_WIRE_MAX_PAYLOAD);
    memcpy(p + TS_HELLO_OFF_MODEL_HASH, ts_model_hash, TS_MODEL_HASH_BYTES);
    ts_put_u16(p + TS_HELLO_OFF_N_TRAIN, TS_MODEL_N_TRAIN);
    ts_put_u16(p + TS_HELLO_OFF_N_TEST, TS_MODEL_N_TEST);
    ts_put_u16(p + TS_HELLO_OFF_CUT_SIZE, TS_MODEL_CUT_SIZE);
    ts_put_u16(p + TS_HELLO_OFF_MAX_BATCH, TS_MODEL_MAX_BATCH);
    ts_put_u32(p + TS_HELLO_OFF_BOOT_COUNT, 0u); /* no persistent storage on this board yet */
    ts_put_u32(p + TS_HELLO_OFF_COMMITTED, ts_client.committed);
    ts_put_u32(p + TS_HELLO_OFF_WEIGHTS_CRC, ts_client.weights_crc);
    ts_put_u32(p + TS_HELLO_OFF_CHALLENGE, ts_pairing_challenge());
    p[TS_HELLO_OFF_RESET_CAUSE] = ts_board_reset_cause();
    p[TS_HELLO_OFF_FLAGS] = (uint8_t)((TS_MODEL_PAIRED ? TS_HELLO_FLAG_PAIRED : 0u) | TS_MODEL_WIRE);
    const char *name = ts_board_name();
    size_t n = strlen(name);
    if (n > TS_BOARD_NAME_MAX) {
        n = TS_BOARD_NAME_MAX;
    }
    p[TS_HELLO_OFF_NAME_LEN] = (uint8_t)n;
    memcpy(p + TS_HELLO_FIXED_SIZE, name, n);
    const uint16_t len = (uint16_t)(TS_HELLO_FIXED_SIZE + n);
    if (sealed) {
        ts_client_send(TS_MSG_HELLO, step, 0u, p, len);
    } else {
        ts_client_send_clear(TS_MSG_HELLO, step, 0u, p, len);
    }
}

void ts_msg_hello_req(const ts_header_t *h, const uint8_t *payload)
{
    (void)payload;
    ts_send_hello(h->step, 0);
}
