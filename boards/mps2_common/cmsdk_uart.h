/* The ARM CMSDK APB UART every MPS2 FPGA image has (QEMU models it; no vendor headers). */
#ifndef TS_CMSDK_UART_H
#define TS_CMSDK_UART_H

#include <stdint.h>

typedef struct {
    volatile uint32_t DATA;      /* 0x00 */
    volatile uint32_t STATE;     /* 0x04: bit0 TX full, bit1 RX full, bit2/3 TX/RX overrun */
    volatile uint32_t CTRL;      /* 0x08: bit0 TX enable, bit1 RX enable, bit2/3 TX/RX interrupt */
    volatile uint32_t INTSTATUS; /* 0x0C: read status, write 1 to clear (INTCLEAR) */
    volatile uint32_t BAUDDIV;   /* 0x10: PCLK / baud, at least 16 */
} cmsdk_uart_t;

#define CMSDK_UART_STATE_TXFULL (1u << 0)
#define CMSDK_UART_STATE_RXFULL (1u << 1)
#define CMSDK_UART_STATE_RXOVR (1u << 3)
#define CMSDK_UART_CTRL_TXEN (1u << 0)
#define CMSDK_UART_CTRL_RXEN (1u << 1)
#define CMSDK_UART_CTRL_TXINTEN (1u << 2)
#define CMSDK_UART_CTRL_RXINTEN (1u << 3)
#define CMSDK_UART_INT_TX (1u << 0)
#define CMSDK_UART_INT_RX (1u << 1)

#endif
