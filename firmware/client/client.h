/*
 * The client: tinysplit's firmware application. It owns the training state machine and speaks
 * wire protocol v2 (docs/protocol.md) over the board's UART.
 *
 *   IDLE --TRAIN_STEP (all index chunks)--> forward every sample, stream SMASHED --> AWAIT_GRAD
 *   AWAIT_GRAD --GRAD (in order)--> backward per sample into the staged gradient sums
 *   AWAIT_GRAD --COMMIT (all staged, CRC ok)--> SGD step, re-quantize, STEP_DONE --> IDLE
 *   IDLE --EVAL--> stream SMASHED;  any state --GET_WEIGHTS / HELLO_REQ / STATS_REQ--> reply
 *   any state --SYNC--> drop the step in flight, set the committed step id --> IDLE
 *   any state --PUT_WEIGHTS--> LOADING --last chunk, CRC and values ok--> IDLE
 *
 * Every request is idempotent, keyed by (session, step id, seq): a repeat is answered again
 * from what the board kept and never applied twice.
 */
#ifndef TS_CLIENT_H
#define TS_CLIENT_H

#include <stdint.h>

#include "ts_frame.h"

/** Sets up the session (random per boot) and sends HELLO. */
void ts_client_init(void);

/** Handles one complete, CRC-checked frame. */
void ts_client_handle(const ts_header_t *h, const uint8_t *payload);

/** Runs forever: reads UART bytes, decodes frames, handles them. */
void ts_client_run(void);

#endif
