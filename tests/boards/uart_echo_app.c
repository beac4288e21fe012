/*
 * Board test app: uses only ts_board.h (no firmware core), built with
 *   make APP_SRCS=tests/boards/uart_echo_app.c CORE_SRCS= BOARD=...
 *
 * Boots with the banner "uart_echo <board name> ready\n", then answers each byte b:
 *   b < 0xF0      -> b + 1
 *   0xF0          -> 'T' millis:u32 cycles:u32
 *   0xF1 t        -> waits up to t*10 ms for one byte, then 'W' got:u8 byte:u8 ms:u32 cycles:u32
 *   0xF2          -> 'I' entropy:u32 reset_cause:u8
 *   0xF3 n:u16    -> sends n bytes (i*7 & 0xFF), then 'S' ms:u32          (board -> host rate)
 *   0xF4 n:u16    -> reads n bytes (1 s timeout each), then 'R' got:u16 sum:u32 ms:u32
 *   0xFC          -> 'U' + a 32-bit load from an address 1 mod 4 (faults where the core traps
 *                    unaligned accesses: ARMv6-M, and mps2_an385_m0plus, which mimics it)
 *   0xFD          -> recurses until the stack overflows, to test the overflow fault
 *   0xFE          -> faults (undefined instruction), to test the fault handler
 *   0xFF          -> 'P' pad[0] (keeps the ECHO_PAD_BYTES array linked)
 * All integers little-endian.
 *
 * -DECHO_PAD_BYTES=N adds an N-byte .bss array (link overflow test); -DECHO_NO_STACK leaves the
 * stack undefined (linker check test).
 */
#include "board_config.h"
#include "ts_board.h"

#ifndef ECHO_STACK_BYTES
#define ECHO_STACK_BYTES 4096
#endif

#ifndef ECHO_NO_STACK
TS_BOARD_DEFINE_STACK(ECHO_STACK_BYTES);
#endif

#ifdef ECHO_PAD_BYTES
static volatile uint8_t pad[ECHO_PAD_BYTES];
#endif

/* Writable on purpose: lives in .data, so the banner shows that startup copied .data. */
static char s_ready[] = " ready\n";

static void put_u8(uint8_t v)
{
    ts_board_uart_write(&v, 1);
}

static void put_u16(uint16_t v)
{
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    ts_board_uart_write(b, sizeof b);
}

static void put_u32(uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    ts_board_uart_write(b, sizeof b);
}

static void put_str(const char *s)
{
    size_t n = 0;
    while (s[n] != '\0') {
        n++;
    }
    ts_board_uart_write((const uint8_t *)s, n);
}

static uint8_t get_u8(void)
{
    uint8_t b = 0;
    (void)ts_board_uart_read(&b, 1000);
    return b;
}

static uint16_t get_u16(void)
{
    uint16_t lo = get_u8();
    return (uint16_t)(lo | (uint16_t)(get_u8() << 8));
}

static void cmd_wait(void)
{
    uint32_t timeout_ms = (uint32_t)get_u8() * 10u;
    uint32_t t0 = ts_board_millis();
    uint32_t c0 = ts_board_cycles();
    uint8_t b = 0;
    int got = ts_board_uart_read(&b, timeout_ms);
    uint32_t c1 = ts_board_cycles();
    uint32_t t1 = ts_board_millis();
    put_u8('W');
    put_u8((uint8_t)got);
    put_u8(b);
    put_u32(t1 - t0);
    put_u32(c1 - c0);
}

static void cmd_send(void)
{
    uint16_t n = get_u16();
    uint32_t t0 = ts_board_millis();
    uint8_t chunk[64];
    for (uint32_t i = 0; i < n;) {
        uint32_t len = 0;
        while (len < sizeof chunk && i < n) {
            chunk[len++] = (uint8_t)(i * 7u);
            i++;
        }
        ts_board_uart_write(chunk, len);
    }
    put_u8('S');
    put_u32(ts_board_millis() - t0);
}

static void cmd_recv(void)
{
    uint16_t n = get_u16();
    uint32_t t0 = ts_board_millis();
    uint16_t got = 0;
    uint32_t sum = 0;
    uint8_t b;
    while (got < n && ts_board_uart_read(&b, 1000)) {
        sum += b;
        got++;
    }
    put_u8('R');
    put_u16(got);
    put_u32(sum);
    put_u32(ts_board_millis() - t0);
}

/* Each level keeps 64 bytes live on the stack; 2^20 levels overflow any stack here. */
static uint32_t recurse(volatile uint8_t *prev, uint32_t depth)
{
    volatile uint8_t frame[64];
    frame[0] = (uint8_t)depth;
    frame[63] = prev[0];
    if (depth >= (1u << 20)) {
        return frame[0];
    }
    return recurse(frame, depth + 1u) + frame[63];
}

int main(void)
{
    ts_board_init();
    put_str("uart_echo ");
    put_str(ts_board_name());
    put_str(s_ready);
    for (;;) {
        uint8_t b;
        if (!ts_board_uart_read(&b, 1000)) {
            continue;
        }
        switch (b) {
        case 0xF0:
            put_u8('T');
            put_u32(ts_board_millis());
            put_u32(ts_board_cycles());
            break;
        case 0xF1:
            cmd_wait();
            break;
        case 0xF2:
            put_u8('I');
            put_u32(ts_board_entropy());
            put_u8(ts_board_reset_cause());
            break;
        case 0xF3:
            cmd_send();
            break;
        case 0xF4:
            cmd_recv();
            break;
        case 0xFC: {
            static volatile uint8_t bytes[8] = {1, 2, 3, 4, 5, 6, 7, 8};
            /* Through a volatile address, so the compiler cannot see the misalignment and split
               the load into byte loads (it does on ARMv6-M when it can). */
            volatile uintptr_t where = (uintptr_t)&bytes[0] + 1u;
            uint32_t value = *(volatile uint32_t *)where;
            put_u8('U');
            put_u32(value);
            break;
        }
        case 0xFD: {
            volatile uint8_t seed[1] = {0};
            put_u8((uint8_t)recurse(seed, 0));
            break;
        }
        case 0xFE:
            __builtin_trap();
        case 0xFF:
            put_u8('P');
#ifdef ECHO_PAD_BYTES
            put_u8(pad[0]);
#else
            put_u8(0);
#endif
            break;
        default:
            if (b < 0xF0) {
                put_u8((uint8_t)(b + 1u));
            }
            break;
        }
    }
}
