/*
 * The contract between boards/cortex_m (startup, time, entropy, UART read) and a board folder.
 *
 * boards/cortex_m implements: the vector table and reset/fault entry (cm_startup.c), and
 * ts_board_millis, ts_board_cycles, ts_board_entropy and ts_board_uart_read (cm_board.c).
 * The board implements ts_board_init (clocks, pins, UART, then cm_time_init and
 * cm_entropy_init), ts_board_uart_write, ts_board_name, ts_board_reset_cause and the hooks below.
 */
#ifndef TS_CM_BOARD_H
#define TS_CM_BOARD_H

#include <stdint.h>

/** HELLO's reset_cause byte, as the boards report it (0 also means unknown). */
enum {
    CM_RESET_POWER_ON = 0,
    CM_RESET_PIN = 1,
    CM_RESET_SOFTWARE = 2,
    CM_RESET_WATCHDOG = 3,
    CM_RESET_BROWNOUT = 4,
};

/** Board hook: takes one received byte if the UART has one (returns 1), else returns 0. */
int cm_uart_poll(uint8_t *byte);

/** Board hook: writes one character for the fault report, polled, from the fault handler. Must
    work before ts_board_init too (it may do nothing if the UART cannot be brought up there). */
void cm_fault_putc(char c);

/** Board hook: a value from the chip's random source, or 0 if it has none. */
uint32_t cm_board_hw_random(void);

/** SysTick at 1 ms from the core clock; the DWT cycle counter if the core has one that counts. */
void cm_time_init(uint32_t core_hz);

/** Waits until (*reg & mask) == want; returns 0 if that did not happen within a million reads
    (tens of milliseconds): every wait on hardware is bounded. */
int cm_wait(const volatile uint32_t *reg, uint32_t mask, uint32_t want);

/** Seeds ts_board_entropy (call once from ts_board_init, after cm_time_init). */
void cm_entropy_init(void);

#endif
