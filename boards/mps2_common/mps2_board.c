/*
 * ts_board_* for the MPS2 FPGA images QEMU emulates (AN385 M3, AN386 M4F, AN500 M7, AN505 M33):
 * CMSDK UART0 receiving by interrupt into the RX ring (cm_rx_ring.c) and transmitting by
 * interrupt (cm_tx.c); SysTick 1 ms tick. What differs between them (clock, UART0 address and RX interrupt line,
 * name) is in boards/<board>/mps2_board.h; the memory each image may use is in
 * boards/<board>/linker.ld.
 */
#include "cm_board.h"
#include "cm_regs.h"
#include "cmsdk_uart.h"
#include "mps2_board.h"
#include "ts_board.h"

#define UART0 ((cmsdk_uart_t *)MPS2_UART0_BASE)
#define UART_BAUDDIV (MPS2_SYSCLK_HZ / TS_UART_BAUD)
_Static_assert(UART_BAUDDIV >= 16u, "CMSDK UART: BAUDDIV must be at least 16");

#define MPS2_UART0_TX_IRQ (MPS2_UART0_RX_IRQ + 1u) /* TX is the line after RX */

static void uart0_rx_irq(void);
static void uart0_tx_irq(void);

__attribute__((section(".isr_vector.device"), used)) const uintptr_t
    ts_device_vectors[MPS2_UART0_TX_IRQ + 1u] = {
        [MPS2_UART0_RX_IRQ] = (uintptr_t)uart0_rx_irq,
        [MPS2_UART0_TX_IRQ] = (uintptr_t)uart0_tx_irq,
};

void ts_board_init(void)
{
#if defined(__ARM_ARCH_6M__)
    /* An ARMv6-M image on an ARMv7-M core (mps2_an385_m0plus): trap unaligned accesses the way
       a Cortex-M0+ does, so code that relies on the M3 allowing them fails here too. */
    CM_SCB_CCR |= CM_SCB_CCR_UNALIGN_TRP;
#endif
    UART0->CTRL = 0;
    UART0->BAUDDIV = UART_BAUDDIV;
    UART0->STATE = CMSDK_UART_STATE_RXOVR; /* write 1 to clear */
    UART0->INTSTATUS = CMSDK_UART_INT_RX;
    UART0->CTRL = CMSDK_UART_CTRL_TXEN | CMSDK_UART_CTRL_RXEN | CMSDK_UART_CTRL_RXINTEN;
    cm_nvic_enable(MPS2_UART0_RX_IRQ);
    cm_nvic_enable(MPS2_UART0_TX_IRQ);
    cm_time_init(MPS2_SYSCLK_HZ);
    cm_entropy_init();
}

/* The TX interrupt comes when a byte has left (with TX interrupts on): the next one goes, or
   the interrupt is turned off when there is none. */
static void uart0_tx_irq(void)
{
    UART0->INTSTATUS = CMSDK_UART_INT_TX;
    if (UART0->STATE & CMSDK_UART_STATE_TXFULL) {
        return; /* cm_uart_tx_poll was first: that byte's own interrupt comes */
    }
    uint8_t byte;
    if (cm_tx_isr_next(&byte)) {
        UART0->DATA = byte;
    } else {
        UART0->CTRL &= ~CMSDK_UART_CTRL_TXINTEN;
    }
}

/* The first byte is written here (the interrupt comes only when a byte leaves); interrupts on
   first, so that one's leaving is not missed. */
void cm_uart_tx_start(void)
{
    cm_disable_irq();
    UART0->CTRL |= CMSDK_UART_CTRL_TXINTEN;
    cm_enable_irq();
    cm_uart_tx_poll();
}

void cm_uart_tx_poll(void)
{
    cm_disable_irq();
    uint8_t byte;
    if (!(UART0->STATE & CMSDK_UART_STATE_TXFULL) && cm_tx_isr_next(&byte)) {
        UART0->DATA = byte;
    }
    cm_enable_irq();
}

/* The RX status is cleared before the data register is read: a byte that arrives after the
   read raises the interrupt again. */
static void uart0_rx_irq(void)
{
    UART0->INTSTATUS = CMSDK_UART_INT_RX;
    while (UART0->STATE & CMSDK_UART_STATE_RXFULL) {
        cm_rx_isr_put((uint8_t)UART0->DATA);
    }
    if (UART0->STATE & CMSDK_UART_STATE_RXOVR) {
        UART0->STATE = CMSDK_UART_STATE_RXOVR; /* write 1 to clear; the frame CRC catches it */
    }
}

int cm_uart_poll(uint8_t *byte)
{
    return cm_rx_take(byte);
}

void cm_fault_putc(char c)
{
    /* The fault may come before ts_board_init: make sure the transmitter is on. */
    if (UART0->BAUDDIV < 16u) {
        UART0->BAUDDIV = UART_BAUDDIV;
    }
    UART0->CTRL |= CMSDK_UART_CTRL_TXEN;
    while (UART0->STATE & CMSDK_UART_STATE_TXFULL) {
    }
    UART0->DATA = (uint8_t)c;
}

uint32_t cm_board_hw_random(void)
{
    return 0; /* no random source; cm_board.c uses timing */
}

const char *ts_board_name(void)
{
    return MPS2_BOARD_NAME;
}

uint8_t ts_board_reset_cause(void)
{
    return 0;
}
