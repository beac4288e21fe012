/*
 * Board services every Cortex-M board shares: a 1 ms SysTick, a cycle counter, boot-to-boot
 * entropy and the timed UART read (over the board's cm_uart_poll).
 */
#include <stddef.h>
#include <stdint.h>

#include "cm_board.h"
#include "cm_regs.h"
#include "ts_board.h"

static volatile uint32_t s_millis;
static uint32_t s_ticks_per_ms;
static int s_use_dwt;  /* DWT->CYCCNT counts (silicon); QEMU leaves it at 0, ARMv6-M has none */
static uint32_t s_seed; /* boot-time entropy, see ts_board_entropy */
static uint32_t s_first_rx_cycles;
static int s_seen_rx;

/* Survives a warm reset (never zeroed, cortex_m_sections.ld puts .noinit in front of .bss): on
   silicon it starts as power-up SRAM noise; each boot stirs it so the next one differs. */
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
#if CM_MAINLINE
    CM_DEMCR |= CM_DEMCR_TRCENA;
    CM_DWT_LAR = CM_DWT_LAR_KEY;
    CM_DWT_CYCCNT = 0;
    CM_DWT_CTRL |= CM_DWT_CTRL_CYCCNTENA;
    uint32_t before = CM_DWT_CYCCNT;
    for (volatile int i = 0; i < 16; i++) {
    }
    return CM_DWT_CYCCNT != before;
#else
    return 0;
#endif
}

void cm_time_init(uint32_t core_hz)
{
    s_ticks_per_ms = core_hz / 1000u;
    CM_SYST_CSR = 0;
    CM_SYST_RVR = s_ticks_per_ms - 1u;
    CM_SYST_CVR = 0;
    CM_SYST_CSR = CM_SYST_CSR_CLKSOURCE | CM_SYST_CSR_TICKINT | CM_SYST_CSR_ENABLE;
    s_use_dwt = dwt_cycle_counter_runs();
    cm_enable_irq(); /* a bootloader may have jumped here with PRIMASK set */
}

void cm_entropy_init(void)
{
    uint32_t pool = 0x9e3779b9u ^ cm_board_hw_random();
    for (unsigned i = 0; i < sizeof s_noinit_pool / sizeof s_noinit_pool[0]; i++) {
        pool = mix32(pool ^ s_noinit_pool[i]);
    }
    s_noinit_pool[0] = mix32(pool + s_noinit_pool[0] + 1u);
    s_seed = pool;
}

uint32_t ts_board_millis(void)
{
    return s_millis;
}

/*
 * DWT->CYCCNT where it runs; otherwise built from SysTick: whole ms * ticks per ms plus the
 * ticks elapsed in the current ms. Under QEMU SysTick follows host time (or, with -icount,
 * instructions), so there these are "core cycles of elapsed time", not instructions executed.
 */
uint32_t ts_board_cycles(void)
{
    if (s_use_dwt) {
#if CM_MAINLINE
        return CM_DWT_CYCCNT;
#endif
    }
    uint32_t ms;
    uint32_t val;
    do {
        ms = s_millis;
        val = CM_SYST_CVR;
    } while (ms != s_millis); /* the tick interrupt came in between: read again */
    return ms * s_ticks_per_ms + (s_ticks_per_ms - 1u - val);
}

/*
 * What differs between boots: the chip's random source where there is one, the SysTick phase
 * when this is called and when the host's first byte arrived, and on silicon the .noinit pool
 * (SRAM power-up noise plus a per-boot change). Each call also differs from the previous one.
 * Not cryptographic.
 */
uint32_t ts_board_entropy(void)
{
    static uint32_t calls;
    calls++;
    uint32_t x = s_seed ^ mix32(ts_board_cycles() + calls * 0x9e3779b9u);
    x ^= mix32(s_first_rx_cycles ^ 0x5bd1e995u);
    return mix32(x);
}

extern volatile uint32_t cm_probe_state; /* cm_startup.c: the fault handler's side */

int cm_probe_read32(uintptr_t addr, uint32_t *value)
{
    uint32_t v = 0;
    cm_probe_state = 1u;
    cm_dsb_isb();
    /* One load, nothing else: if it faults, the fault handler steps over it (cm_startup.c). */
    __asm volatile("ldr %0, [%1]" : "+r"(v) : "r"(addr) : "memory");
    cm_dsb_isb();
    const int ok = cm_probe_state == 1u;
    cm_probe_state = 0u;
#if CM_MAINLINE
    if (!ok) {
        CM_SCB_CFSR = CM_SCB_CFSR_BFSR_MASK; /* the next fault report shows its own cause */
    }
#endif
    *value = ok ? v : 0u;
    return ok;
}

int cm_wait(const volatile uint32_t *reg, uint32_t mask, uint32_t want)
{
    for (uint32_t i = 0; i < 1000000u; i++) {
        if ((*reg & mask) == want) {
            return 1;
        }
    }
    return 0;
}

int ts_board_uart_read(uint8_t *byte, uint32_t timeout_ms)
{
    /* Waits at least timeout_ms: the tick may be about to advance when the wait starts. */
    uint32_t start = s_millis;
    for (;;) {
        cm_uart_tx_poll();
        if (cm_uart_poll(byte)) {
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
