/*
 * ts_board_* for the ST Nucleo-F446RE (STM32F446RE, Cortex-M4F): 180 MHz from the 16 MHz HSI
 * through the PLL (no dependency on the board's HSE/MCO solder bridges), USART2 on PA2/PA3 to
 * the ST-LINK virtual COM port, DWT cycle counter, SysTick 1 ms. Polled, no interrupts but
 * SysTick.
 */
#include "cm_board.h"
#include "stm32.h"
#include "stm32f446_regs.h"
#include "ts_board.h"

#define SYSCLK_HZ 180000000u
#define PCLK1_HZ (SYSCLK_HZ / 4u) /* APB1 at most 45 MHz */

static uint8_t s_reset_cause;

/*
 * HSI 16 MHz / M 8 = 2 MHz VCO input (the jitter-optimal value), * N 180 = 360 MHz VCO,
 * / P 2 = 180 MHz. 5 wait states at 180 MHz and 2.7-3.6 V; APB1 45 MHz, APB2 90 MHz.
 */
static const stm32_clock_t k_clock = {
    .pllcfgr = RCC_PLLCFGR_PLLM(8) | RCC_PLLCFGR_PLLN(180) | RCC_PLLCFGR_PLLP_DIV2 |
               RCC_PLLCFGR_PLLSRC_HSI | RCC_PLLCFGR_PLLQ(8) | RCC_PLLCFGR_PLLR(2),
    .flash_latency = 5u,
    .flash_acr = FLASH_ACR_PRFTEN | FLASH_ACR_ICEN | FLASH_ACR_DCEN,
};

/* PA2 = USART2_TX, PA3 = USART2_RX, alternate function 7; RX pulled up (idle high). */
static void uart_init(void)
{
    RCC_AHB1ENR |= RCC_AHB1ENR_GPIOAEN;
    RCC_APB1ENR |= RCC_APB1ENR_USART2EN;
    (void)RCC_APB1ENR;
    stm32_pin_af(GPIOA_BASE, 2u, 7u, 0);
    stm32_pin_af(GPIOA_BASE, 3u, 7u, 1);

    USART2->CR1 = 0;
    USART2->BRR = (PCLK1_HZ + TS_UART_BAUD / 2u) / TS_UART_BAUD;
    USART2->CR1 = USART_V1_CR1_UE | USART_V1_CR1_TE | USART_V1_CR1_RE;
}

void ts_board_init(void)
{
    s_reset_cause = stm32_reset_cause();
    const int on_pll = stm32_clock_start(&k_clock);
    uart_init();
    cm_time_init(on_pll ? SYSCLK_HZ : 16000000u);
    cm_entropy_init();
}

void ts_board_uart_write(const uint8_t *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        while (!(USART2->SR & USART_V1_SR_TXE)) {
        }
        USART2->DR = buf[i];
    }
}

int cm_uart_poll(uint8_t *byte)
{
    uint32_t sr = USART2->SR;
    if (sr & USART_V1_SR_RXNE) {
        *byte = (uint8_t)USART2->DR;
        return 1;
    }
    if (sr & USART_V1_SR_ORE) {
        (void)USART2->DR; /* SR then DR clears an overrun; the protocol's CRC catches the loss */
    }
    return 0;
}

void cm_fault_putc(char c)
{
    if (!(USART2->CR1 & USART_V1_CR1_UE)) {
        return; /* faulted before ts_board_init: no clock setup from the fault handler */
    }
    while (!(USART2->SR & USART_V1_SR_TXE)) {
    }
    USART2->DR = (uint8_t)c;
}

/* No RNG on the F446: the unique ID at least tells boards apart (cm_board.c adds timing). */
uint32_t cm_board_hw_random(void)
{
    const volatile uint32_t *uid = (const volatile uint32_t *)STM32F4_UID_BASE;
    return uid[0] ^ (uid[1] * 0x9e3779b9u) ^ (uid[2] << 7);
}

const char *ts_board_name(void)
{
    return "nucleo-f446re";
}

uint8_t ts_board_reset_cause(void)
{
    return s_reset_cause;
}
