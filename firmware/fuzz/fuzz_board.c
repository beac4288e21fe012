/*
 * ts_board_* for the fuzz harnesses: no hardware, no time. What the client sends is decoded
 * again and must always be valid frames (the client never sends a frame it cannot encode).
 */
#include <stdlib.h>

#include "ts_board.h"
#include "ts_frame.h"

static ts_frame_decoder_t sent;
static uint32_t ticks;

void fuzz_board_reset(void)
{
    ts_frame_decoder_init(&sent);
}

void ts_board_init(void)
{
    fuzz_board_reset();
}

void ts_board_uart_write(const uint8_t *buf, size_t n)
{
    for (size_t i = 0; i < n; ++i) {
        ts_header_t h;
        const uint8_t *payload;
        (void)ts_frame_decoder_push(&sent, buf[i], &h, &payload);
    }
    if (sent.resyncs != 0u) {
        abort(); /* the client sent something that is not a valid frame */
    }
}

void ts_board_uart_send(const uint8_t *buf, size_t n)
{
    ts_board_uart_write(buf, n);
}

void ts_board_uart_flush(void)
{
}

int ts_board_uart_read(uint8_t *byte, uint32_t timeout_ms)
{
    (void)byte;
    (void)timeout_ms;
    return 0;
}

uint32_t ts_board_millis(void)
{
    return ticks;
}

uint32_t ts_board_cycles(void)
{
    return ++ticks;
}

uint32_t ts_board_entropy(void)
{
    return 0x5eed1234u;
}

const char *ts_board_name(void)
{
    return "fuzz";
}

uint8_t ts_board_reset_cause(void)
{
    return 0;
}
