/*
 * What the STM32F4/F7 boards share (stm32.c): the clock start from the 16 MHz HSI through the
 * PLL with over-drive, the reset cause from RCC_CSR, and a pin's alternate function. Each
 * board's board.c keeps only its numbers, its USART and its extras.
 */
#ifndef TS_STM32_H
#define TS_STM32_H

#include <stdint.h>

#include "stm32_regs.h"

/** A PLL configuration from the 16 MHz HSI: SYSCLK = 16 MHz / m * n / 2. */
typedef struct {
    uint32_t pllcfgr;       /**< RCC_PLLCFGR value (M, N, P = 2, HSI source, Q, R) */
    uint32_t flash_latency; /**< wait states at SYSCLK (the manual's table, 2.7-3.6 V) */
    uint32_t flash_acr;     /**< the family's FLASH_ACR cache/prefetch bits */
} stm32_clock_t;

/**
 * HSI on, regulator scale 1, PLL per c, over-drive, flash wait states, AHB /1, APB1 /4,
 * APB2 /2, then SYSCLK from the PLL (RM0390/RM0385 order). Every wait is bounded (cm_wait): a
 * PLL that does not lock leaves the core on the 16 MHz HSI, slower but correct. Returns 1 when
 * the PLL drives SYSCLK.
 */
int stm32_clock_start(const stm32_clock_t *c);

/** The cause of the last reset (CM_RESET_*) from RCC_CSR, whose flags it then clears. */
uint8_t stm32_reset_cause(void);

/** Pin `pin` of GPIO port `port` (GPIOx_BASE) to alternate function `af`, high speed, with
 *  the pull-up on when pull_up (a UART's RX idles high). */
void stm32_pin_af(uint32_t port, uint32_t pin, uint32_t af, int pull_up);

#endif
