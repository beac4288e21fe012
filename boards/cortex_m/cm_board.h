/*
 * The contract between boards/cortex_m (startup, time, entropy, UART read) and a board folder.
 *
 * boards/cortex_m implements: the vector table and reset/fault entry (cm_startup.c),
 * ts_board_millis, ts_board_cycles, ts_board_entropy and ts_board_uart_read (cm_board.c), and
 * ts_board_uart_send, ts_board_uart_flush and ts_board_uart_write (cm_tx.c). The board
 * implements ts_board_init (clocks, pins, UART, then cm_time_init and cm_entropy_init),
 * ts_board_name, ts_board_reset_cause and the hooks below.
 *
 * Receiving by interrupt (cm_rx_ring.c): a UART that holds one byte (an STM32 USART: one byte
 * every 11 us at 921,600 baud) loses bytes while a kernel runs if it is polled. Every board
 * lists its UART's line in its own vector table extension,
 *
 *     __attribute__((section(".isr_vector.device"), used))
 *     const uintptr_t ts_device_vectors[LINE + 1] = {[LINE] = (uintptr_t)my_uart_irq};
 *
 * (placed right after the core exceptions; lines it leaves 0 stay disabled), enables the line
 * with cm_nvic_enable, hands every received byte to cm_rx_isr_put from the handler, and its
 * cm_uart_poll is cm_rx_take.
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

/** Board hook (cm_tx.c), once bytes wait: start sending them, e.g. enable the UART's TX
    interrupt, whose handler takes each byte with cm_tx_isr_next. Called with interrupts on: the
    board masks what must not race its handler. */
void cm_uart_tx_start(void);

/** Board hook, called while the board waits (ts_board_uart_flush, ts_board_uart_read): pass
    the next byte to the UART if it has room, or do nothing. With it, a UART (or an emulator's
    model of one) whose TX interrupt does not come still sends everything. */
void cm_uart_tx_poll(void);

/** From the board's TX interrupt (or its hooks above): the next byte to send, 1; or 0 when
    everything handed to ts_board_uart_send has been taken. */
int cm_tx_isr_next(uint8_t *byte);

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

/** Reads the word at `addr` if the bus answers: 1 and *value, or 0 (and *value = 0) if the
    read faulted (an address a chip or an emulator does not decode). Thread mode only. */
int cm_probe_read32(uintptr_t addr, uint32_t *value);

/** The RX ring (cm_rx_ring.c): holds one whole encoded frame, so a frame that arrives while a
    kernel runs waits there whole. cm_rx_isr_put is called from the UART's RX interrupt only
    (a byte that finds the ring full is dropped: the frame CRC catches it); cm_rx_take from the
    main loop. */
void cm_rx_isr_put(uint8_t byte);
int cm_rx_take(uint8_t *byte);

/** Seeds ts_board_entropy (call once from ts_board_init, after cm_time_init). */
void cm_entropy_init(void);

#endif
