/*
 * What the firmware core needs from a board. Each board folder under boards/ implements these
 * (register level, no vendor framework), so the core builds unchanged for QEMU, real boards and
 * the native (host process) build.
 */
#ifndef TS_BOARD_H
#define TS_BOARD_H

#include <stddef.h>
#include <stdint.h>

/** Clocks, UART, cycle counter. Called once before anything else. */
void ts_board_init(void);

/** Blocking write of n bytes to the host UART. */
void ts_board_uart_write(const uint8_t *buf, size_t n);

/** Starts sending n bytes from buf and returns, so the board computes while they leave; buf
    must stay unchanged until ts_board_uart_flush (or the next send, which flushes first)
    returns. A board without interrupt-driven TX sends them before returning. */
void ts_board_uart_send(const uint8_t *buf, size_t n);

/** Returns once every byte handed to ts_board_uart_send has been passed to the UART. */
void ts_board_uart_flush(void);

/** Reads one byte; returns 1 and stores it, or 0 when nothing arrived within timeout_ms. */
int ts_board_uart_read(uint8_t *byte, uint32_t timeout_ms);

/** Milliseconds since boot (wraps). */
uint32_t ts_board_millis(void);

/** A free-running cycle (or cycle-like) counter for measuring work on the device. */
uint32_t ts_board_cycles(void);

/** A value that differs from boot to boot (session ids). Need not be cryptographic. */
uint32_t ts_board_entropy(void);

/** Short board name reported in HELLO, e.g. "mps2-an386". */
const char *ts_board_name(void);

/** Why the board last reset (0 power-on/unknown), reported in HELLO. */
uint8_t ts_board_reset_cause(void);

/**
 * The sample to predict on (EVAL of split LIVE, `tinysplit infer --live`): input number `index`
 * as TS_MODEL_INPUT_SIZE int8 values in the model's input quantization (model_data.h:
 * TS_MODEL_INPUT_SCALE, TS_MODEL_INPUT_ZERO_POINT), or NULL when there is none. *label is its
 * class if known, else TS_LABEL_UNKNOWN. The pointer must stay valid until the next call.
 *
 * Optional: the firmware's default (a weak symbol, firmware/client/sample.c) serves the test
 * shard in flash. A deployment defines its own in its board folder or application, reading
 * its sensor and quantizing into a static buffer; that definition replaces the default at link
 * time, nothing else changes.
 */
const int8_t *ts_board_read_sample(uint32_t index, uint8_t *label);

#define TS_LABEL_UNKNOWN 0xFFu

#endif
