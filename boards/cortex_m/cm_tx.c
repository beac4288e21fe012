/*
 * Transmitting by interrupt (ts_board_uart_send / ts_board_uart_flush / ts_board_uart_write for
 * every Cortex-M board): the bytes go out from the caller's buffer, one per TX interrupt, while
 * the core computes; the firmware encodes the next frame only after ts_board_uart_flush, so the
 * frame buffer itself is the TX buffer and costs no RAM. The board starts a transfer
 * (cm_uart_tx_start) and its TX handler takes the bytes with cm_tx_isr_next.
 *
 * A UART model that raises no TX interrupt still works: the flush and the wait for a received
 * byte (cm_board.c) move bytes too (cm_uart_tx_poll).
 */
#include <stddef.h>
#include <stdint.h>

#include "cm_board.h"
#include "ts_board.h"

static const uint8_t *volatile s_next;
static volatile uint32_t s_left;

int cm_tx_isr_next(uint8_t *byte)
{
    const uint32_t left = s_left;
    if (left == 0u) {
        return 0;
    }
    const uint8_t *p = s_next;
    *byte = *p;
    s_next = p + 1;
    s_left = left - 1u;
    return 1;
}

void ts_board_uart_flush(void)
{
    while (s_left != 0u) {
        cm_uart_tx_poll();
    }
}

void ts_board_uart_send(const uint8_t *buf, size_t n)
{
    ts_board_uart_flush();
    if (n == 0u) {
        return;
    }
    s_next = buf;
    s_left = (uint32_t)n; /* last: a TX interrupt sees bytes only once both are set */
    cm_uart_tx_start();
}

void ts_board_uart_write(const uint8_t *buf, size_t n)
{
    ts_board_uart_send(buf, n);
    ts_board_uart_flush();
}
