/*
 * What the bench apps (kernel_bench.c, kernel_check.c) share: text on the board's UART, a
 * deterministic xorshift32 stream (the same data on every run and every board) and the
 * semihosting exit that ends QEMU (run with -semihosting-config enable=on). Header-only: each
 * app is one source file (APP_SRCS).
 */
#ifndef TS_BENCH_SUPPORT_H
#define TS_BENCH_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

#include "ts_board.h"

static inline void put_str(const char *s)
{
    size_t n = 0;
    while (s[n] != '\0') {
        n++;
    }
    ts_board_uart_write((const uint8_t *)s, n);
}

static inline void put_u32(uint32_t v)
{
    char buf[11];
    size_t i = sizeof buf;
    buf[--i] = '\0';
    do {
        buf[--i] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v != 0u);
    put_str(&buf[i]);
}

static inline void put_i32(int32_t v)
{
    if (v < 0) {
        put_str("-");
    }
    put_u32(v < 0 ? 0u - (uint32_t)v : (uint32_t)v);
}

/** xorshift32 on *state (never 0). */
static inline uint32_t xorshift32(uint32_t *state)
{
    uint32_t s = *state;
    s ^= s << 13;
    s ^= s >> 17;
    s ^= s << 5;
    *state = s;
    return s;
}

/** SYS_EXIT (0x18), ADP_Stopped_ApplicationExit: QEMU exits with status 0. */
static inline void semihosting_exit(void)
{
    register uint32_t r0 __asm("r0") = 0x18u;
    register uint32_t r1 __asm("r1") = 0x20026u;
    __asm volatile("bkpt 0xab" : : "r"(r0), "r"(r1) : "memory");
}

#endif
