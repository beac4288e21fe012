/*
 * ts_board_* for the Raspberry Pi Pico (RP2040, Cortex-M0+, no FPU: the firmware is soft-float):
 * 133 MHz from the 12 MHz crystal through PLL_SYS (1596 MHz VCO / 6 / 2), UART0 on GP0 (TX) and
 * GP1 (RX) with its 32-byte FIFOs, SysTick 1 ms and cycles (ARMv6-M has no DWT counter), the
 * ring oscillator's random bit for entropy. Code runs in place from flash, set up by boot2.S.
 * UART0 receives by interrupt into the RX ring (cm_rx_ring.c) and transmits by interrupt
 * (cm_tx.c); core 1 stays asleep in the boot ROM.
 */
#include "cm_board.h"
#include "rp2040_regs.h"
#include "ts_board.h"

#define XOSC_HZ 12000000u
#define SYS_HZ 133000000u
/* PL011 divisor in 1/64ths: baud = clk_peri / (16 * (IBRD + FBRD / 64)). */
#define UART_DIV128 ((8u * SYS_HZ) / TS_UART_BAUD)
#define UART_IBRD (UART_DIV128 >> 7)
#define UART_FBRD (((UART_DIV128 & 0x7Fu) + 1u) / 2u)
_Static_assert(UART_IBRD >= 1u && UART_IBRD <= 0xFFFFu, "PL011: baud out of range");

#define UART0_IRQ 20u /* RP2040 datasheet 2.3.2 */

static uint8_t s_reset_cause;

static void uart0_irq(void);

__attribute__((section(".isr_vector.device"), used)) const uintptr_t
    ts_device_vectors[UART0_IRQ + 1u] = {
        [UART0_IRQ] = (uintptr_t)uart0_irq,
};

static void unreset(uint32_t blocks)
{
    RP_CLR(RESETS_RESET_ADDR) = blocks;
    (void)cm_wait(&RESETS_RESET_DONE, blocks, blocks);
}

/* RP2040 datasheet 2.15/2.16/2.18: glitchless muxes first move clk_sys and clk_ref off the
   sources about to change (a debugger reset does not reset the clock block). */
static int clock_init(void)
{
    CLK_SYS_RESUS_CTRL = 0;
    XOSC_CTRL = XOSC_CTRL_FREQ_RANGE_1_15MHZ;
    XOSC_STARTUP = ((XOSC_HZ / 1000u) + 128u) / 256u; /* about 1 ms */
    XOSC_CTRL = XOSC_CTRL_FREQ_RANGE_1_15MHZ | XOSC_CTRL_ENABLE;
    if (!cm_wait(&XOSC_STATUS, XOSC_STATUS_STABLE, XOSC_STATUS_STABLE)) {
        return 0;
    }

    RP_CLR(CLK_SYS_CTRL_ADDR) = CLK_SYS_CTRL_SRC_AUX;
    (void)cm_wait(&CLK_SYS_SELECTED, 1u, 1u);
    RP_CLR(CLK_REF_CTRL_ADDR) = 3u;
    (void)cm_wait(&CLK_REF_SELECTED, 1u << CLK_REF_CTRL_SRC_ROSC, 1u << CLK_REF_CTRL_SRC_ROSC);

    RP_SET(RESETS_RESET_ADDR) = RESET_PLL_SYS;
    unreset(RESET_PLL_SYS);
    PLL_SYS_CS = 1u; /* reference divider 1: 12 MHz into the VCO's phase detector */
    PLL_SYS_FBDIV_INT = SYS_HZ * 12u / XOSC_HZ; /* 133: VCO 1596 MHz (at most 1600) */
    RP_CLR(PLL_SYS_PWR_ADDR) = PLL_PWR_PD | PLL_PWR_VCOPD;
    if (!cm_wait(&PLL_SYS_CS, PLL_CS_LOCK, PLL_CS_LOCK)) {
        return 0;
    }
    PLL_SYS_PRIM = PLL_PRIM_POSTDIV1(6) | PLL_PRIM_POSTDIV2(2);
    RP_CLR(PLL_SYS_PWR_ADDR) = PLL_PWR_POSTDIVPD;

    CLK_REF_DIV = CLK_DIV_INT1;
    CLK_REF_CTRL = CLK_REF_CTRL_SRC_XOSC;
    (void)cm_wait(&CLK_REF_SELECTED, 1u << CLK_REF_CTRL_SRC_XOSC, 1u << CLK_REF_CTRL_SRC_XOSC);
    CLK_SYS_DIV = CLK_DIV_INT1;
    CLK_SYS_CTRL = (CLK_SYS_CTRL_AUXSRC_PLL_SYS << 5); /* aux source chosen while unselected */
    CLK_SYS_CTRL = (CLK_SYS_CTRL_AUXSRC_PLL_SYS << 5) | CLK_SYS_CTRL_SRC_AUX;
    (void)cm_wait(&CLK_SYS_SELECTED, 1u << 1, 1u << 1);

    CLK_PERI_CTRL = 0; /* clk_peri = clk_sys; the aux mux changes only while disabled */
    CLK_PERI_CTRL = CLK_PERI_CTRL_ENABLE;
    return 1;
}

