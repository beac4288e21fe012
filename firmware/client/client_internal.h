/* State and helpers shared by the client's message handlers (firmware/client/msg_*.c). */
#ifndef TS_CLIENT_INTERNAL_H
#define TS_CLIENT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "model_data.h"
#include "ts_frame.h"
#include "ts_wire.h"

typedef enum {
    TS_STATE_IDLE = 0,   /**< waiting for a request */
    TS_STATE_AWAIT_GRAD  /**< forward passes sent; collecting the minibatch's gradients */
} ts_client_state_t;

typedef struct {
    ts_client_state_t state;
    uint32_t session;                       /**< random per boot; every request must carry it */
    uint32_t step;                          /**< step id of the minibatch in flight */
    float lr;                               /**< learning rate of that step */
    uint16_t count;                         /**< samples in the minibatch */
    uint16_t next_grad;                     /**< position of the next gradient expected */
    uint16_t index[TS_MODEL_MAX_BATCH];     /**< training-shard indices of the minibatch */
    float batch_min[TS_MODEL_N_LAYERS];     /**< range observed in this minibatch, per layer */
    float batch_max[TS_MODEL_N_LAYERS];
    uint32_t step_cycles;                   /**< device cycles spent on the step so far */
} ts_client_t;

extern ts_client_t ts_client;

/** Payload assembly buffer for outgoing frames. */
extern uint8_t ts_tx_payload[TS_WIRE_MAX_PAYLOAD];

/** Encodes and sends one frame (session is the client's). */
void ts_client_send(uint8_t type, uint32_t step, uint16_t seq, const uint8_t *payload,
                    uint16_t len);

/** Sends an ERROR frame with a code and a short message. */
void ts_client_error(uint32_t step, uint16_t code, const char *message);

/* Message handlers: one file each. `payload` has h->length bytes, already CRC-checked. */
void ts_msg_hello_req(const ts_header_t *h, const uint8_t *payload);
void ts_msg_train_step(const ts_header_t *h, const uint8_t *payload);
void ts_msg_grad(const ts_header_t *h, const uint8_t *payload);
void ts_msg_eval(const ts_header_t *h, const uint8_t *payload);
void ts_msg_get_weights(const ts_header_t *h, const uint8_t *payload);

/** Streams the forward passes of n samples as SMASHED frames (seq = position of the frame's
 *  first sample). Rows are index[i] when index is given, else start + i. keep = 1 keeps outputs
 *  for backward and observes ranges (TRAIN_STEP); keep = 0 does neither (EVAL). */
void ts_stream_forward(uint32_t step, const int8_t *xs, const uint8_t *ys, const uint16_t *index,
                       uint16_t start, uint16_t n, int keep);

/** Sends HELLO: step 0 at boot, the request's step id in reply to HELLO_REQ. */
void ts_send_hello(uint32_t step);

/* Training (train.c). */

/** Forward of one sample through every client layer. keep_pos < 0: nothing is kept for backward
 *  and no range is observed (evaluation). Returns the cut-layer output (int8, TS_MODEL_CUT_SIZE). */
const int8_t *ts_train_forward(const int8_t *x, int keep_pos);

/** Backward of the sample at position pos of the minibatch, from its int8 cut gradient. */
void ts_train_backward(uint16_t pos, const int8_t *grad, float grad_scale);

/** Applies the minibatch: SGD on every layer, running ranges, re-quantization. */
void ts_train_commit(float lr);

/** Resets the per-minibatch range observation. */
void ts_train_begin_batch(void);

/* Weight blob (weights_blob.c): the layout read by GET_WEIGHTS, see docs/protocol.md. */
uint32_t ts_weights_blob_size(void);
/** Copies blob bytes [offset, offset+len) into out; returns bytes copied. */
uint32_t ts_weights_blob_read(uint32_t offset, uint8_t *out, uint32_t len);
/** CRC-32 of the whole blob (STEP_DONE's weights_crc). */
uint32_t ts_weights_blob_crc(void);

#endif
