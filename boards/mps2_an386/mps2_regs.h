/* The few MPS2 AN386 / Cortex-M4 registers this board touches (no CMSIS, no vendor headers). */
#ifndef TS_MPS2_REGS_H
#define TS_MPS2_REGS_H

#include <stdint.h>

#define MPS2_SYSCLK_HZ 25000000u
#define MPS2_UART_BAUD 115200u
/* CMSDK UART: BAUDDIV = PCLK / baud, at least 16. */
#define MPS2_UART_BAUDDIV (MPS2_SYSCLK_HZ / MPS2_UART_BAUD)

/* ARM CMSDK APB UART (UART0 of AN386 at 0x40004000). */
typedef struct {
    volatile uint32_t DATA;      /* 0x00 */
    volatile uint32_t STATE;     /* 0x04: bit0 TX full, bit1 RX full, bit2/3 TX/RX overrun */
    volatile uint32_t CTRL;      /* 0x08: bit0 TX enable, bit1 RX enable */
    volatile uint32_t INTSTATUS; /* 0x0C */
    volatile uint32_t BAUDDIV;   /* 0x10 */
} cmsdk_uart_t;

#define MPS2_UART0 ((cmsdk_uart_t *)0x40004000u)
#define CMSDK_UART_STATE_TXFULL (1u << 0)
#define CMSDK_UART_STATE_RXFULL (1u << 1)
#define CMSDK_UART_STATE_RXOVR (1u << 3)
#define CMSDK_UART_CTRL_TXEN (1u << 0)
#define CMSDK_UART_CTRL_RXEN (1u << 1)

/* SysTick */
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define SYST_CSR_ENABLE (1u << 0)
#define SYST_CSR_TICKINT (1u << 1)
#define SYST_CSR_CLKSOURCE (1u << 2) /* processor clock */

/* System control block and debug (DWT cycle counter). */
#define SCB_CFSR (*(volatile uint32_t *)0xE000ED28u)
#define DEMCR (*(volatile uint32_t *)0xE000EDFCu)
#define DEMCR_TRCENA (1u << 24)
#define DWT_CTRL (*(volatile uint32_t *)0xE0001000u)
#define DWT_CTRL_CYCCNTENA (1u << 0)
#define DWT_CYCCNT (*(volatile uint32_t *)0xE0001004u)

#endif
