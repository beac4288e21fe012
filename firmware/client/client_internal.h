/* State and helpers shared by the client's message handlers (firmware/client/msg_*.c). */
#ifndef TS_CLIENT_INTERNAL_H
#define TS_CLIENT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "model_data.h"
#include "ts_frame.h"
#include "ts_wire.h"

/* The training state machine (docs/protocol.md, "Exactly once"); values are STATUS's. */
typedef enum {
    TS_STATE_IDLE = TS_BOARD_STATE_IDLE,             /**< no step in flight */
    TS_STATE_COLLECT = TS_BOARD_STATE_COLLECT,       /**< TRAIN_STEP indices arriving */
    TS_STATE_AWAIT_GRAD = TS_BOARD_STATE_AWAIT_GRAD, /**< forward sent; staging gradients */
    TS_STATE_LOADING = TS_BOARD_STATE_LOADING        /**< PUT_WEIGHTS in progress */
} ts_client_state_t;

/** The client's counters (STATS); the frame decoder keeps the link-level ones. */
typedef struct {
    uint32_t rx_timeouts;     /**< frames cut off by a gap between bytes */
    uint32_t duplicates;      /**< requests already applied: answered from cache or ignored */
    uint32_t retransmits;     /**< replies sent again */
    uint32_t stale;           /**< frames for another step, or past a gap, ignored */
    uint32_t wrong_session;   /**< requests with another session id */
    uint32_t aborts;          /**< uncommitted steps dropped */
    uint32_t commits;         /**< steps applied */
    uint32_t grad_crc_errors; /**< COMMITs whose CRC did not match the staged gradients */
    uint32_t pushes;          /**< PUT_WEIGHTS images applied */
    uint32_t errors_sent;     /**< ERROR replies */
    uint32_t auth_failures;   /**< sealed frames and OPENs whose tag did not verify */
    uint32_t replays;         /**< sealed frames whose counter was taken before */
    uint32_t unsealed;        /**< clear frames a paired board does not take in clear */
} ts_client_stats_t;

typedef struct {
    ts_client_state_t state;
    uint32_t session;                   /**< random per boot; every request must carry it */
    uint32_t committed;                 /**< step id of the last step applied (or SYNC/PUT'd) */
    uint32_t weights_crc;               /**< CRC-32 of the weight blob (kept current) */
    uint32_t step;                      /**< step id of the minibatch in flight */
    float lr;                           /**< learning rate of that step */
    uint16_t count;                     /**< samples in the minibatch */
    uint16_t n_index;                   /**< indices received so far (TRAIN_STEP chunks) */
    uint16_t next_grad;                 /**< position of the next gradient expected */
    uint16_t index[TS_MODEL_MAX_BATCH]; /**< training-shard indices of the minibatch */
    uint32_t grad_crc;                  /**< running CRC-32 state over the staged GRAD payloads */
    float batch_min[TS_MODEL_N_OPS];    /**< range observed in this minibatch, per op */
    float batch_max[TS_MODEL_N_OPS];
    uint32_t step_cycles;                         /**< device cycles spent on the step so far */
    uint8_t done[TS_STEP_DONE_FIXED_SIZE];        /**< STEP_DONE of `committed`, for duplicates */
    uint8_t has_done;                             /**< 1: done[] is valid */
    uint8_t has_sync;                             /**< 1: sync_nonce is valid */
    uint8_t has_push;                             /**< 1: push_id is valid */
    uint8_t model_ok;                             /**< 1: the op table passed ts_model_check */
    uint32_t sync_nonce;                          /**< step id of the last SYNC applied */
    uint32_t push_id;                             /**< step id (nonce) of the last PUT_WEIGHTS */
    uint32_t push_next;                           /**< image bytes of that push received */
    uint32_t push_crc;                            /**< running CRC-32 state over them */
    ts_client_stats_t stats;
} ts_client_t;

extern ts_client_t ts_client;

/** Samples per SMASHED (or SMASHED_PACKED: --wire) frame; the assembly buffer holds as many
 *  as a SMASHED frame, whatever the wire format. */
#define TS_CLIENT_SMASHED_PER_FRAME_INT8 TS_SMASHED_PER_FRAME(TS_MODEL_CUT_SIZE)
#if TS_MODEL_WIRE
#define TS_CLIENT_SMASHED_PER_FRAME_PACKED \
    TS_SMASHED_PACKED_PER_FRAME(TS_MODEL_CUT_SIZE, TS_MODEL_WIRE)
