/*
 * The client: tinysplit's firmware application. It owns the training state machine and speaks
 * wire protocol v1 (docs/protocol.md) over the board's UART.
 *
 *   IDLE --TRAIN_STEP--> forward every sample, stream SMASHED --> AWAIT_GRAD
 *   AWAIT_GRAD --GRAD (in order)--> backward per sample; after the last: SGD step, re-quantize,
 *                                   STEP_DONE --> IDLE
 *   IDLE --EVAL--> stream SMASHED;  any state --GET_WEIGHTS / HELLO_REQ--> reply
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
