/*
 * ts_board_* for MPS2 AN386 (Cortex-M4F at 25 MHz) as QEMU emulates it: CMSDK UART0 polled,
 * SysTick 1 ms tick, no other interrupts.
 */
#include "ts_board.h"

#include "mps2_regs.h"

#define TICKS_PER_MS (MPS2_SYSCLK_HZ / 1000u)

static volatile uint32_t s_millis;
static int s_use_dwt;      /* DWT->CYCCNT counts (real silicon); QEMU leaves it at 0 */
static uint32_t s_seed;    /* boot-time entropy, see ts_board_entropy */
static uint32_t s_first_rx_cycles;
static int s_seen_rx;

/* Survives a warm reset (never zeroed, linker.ld puts .noinit in front of .bss): on silicon
   it starts as power-up SRAM noise; each boot stirs it so the next one differs. */
__attribute__((section(".noinit"))) static uint32_t s_noinit_pool[4];

void SysTick_Handler(void)
{
    s_millis++;
}

/* murmur3's finalizer: spreads every input bit over the result. */
static uint32_t mix32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x85ebca6bu;
    x ^= x >> 13;
    x *= 0xc2b2ae35u;
    x ^= x >> 16;
    return x;
}

static int dwt_cycle_counter_runs(void)
{
    DEMCR |= DEMCR_TRCENA;
    DWT_CYCCNT = 0;
    DWT_CTRL |= DWT_CTRL_CYCCNTENA;
    uint32_t before = DWT_CYCCNT;
    for (volatile int i = 0; i < 16; i++) {
    }
    return DWT_CYCCNT != before;
}

void ts_board_init(void)
{
    MPS2_UART0->CTRL = 0;
    MPS2_UART0->BAUDDIV = MPS2_UART_BAUDDIV;
    MPS2_UART0->STATE = CMSDK_UART_STATE_RXOVR; /* write 1 to clear */
    MPS2_UART0->CTRL = CMSDK_UART_CTRL_TXEN | CMSDK_UART_CTRL_RXEN;

    SYST_CSR = 0;
    SYST_RVR = TICKS_PER_MS - 1u;
    SYST_CVR = 0;
    SYST_CSR = SYST_CSR_CLKSOURCE | SYST_CSR_TICKINT | SYST_CSR_ENABLE;

    s_use_dwt = dwt_cycle_counter_runs();

    uint32_t pool = 0x9e3779b9u;
    for (unsigned i = 0; i < sizeof s_noinit_pool / sizeof s_noinit_pool[0]; i++) {
        pool = mix32(pool ^ s_noinit_pool[i]);
    }
    s_noinit_pool[0] = mix32(pool + s_noinit_pool[0] + 1u);
    s_seed = pool;
}

void ts_board_uart_write(const uint8_t *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        while (MPS2_UART0->STATE & CMSDK_UART_STATE_TXFULL) {
        }
        MPS2_UART0->DATA = buf[i];
    }
}

int ts_board_uart_read(uint8_t *byte, uint32_t timeout_ms)
{
    /* Waits at least timeout_ms: the tick may be about to advance when the wait starts. */
    uint32_t start = s_millis;
    for (;;) {
        if (MPS2_UART0->STATE & CMSDK_UART_STATE_RXFULL) {
            *byte = (uint8_t)MPS2_UART0->DATA;
            if (!s_seen_rx) {
                s_first_rx_cycles = ts_board_cycles();
                s_seen_rx = 1;
            }
            return 1;
        }
        uint32_t elapsed = s_millis - start;
        if (timeout_ms == 0 || elapsed > timeout_ms) {
            return 0;
        }
    }
}

uint32_t ts_board_millis(void)
{
    return s_millis;
}

/*
 * DWT->CYCCNT where it runs; otherwise (QEMU) built from SysTick: whole ms * 25000 plus the
 * ticks elapsed in the current ms. Under QEMU SysTick follows host time, so these are
 * "cycles at 25 MHz of wall time", not instructions executed. Wraps every 171.8 s.
 */
uint32_t ts_board_cycles(void)
{
    if (s_use_dwt) {
        return DWT_CYCCNT;
    }
    uint32_t ms;
    uint32_t val;
    do {
        ms = s_millis;
        val = SYST_CVR;
    } while (ms != s_millis); /* the tick interrupt came in between: read again */
    return ms * TICKS_PER_MS + (TICKS_PER_MS - 1u - val);
}

/*
 * QEMU starts RAM zeroed and runs the same instructions every boot, so what differs is time:
 * the SysTick phase when this is called and when the host's first byte arrived (host timing
 * at 40 ns resolution). On silicon the .noinit pool adds SRAM power-up noise and a per-boot
 * change. Each call also differs from the previous one. Not cryptographic.
 */
uint32_t ts_board_entropy(void)
{
    static uint32_t calls;
    calls++;
    uint32_t x = s_seed ^ mix32(ts_board_cycles() + calls * 0x9e3779b9u);
    x ^= mix32(s_first_rx_cycles ^ 0x5bd1e995u);
    return mix32(x);
}

const char *ts_board_name(void)
{
    return "mps2-an386";
}

uint8_t ts_board_reset_cause(void)
{
    return 0;
}