#define TS_CLIENT_SMASHED_PER_FRAME \
    (TS_CLIENT_SMASHED_PER_FRAME_PACKED < TS_CLIENT_SMASHED_PER_FRAME_INT8 \
         ? TS_CLIENT_SMASHED_PER_FRAME_PACKED \
         : TS_CLIENT_SMASHED_PER_FRAME_INT8)
#else
#define TS_CLIENT_SMASHED_PER_FRAME TS_CLIENT_SMASHED_PER_FRAME_INT8
#endif

#if TS_MODEL_WIRE & TS_WIRE_SPARSE
/** The bitmap of the activations each sample of the step in flight sent (SMASHED_PACKED):
 *  where its GRAD_PACKED values go. */
const uint8_t *ts_sent_mask_of(uint16_t pos);
#else
static inline const uint8_t *ts_sent_mask_of(uint16_t pos)
{
    (void)pos;
    return 0; /* a dense format: every position */
}
#endif

/** Payload assembly buffer for outgoing frames. */
extern uint8_t ts_tx_payload[TS_WIRE_MAX_PAYLOAD];

/** Encodes and sends one frame (session is the client's), after a 0x00 that ends whatever
 *  partial frame the link left at the receiver. Sealed once a paired board's session is open
 *  (pairing.c), in clear otherwise. */
void ts_client_send(uint8_t type, uint32_t step, uint16_t seq, const uint8_t *payload,
                    uint16_t len);

/** ts_client_send, always in clear (HELLO: what a host without the key may see). */
void ts_client_send_clear(uint8_t type, uint32_t step, uint16_t seq, const uint8_t *payload,
                          uint16_t len);

/** Sends an ERROR frame with a code and a short message. */
void ts_client_error(uint32_t step, uint16_t code, const char *message);

/** Drops the step in flight, if any (its staged gradients too); weights are untouched.
 *  Returns 1 if there was one. */
int ts_client_abort_step(void);

/** The frame decoder's counters, for STATS. */
const ts_frame_decoder_t *ts_client_decoder(void);

/* Message handlers: one file each. `payload` has h->length bytes, already CRC-checked. */
void ts_msg_hello_req(const ts_header_t *h, const uint8_t *payload);
void ts_msg_open(const ts_header_t *h, const uint8_t *payload);
void ts_msg_sync(const ts_header_t *h, const uint8_t *payload);
void ts_msg_train_step(const ts_header_t *h, const uint8_t *payload);
void ts_msg_grad(const ts_header_t *h, const uint8_t *payload);
void ts_msg_grad_packed(const ts_header_t *h, const uint8_t *payload);
void ts_msg_commit(const ts_header_t *h, const uint8_t *payload);
void ts_msg_eval(const ts_header_t *h, const uint8_t *payload);
void ts_msg_get_weights(const ts_header_t *h, const uint8_t *payload);
void ts_msg_put_weights(const ts_header_t *h, const uint8_t *payload);
void ts_msg_stats(const ts_header_t *h, const uint8_t *payload);

/** Streams the forward passes of n samples as SMASHED frames (seq = position of the frame's
 *  first sample). Rows are index[i] when index is given, else start + i. keep = 1 keeps outputs
 *  for backward and observes ranges (TRAIN_STEP); keep = 0 does neither (EVAL). Returns the
 *  device cycles the forward passes took (framing and sending not counted). */
uint32_t ts_stream_forward(uint32_t step, const int8_t *xs, const uint8_t *ys,
                           const uint16_t *index, uint16_t start, uint16_t n, int keep);

#if TS_MODEL_NOISE
/** dst[k] = src[k] plus the board's noise for element k of the sample at `position` of the
 *  request `step`, saturated (noise.c). */
void ts_noise_apply(int8_t *dst, const int8_t *src, uint32_t n, uint32_t step, uint32_t position);
#endif

/** One sample of such a stream: sample i of n, input x (TS_MODEL_INPUT_SIZE int8). Returns the
 *  device cycles its forward pass took. */
uint32_t ts_forward_sample(uint32_t step, uint16_t i, uint16_t n, const int8_t *x, uint8_t label,
                           int keep);

/** Sends the in-flight step's SMASHED frames again, from the kept cut-layer outputs. */
void ts_resend_smashed(void);

/** Sends HELLO: step 0 at boot, the request's step id in reply to HELLO_REQ (and OPEN). In
 *  clear unless `sealed` (the reply to an accepted OPEN). */
void ts_send_hello(uint32_t step, int sealed);

