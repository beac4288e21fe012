/*
 * ts_board_* for the ST Nucleo-F446RE (STM32F446RE, Cortex-M4F): 180 MHz from the 16 MHz HSI
 * through the PLL (no dependency on the board's HSE/MCO solder bridges), USART2 on PA2/PA3 to
 * the ST-LINK virtual COM port, DWT cycle counter, SysTick 1 ms. Polled, no interrupts but
 * SysTick.
 */
#include "cm_board.h"
#include "stm32f446_regs.h"
#include "ts_board.h"

#define SYSCLK_HZ 180000000u
#define PCLK1_HZ (SYSCLK_HZ / 4u) /* APB1 at most 45 MHz */

static uint8_t s_reset_cause;


/*
 * HSI 16 MHz / M 8 = 2 MHz VCO input (the jitter-optimal value), * N 180 = 360 MHz VCO,
 * / P 2 = 180 MHz. RM0390 order: PLL on, then over-drive, then flash wait states, then switch.
 * 5 wait states at 180 MHz and 2.7-3.6 V; AHB /1, APB1 /4 (45 MHz), APB2 /2 (90 MHz).
 */
static void clock_init(void)
{
    RCC_CR |= RCC_CR_HSION;
    (void)cm_wait(&RCC_CR, RCC_CR_HSIRDY, RCC_CR_HSIRDY);

    RCC_APB1ENR |= RCC_APB1ENR_PWREN;
    (void)RCC_APB1ENR; /* the enable takes effect before the next access to PWR */
    PWR_CR |= PWR_CR_VOS_SCALE1;

    RCC_PLLCFGR = RCC_PLLCFGR_PLLM(8) | RCC_PLLCFGR_PLLN(180) | RCC_PLLCFGR_PLLP_DIV2 |
                  RCC_PLLCFGR_PLLSRC_HSI | RCC_PLLCFGR_PLLQ(8) | RCC_PLLCFGR_PLLR(2);
    RCC_CR |= RCC_CR_PLLON;
    if (!cm_wait(&RCC_CR, RCC_CR_PLLRDY, RCC_CR_PLLRDY)) {
        return; /* stay on HSI: slower, still correct */
    }

    PWR_CR |= PWR_CR_ODEN;
    (void)cm_wait(&PWR_CSR, PWR_CSR_ODRDY, PWR_CSR_ODRDY);
    PWR_CR |= PWR_CR_ODSWEN;
    (void)cm_wait(&PWR_CSR, PWR_CSR_ODSWRDY, PWR_CSR_ODSWRDY);

    FLASH_ACR = FLASH_ACR_LATENCY(5) | FLASH_ACR_PRFTEN | FLASH_ACR_ICEN | FLASH_ACR_DCEN;
    (void)cm_wait(&FLASH_ACR, FLASH_ACR_LATENCY_MASK, FLASH_ACR_LATENCY(5));

    RCC_CFGR = (RCC_CFGR & ~RCC_CFGR_PPRE_MASK) | RCC_CFGR_HPRE_DIV1 | RCC_CFGR_PPRE1_DIV4 |
               RCC_CFGR_PPRE2_DIV2;
    RCC_CFGR = (RCC_CFGR & ~RCC_CFGR_SW_MASK) | RCC_CFGR_SW_PLL;
    (void)cm_wait(&RCC_CFGR, RCC_CFGR_SWS_MASK, RCC_CFGR_SWS_PLL);
}

/* PA2 = USART2_TX, PA3 = USART2_RX, alternate function 7; RX pulled up (idle high). */
static void uart_init(void)
{
    RCC_AHB1ENR |= RCC_AHB1ENR_GPIOAEN;
    RCC_APB1ENR |= RCC_APB1ENR_USART2EN;
    (void)RCC_APB1ENR;
    GPIOA_MODER = (GPIOA_MODER & ~(0xFu << 4)) | (GPIO_MODE_AF << 4) | (GPIO_MODE_AF << 6);
    GPIOA_OSPEEDR = (GPIOA_OSPEEDR & ~(0xFu << 4)) | (GPIO_SPEED_HIGH << 4) | (GPIO_SPEED_HIGH << 6);
    GPIOA_PUPDR = (GPIOA_PUPDR & ~(0xFu << 4)) | (GPIO_PULL_UP << 6);
    GPIOA_AFRL = (GPIOA_AFRL & ~(0xFFu << 8)) | (7u << 8) | (7u << 12);

    USART2->CR1 = 0;
    USART2->BRR = (PCLK1_HZ + TS_UART_BAUD / 2u) / TS_UART_BAUD;
    USART2->CR1 = USART_CR1_UE | USART_CR1_TE | USART_CR1_RE;
}

static uint8_t read_reset_cause(void)
{
    uint32_t csr = RCC_CSR;
    RCC_CSR |= RCC_CSR_RMVF;
    if (csr & (RCC_CSR_IWDGRSTF | RCC_CSR_WWDGRSTF)) {
        return CM_RESET_WATCHDOG;
    }
    if (csr & RCC_CSR_SFTRSTF) {
        return CM_RESET_SOFTWARE;
    }
    if (csr & RCC_CSR_PORRSTF) {
        return CM_RESET_POWER_ON;
    }
    if (csr & RCC_CSR_BORRSTF) {
        return CM_RESET_BROWNOUT;
    }
    return (csr & RCC_CSR_PINRSTF) ? CM_RESET_PIN : CM_RESET_POWER_ON;
}

void ts_board_init(void)
{
    s_reset_cause = read_reset_cause();
    clock_init();
    uart_init();
    cm_time_init((RCC_CFGR & RCC_CFGR_SWS_MASK) == RCC_CFGR_SWS_PLL ? SYSCLK_HZ : 16000000u);
    cm_entropy_init();
}

void ts_board_uart_write(const uint8_t *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        while (!(USART2->SR & USART_SR_TXE)) {
        }
        USART2->DR = buf[i];
    }
}

int cm_uart_poll(uint8_t *byte)
{
    uint32_t sr = USART2->SR;
    if (sr & USART_SR_RXNE) {
        *byte = (uint8_t)USART2->DR;
        return 1;
    }
    if (sr & USART_SR_ORE) {
        (void)USART2->DR; /* SR then DR clears an overrun; the protocol's CRC catches the loss */
    }
    return 0;
}

void cm_fault_putc(char c)
{
    if (!(USART2->CR1 & USART_CR1_UE)) {
        return; /* faulted before ts_board_init: no clock setup from the fault handler */
    }
    while (!(USART2->SR & USART_SR_TXE)) {
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
