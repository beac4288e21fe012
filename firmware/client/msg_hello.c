/* HELLO: who the board is and what it runs. Sent at boot (step 0) and in reply to HELLO_REQ
 * (echoing the request's step id, so the host can tell its reply from a boot HELLO). */
#include <string.h>

#include "client_internal.h"
#include "ts_board.h"
#include "ts_le.h"

#define TS_BOARD_NAME_MAX 32u

void ts_send_hello(uint32_t step)
{
    uint8_t *p = ts_tx_payload;
    ts_put_u16(p + 0, TS_WIRE_VERSION);
    ts_put_u16(p + 2, TS_WIRE_MAX_PAYLOAD);
    memcpy(p + 4, ts_model_hash, TS_MODEL_HASH_BYTES);
    ts_put_u16(p + 12, TS_MODEL_N_TRAIN);
    ts_put_u16(p + 14, TS_MODEL_N_TEST);
    ts_put_u16(p + 16, TS_MODEL_CUT_SIZE);
    ts_put_u16(p + 18, TS_MODEL_MAX_BATCH);
    ts_put_u32(p + 20, 0u); /* boot counter: no persistent storage on this board yet */
    p[24] = ts_board_reset_cause();
    const char *name = ts_board_name();
    size_t n = strlen(name);
    if (n > TS_BOARD_NAME_MAX) {
        n = TS_BOARD_NAME_MAX;
    }
    p[25] = (uint8_t)n;
    memcpy(p + 26, name, n);
    ts_client_send(TS_MSG_HELLO, step, 0u, p, (uint16_t)(26u + n));
}

void ts_msg_hello_req(const ts_header_t *h, const uint8_t *payload)
{
    (void)payload;
    ts_send_hello(h->step);
}