/* The paired link (pairing.c; docs/protocol.md, "Paired boards"). */

/** Whether a decoded frame goes on to ts_client_handle. A sealed frame is opened in place
 *  (raw: the decoder's frame, header first): *h and *payload then describe the clear message.
 *  Refused frames are counted (auth_failures, replays, unsealed) and dropped. */
int ts_pairing_accept(ts_header_t *h, uint8_t *raw, const uint8_t **payload);

/** 1 while a paired board's session is open: replies are sealed. */
int ts_pairing_open(void);

/** Seals and frames a reply into out (ts_secure_encode with the board's session). */
size_t ts_pairing_encode(const ts_header_t *h, const uint8_t *payload, size_t len, uint8_t *out,
                         size_t cap);

/** HELLO's challenge: the board's share of the next OPEN's session key (0: not paired). */
uint32_t ts_pairing_challenge(void);

/** Sends STATUS (reply to SYNC and PUT_WEIGHTS). */
void ts_send_status(uint32_t step);

/** Sends the cached STEP_DONE of the last committed step again. */
void ts_resend_step_done(void);

/* The op table (model_ops.c). */

/** Never inlined, cloned or merged: instruction-count markers keep their own address. */
#if defined(__clang__)
#define TS_NOIPA __attribute__((noinline))
#else
#define TS_NOIPA __attribute__((noipa))
#endif

/** One row of the op registry (ops.c): what the client does with one kind of op. */
typedef ts_params_t *(*ts_op_params_fn)(const ts_model_op_t *op);
typedef struct {
    const char *name; /**< the kernels' op name, for messages */
    /** Set-up check of the op's parameters (ts_*_check); NULL: nothing to check. */
    ts_status_t (*check)(const ts_model_op_t *op);
    /** The op's training state; NULL for an op without weights (pools, reshapes). */
    ts_op_params_fn params;
    /** Forward of one sample x -> y; bmin/bmax non-NULL (both or neither): fold the op's
     *  outputs into the minibatch range. NULL: the output is the input's bytes (reshape). */
    void (*forward)(const ts_model_op_t *op, const int8_t *x, int8_t *y, float *bmin,
                    float *bmax);
    /** Backward of one sample from its output gradient g (scale s_g; the activation mask is
     *  applied to g in place), kept input x and output y: adds the weight gradient, and when
     *  gx is non-NULL writes the input gradient and its scale *s_gx. NULL for a reshape. */
    void (*backward)(const ts_model_op_t *op, const int8_t *x, const int8_t *y, int8_t *g,
                     float s_g, int8_t *gx, float *s_gx);
    /** The fused activation (ts_activation_t) whose mask backward applies; NULL: none. */
    uint8_t (*act)(const ts_model_op_t *op);
} ts_op_def_t;

#if TS_MODEL_CODE_BYTES > 0
/** Keeps op i's output y (one sample, at minibatch position pos) as codes for backward
 *  (rebuild TS_REBUILD_MASK or TS_REBUILD_ARGMAX; codes.c). */
void ts_codes_record(uint32_t i, uint32_t pos, const int8_t *y);

/** Writes into y an output of op i that backward cannot tell from the one recorded: the same
 *  activation mask and (ARGMAX) the same argmax in every window of the max pool after it. */
void ts_codes_rebuild(uint32_t i, uint32_t pos, int8_t *y);
#endif

/** The registry, indexed by ts_op_kind_t. */
extern const ts_op_def_t ts_op_defs[TS_OP_N_KINDS];

/** Bytes of one sample's output of op. */
uint32_t ts_op_out_bytes(const ts_model_op_t *op);

/** Where op i's output for minibatch position pos lives (x: the sample, for a reshape of it). */
int8_t *ts_op_output(uint32_t i, uint32_t pos, const int8_t *x);

/** Op i's training state; NULL if op i is not trainable. */
ts_params_t *ts_op_params(uint32_t i);

/** The cut's quantization and running range: the last trainable op's (pools keep theirs). */
const ts_params_t *ts_cut_params(void);

/** Validates the op table once at boot (every op's check, at least one trainable op):
 *  TS_ERR_ARG when the exported tables are not ones the kernels can run. */
ts_status_t ts_model_check(void);