/* GP0 = UART0 TX, GP1 = UART0 RX (pulled up: a loose wire reads idle). */
static void uart_init(uint32_t clk_peri_hz)
{
    unreset(RESET_IO_BANK0 | RESET_PADS_BANK0 | RESET_UART0);
    PADS_GPIO(1) = PAD_IE | PAD_PUE | PAD_SCHMITT | PAD_DRIVE_4MA;
    IO_GPIO_CTRL(0) = IO_FUNC_UART;
    IO_GPIO_CTRL(1) = IO_FUNC_UART;

    uint32_t div128 = (8u * clk_peri_hz) / TS_UART_BAUD;
    UART0_CR = 0;
    UART0_IBRD = div128 >> 7;
    UART0_FBRD = ((div128 & 0x7Fu) + 1u) / 2u;
    UART0_LCR_H = UART_LCR_H_WLEN8 | UART_LCR_H_FEN;
    UART0_IMSC = UART_INT_RX | UART_INT_RT; /* FIFO half full, or bytes waiting 32 bit times */
    UART0_CR = UART_CR_UARTEN | UART_CR_TXE | UART_CR_RXE;
    cm_nvic_enable(UART0_IRQ);
}

/* Fills the TX FIFO from the bytes waiting; turns the TX interrupt off when none are left. */
static void tx_fill(void)
{
    uint8_t byte;
    while (!(UART0_FR & UART_FR_TXFF)) {
        if (!cm_tx_isr_next(&byte)) {
            UART0_IMSC &= ~UART_INT_TX;
            return;
        }
        UART0_DR = byte;
    }
}

/* Drains the RX FIFO (emptying it clears both RX interrupts; ICR for good measure); refills the
   TX FIFO when it has fallen to its level. */
static void uart0_irq(void)
{
    while (!(UART0_FR & UART_FR_RXFE)) {
        cm_rx_isr_put((uint8_t)UART0_DR); /* bits 11:8 flag errors; the frame CRC catches them */
    }
    UART0_ICR = UART_INT_RX | UART_INT_RT;
    if (UART0_IMSC & UART_INT_TX) {
        tx_fill();
    }
}

void cm_uart_tx_start(void)
{
    cm_disable_irq();
    UART0_IMSC |= UART_INT_TX;
    tx_fill();
    cm_enable_irq();
}

void cm_uart_tx_poll(void)
{
    cm_disable_irq();
    uint8_t byte;
    if (!(UART0_FR & UART_FR_TXFF) && cm_tx_isr_next(&byte)) {
        UART0_DR = byte;
    }
    cm_enable_irq();
}

static uint8_t read_reset_cause(void)
{
    if (WATCHDOG_REASON & 3u) {
        return CM_RESET_WATCHDOG;
    }
    return (CHIP_RESET & CHIP_RESET_HAD_RUN) ? CM_RESET_PIN : CM_RESET_POWER_ON;
}

void ts_board_init(void)
{
    s_reset_cause = read_reset_cause();
    /* Without the crystal or PLL the board stays on the ring oscillator (~6 MHz, imprecise):
       the UART would be off by too much to talk, but the core still runs. */
    uint32_t hz = clock_init() ? SYS_HZ : 6000000u;
    uart_init(hz);
    cm_time_init(hz);
    cm_entropy_init();
}

int cm_uart_poll(uint8_t *byte)
{
    return cm_rx_take(byte);
}

void cm_fault_putc(char c)
{
    if (!(UART0_CR & UART_CR_UARTEN)) {
        return; /* faulted before ts_board_init */
    }
    while (UART0_FR & UART_FR_TXFF) {
    }
    UART0_DR = (uint8_t)c;
}

uint32_t cm_board_hw_random(void)
{
    uint32_t value = 0;
    for (int i = 0; i < 32; i++) {
        value = (value << 1) | (ROSC_RANDOMBIT & 1u);
    }
    return value;
}

const char *ts_board_name(void)
{
    return "pico";
}

uint8_t ts_board_reset_cause(void)
{
    return s_reset_cause;
}
