/*
 * The RX ring of the boards that receive by interrupt (cm_board.h): the UART's handler puts,
 * the main loop (ts_board_uart_read through the board's cm_uart_poll) takes. One producer, one
 * consumer, one core: each index is written by one side only, and the byte is stored before
 * the index that publishes it.
 *
 * Size: one whole encoded frame (TS_WIRE_MAX_ENCODED) fits, so a frame the host sends while a
 * kernel runs (a retransmitted GRAD during backward, the next GRAD while this one is opened)
 * waits whole until the main loop reads it. A byte that finds the ring full is dropped: the
 * frame's CRC catches the loss, as it does a UART overrun's.
 */
#include <stdint.h>

#include "cm_board.h"
#include "ts_wire.h"

#define CM_RX_RING_BYTES (TS_WIRE_MAX_ENCODED + 2u) /* one slot stays free: full != empty */

static uint8_t s_ring[CM_RX_RING_BYTES];
static volatile uint32_t s_head; /* next slot the handler writes */
static volatile uint32_t s_tail; /* next slot the main loop reads */

static uint32_t next(uint32_t i)
{
    return i + 1u == CM_RX_RING_BYTES ? 0u : i + 1u;
}

void cm_rx_isr_put(uint8_t byte)
{
    const uint32_t head = s_head;
    if (next(head) == s_tail) {
        return;
    }
    s_ring[head] = byte;
    __asm volatile("" ::: "memory"); /* the byte is in place before the index says so */
    s_head = next(head);
}

int cm_rx_take(uint8_t *byte)
{
    const uint32_t tail = s_tail;
    if (tail == s_head) {
        return 0;
    }
    *byte = s_ring[tail];
    __asm volatile("" ::: "memory"); /* read before the slot is handed back */
    s_tail = next(tail);
    return 1;
}