#if TS_MODEL_HEAD
/* The head of a U-shaped export (head.c, msg_head.c): the model's last layer and its loss. */
void ts_msg_head_in(const ts_header_t *h, const uint8_t *payload);
/** One sample through the head from the server's activations h (scale s_h, zero point 0)
 *  against `label`; returns 1 if the prediction is the label. dh NULL: forward only
 *  (evaluation). Else also the loss, and dh/s_dh the int8 gradient of the mean loss of a
 *  `batch`-sample minibatch with respect to h; stage: add the head's weight gradient too. */
int ts_head_sample(const int8_t *h, float s_h, uint8_t label, uint16_t batch, int8_t *dh,
                   float *s_dh, float *loss, int stage);
/** exp(x) for x <= 0 and log(x) for x >= 1, in float32 ops the golden model repeats. */
float ts_head_exp(float x);
float ts_head_log(float x);
/** A new step: no position staged, the head's gradient sums zero. */
void ts_head_begin_step(void);
/** 1 once every position of the step in flight went through the head. */
int ts_head_complete(void);
/** Zeroes the head's gradient sums. */
void ts_head_drop_staged(void);
/** Remembers an EVAL request, whose samples HEAD_IN (EVAL) then finishes. */
void ts_head_note_eval(uint32_t step, uint8_t split, uint16_t start, uint16_t count);
#endif

/** Instruction-count markers around each sample's forward and backward pass (train.c). */
void ts_bench_begin(void);
void ts_bench_end(void);

/* Training (train.c). */

/** Forward of one sample through every client layer. keep_pos < 0: nothing is kept for backward
 *  and no range is observed (evaluation). Returns the cut-layer output (int8, TS_MODEL_CUT_SIZE). */
const int8_t *ts_train_forward(const int8_t *x, int keep_pos);

/** The cut output of the sample at minibatch position pos of the step in flight: the kept one,
 *  or computed again when the cut op's output is not kept (same weights, same bytes). */
const int8_t *ts_train_cut_output(uint16_t pos);

/** Backward of the sample at position pos of the minibatch, from its int8 cut gradient. */
void ts_train_backward(uint16_t pos, const int8_t *grad, float grad_scale);

/** Largest |master weight or bias| training may reach. Far beyond any sane model, and small
 *  enough that the quantization math stays finite: a step that would cross it (an exploding
 *  learning rate, or hostile gradients) is refused whole instead of applied. */
#define TS_WEIGHT_LIMIT 1.0e6f
/** Largest |activation range| and quantization scale: their arithmetic stays finite below. */
#define TS_RANGE_LIMIT 1.0e30f

/** 1 if ts_train_commit(lr) keeps every master weight and bias within TS_WEIGHT_LIMIT and the
 *  minibatch's observed ranges are within TS_RANGE_LIMIT. */
int ts_train_commit_ok(float lr);

/** Applies the minibatch: SGD on every layer, running ranges, re-quantization. */
void ts_train_commit(float lr);

/** Resets the per-minibatch range observation. */
void ts_train_begin_batch(void);

/** Zeroes the staged gradient sums (a step dropped before its commit). */
void ts_train_drop_staged(void);

/* State image (weights_blob.c, docs/protocol.md "Weights"): the weight blob, then the
 * quantization tail. GET_WEIGHTS reads it, PUT_WEIGHTS writes it. */
uint32_t ts_weights_blob_size(void);
uint32_t ts_state_image_size(void);
/** Copies image bytes [offset, offset+len) into out; returns bytes copied. */
uint32_t ts_state_image_read(uint32_t offset, uint8_t *out, uint32_t len);
/** Writes image bytes [offset, offset+len) from in; returns bytes written. */
uint32_t ts_state_image_write(uint32_t offset, const uint8_t *in, uint32_t len);
/** 1 if every value of the image is one training can run on (finite, in range). */
int ts_state_image_valid(void);

/* The state image as it crosses the wire (seal.c): sealed with the export's key for a
 * --private export (TS_MODEL_SEALED), else the state image itself. */
uint32_t ts_wire_image_size(void);
/** WEIGHTS' weights_size: the clear weight blob's size, 0 when the image is sealed. */
uint32_t ts_wire_weights_size(void);
uint32_t ts_wire_image_read(uint32_t offset, uint8_t *out, uint32_t len);
/** Takes pushed wire-image bytes at offset (in order from 0) into the live state. */
void ts_wire_push_write(uint32_t offset, const uint8_t *in, uint32_t n, uint32_t step);
/** After the last pushed byte: 1 if the image may be used (a sealed one's tag verified). */
int ts_wire_push_end(void);
/** CRC-32 of the weight blob (STEP_DONE's weights_crc). */
uint32_t ts_weights_blob_crc(void);

#endif
