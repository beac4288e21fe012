/* Client state, frame I/O and message dispatch. */
#include "client.h"

#include <string.h>

#include "client_internal.h"
#include "ts_board.h"
#include "ts_le.h"

ts_client_t ts_client;
uint8_t ts_tx_payload[TS_WIRE_MAX_PAYLOAD];

/* The frame being sent: a 0x00 that ends any partial frame the host holds, then the encoded
   frame. The UART sends from here while the board computes (ts_board_uart_send); the next frame
   is encoded after the last one has left (ts_board_uart_flush). */
static uint8_t tx_frame[1u + TS_WIRE_MAX_ENCODED];
static ts_frame_decoder_t decoder;

/* How long the main loop waits for a byte. A frame in progress that gets no byte for this long
 * was cut short by the link (its tail and delimiter lost): it is dropped, so it cannot swallow
 * the next frame. A sender writes a frame in one go, so a gap this long inside one is a fault. */
#define TS_RX_GAP_MS 100u

static void send_frame(uint8_t type, uint32_t step, uint16_t seq, const uint8_t *payload,
                       uint16_t len, int sealed)
{
    ts_board_uart_flush();
    ts_header_t h;
    h.type = type;
    h.session = ts_client.session;
    h.step = step;
    h.seq = seq;
    h.length = len;
    uint8_t *out = tx_frame + 1;
    size_t n = sealed ? ts_pairing_encode(&h, payload, len, out, TS_WIRE_MAX_ENCODED)
                      : ts_frame_encode(&h, payload, len, out, TS_WIRE_MAX_ENCODED);
    if (n > 0) {
        tx_frame[0] = 0u;
        ts_board_uart_send(tx_frame, n + 1u);
    }
}

void ts_client_send(uint8_t type, uint32_t step, uint16_t seq, const uint8_t *payload,
                    uint16_t len)
{
    send_frame(type, step, seq, payload, len, ts_pairing_open());
}

void ts_client_send_clear(uint8_t type, uint32_t step, uint16_t seq, const uint8_t *payload,
                          uint16_t len)
{
    send_frame(type, step, seq, payload, len, 0);
}

void ts_client_error(uint32_t step, uint16_t code, const char *message)
{
    size_t n = strlen(message);
    if (n > TS_WIRE_MAX_PAYLOAD - 2u) {
        n = TS_WIRE_MAX_PAYLOAD - 2u;
    }
    ts_put_u16(ts_tx_payload, code);
    memcpy(ts_tx_payload + 2, message, n);
    ts_client.stats.errors_sent++;
    ts_client_send(TS_MSG_ERROR, step, 0, ts_tx_payload, (uint16_t)(n + 2u));
}

int ts_client_abort_step(void)
{
    if (ts_client.state != TS_STATE_COLLECT && ts_client.state != TS_STATE_AWAIT_GRAD) {
        return 0;
    }
    ts_train_drop_staged();
#if TS_MODEL_HEAD
    ts_head_begin_step();
#endif
    ts_client.state = TS_STATE_IDLE;
    ts_client.n_index = 0;
    ts_client.next_grad = 0;
    return 1;
}

const ts_frame_decoder_t *ts_client_decoder(void)
{
    return &decoder;
}

void ts_client_init(void)
{
    memset(&ts_client, 0, sizeof ts_client);
    ts_client.session = ts_board_entropy();
    if (ts_client.session == 0u) {
        ts_client.session = 1u; /* 0 is what a host that has not heard HELLO sends */
    }
    /* Validate once, like TFLM's Prepare: the kernels themselves never check. */
    ts_client.model_ok = ts_model_check() == TS_OK;
    ts_client.weights_crc = ts_client.model_ok ? ts_weights_blob_crc() : 0u;
    ts_frame_decoder_init(&decoder);
    ts_send_hello(0u, 0);
}

void ts_client_handle(const ts_header_t *h, const uint8_t *payload)
{
    if (h->type == TS_MSG_HELLO_REQ) {
        ts_msg_hello_req(h, payload);
        return;
    }
    if (h->type == TS_MSG_OPEN) {
        ts_msg_open(h, payload);
        return;
    }
    if (!ts_client.model_ok) {
        ts_client_error(h->step, TS_ERR_CODE_UNEXPECTED,
                        "the image's model tables fail their check: export and build again");
        return;
    }
    if (h->session != ts_client.session) {
        ts_client.stats.wrong_session++;
        ts_client_error(h->step, TS_ERR_CODE_WRONG_SESSION,
                        "wrong session id: the board rebooted; send HELLO_REQ");
        return;
    }
    switch (h->type) {
    case TS_MSG_SYNC:
        ts_msg_sync(h, payload);
        break;
    case TS_MSG_TRAIN_STEP:
        ts_msg_train_step(h, payload);
        break;
    case TS_MSG_GRAD:
        ts_msg_grad(h, payload);
        break;
    case TS_MSG_GRAD_PACKED:
        ts_msg_grad_packed(h, payload);
        break;
    case TS_MSG_COMMIT:
        ts_msg_commit(h, payload);
        break;
#if TS_MODEL_HEAD
    case TS_MSG_HEAD_IN:
        ts_msg_head_in(h, payload);
        break;
#endif
    case TS_MSG_EVAL:
        ts_msg_eval(h, payload);
        break;
    case TS_MSG_GET_WEIGHTS:
        ts_msg_get_weights(h, payload);
        break;
    case TS_MSG_PUT_WEIGHTS:
        ts_msg_put_weights(h, payload);
        break;
    case TS_MSG_STATS_REQ:
        ts_msg_stats(h, payload);
        break;
    default:
        ts_client_error(h->step, TS_ERR_CODE_UNEXPECTED, "unknown message type");
        break;
    }
}

/* The main loop: the board's one unbounded loop. Each pass handles at most one byte (and the
 * frame it completes); every handler is bounded by the model's sizes. */
void ts_client_run(void)
{
    for (;;) {
        uint8_t byte;
        if (!ts_board_uart_read(&byte, TS_RX_GAP_MS)) {
            if (ts_frame_decoder_expire(&decoder)) {
                ts_client.stats.rx_timeouts++;
            }
            continue;
        }
        ts_header_t h;
        const uint8_t *payload;
        uint32_t bad_version = decoder.bad_version;
        if (ts_frame_decoder_push(&decoder, byte, &h, &payload)) {
            if (ts_pairing_accept(&h, decoder.raw, &payload)) {
                ts_client_handle(&h, payload);
            }
        } else if (decoder.bad_version != bad_version) {
            /* A host of another protocol version: tell it ours, so it can name both. */
            ts_send_hello(0u, 0);
        }
    }
}
