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

#endif
