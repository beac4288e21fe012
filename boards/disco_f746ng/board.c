/*
 * ts_board_* for the ST 32F746G-DISCO (STM32F746NG, Cortex-M7, single-precision FPU): 216 MHz
 * from the 16 MHz HSI through the PLL, L1 instruction and data caches on, USART1 (PA9 TX,
 * PB7 RX) to the ST-LINK/V2-1 virtual COM port, DWT cycle counter, SysTick 1 ms, the RNG for
 * entropy. Polled, no interrupts but SysTick, no DMA (so the data cache needs no maintenance).
 */
#include "cm_board.h"
#include "stm32f746_regs.h"
#include "ts_board.h"

#define SYSCLK_HZ 216000000u
#define PCLK2_HZ (SYSCLK_HZ / 2u) /* APB2 at most 108 MHz; USART1's clock */

static uint8_t s_reset_cause;


/*
 * HSI 16 MHz / M 8 = 2 MHz, * N 216 = 432 MHz VCO, / P 2 = 216 MHz, / Q 9 = 48 MHz (RNG).
 * RM0385 order: PLL on, over-drive, flash wait states (7 at 216 MHz, 2.7-3.6 V), switch.
 * AHB /1, APB1 /4 (54 MHz), APB2 /2 (108 MHz).
 */
static void clock_init(void)
{
    RCC_CR |= RCC_CR_HSION;
    (void)cm_wait(&RCC_CR, RCC_CR_HSIRDY, RCC_CR_HSIRDY);

    RCC_APB1ENR |= RCC_APB1ENR_PWREN;
    (void)RCC_APB1ENR;
    PWR_CR1 |= PWR_CR1_VOS_SCALE1;

    RCC_PLLCFGR = RCC_PLLCFGR_PLLM(8) | RCC_PLLCFGR_PLLN(216) | RCC_PLLCFGR_PLLP_DIV2 |
                  RCC_PLLCFGR_PLLSRC_HSI | RCC_PLLCFGR_PLLQ(9);
    RCC_CR |= RCC_CR_PLLON;
    if (!cm_wait(&RCC_CR, RCC_CR_PLLRDY, RCC_CR_PLLRDY)) {
        return; /* stay on HSI: slower, still correct */
    }

    PWR_CR1 |= PWR_CR1_ODEN;
    (void)cm_wait(&PWR_CSR1, PWR_CSR1_ODRDY, PWR_CSR1_ODRDY);
    PWR_CR1 |= PWR_CR1_ODSWEN;
    (void)cm_wait(&PWR_CSR1, PWR_CSR1_ODSWRDY, PWR_CSR1_ODSWRDY);

    FLASH_ACR = FLASH_ACR_LATENCY(7) | FLASH_ACR_PRFTEN | FLASH_ACR_ARTEN;
    (void)cm_wait(&FLASH_ACR, FLASH_ACR_LATENCY_MASK, FLASH_ACR_LATENCY(7));

    RCC_CFGR = (RCC_CFGR & ~RCC_CFGR_PPRE_MASK) | RCC_CFGR_HPRE_DIV1 | RCC_CFGR_PPRE1_DIV4 |
               RCC_CFGR_PPRE2_DIV2;
    RCC_CFGR = (RCC_CFGR & ~RCC_CFGR_SW_MASK) | RCC_CFGR_SW_PLL;
    (void)cm_wait(&RCC_CFGR, RCC_CFGR_SWS_MASK, RCC_CFGR_SWS_PLL);
}

/* Cortex-M7 L1 caches (ARMv7-M ARM B2.2.7): invalidate, then enable. The D-cache is
   invalidated by set/way from the geometry CCSIDR reports for the L1 data cache. */
static void caches_init(void)
{
    cm_dsb_isb();
    CM_SCB_ICIALLU = 0;
    cm_dsb_isb();
    CM_SCB_CCR |= CM_SCB_CCR_IC;
    cm_dsb_isb();

    CM_SCB_CSSELR = 0; /* level 1, data */
    cm_dsb_isb();
    uint32_t ccsidr = CM_SCB_CCSIDR;
    uint32_t sets = ((ccsidr >> 13) & 0x7FFFu) + 1u;
    uint32_t ways = ((ccsidr >> 3) & 0x3FFu) + 1u;
    uint32_t line_shift = (ccsidr & 7u) + 4u;
    uint32_t way_shift = ways > 1u ? (uint32_t)__builtin_clz(ways - 1u) : 0u;
    for (uint32_t set = 0; set < sets; set++) {
        for (uint32_t way = 0; way < ways; way++) {
            CM_SCB_DCISW = (way << way_shift) | (set << line_shift);
        }
    }
    cm_dsb_isb();
    CM_SCB_CCR |= CM_SCB_CCR_DC;
    cm_dsb_isb();
}

/* PA9 = USART1_TX, PB7 = USART1_RX, alternate function 7; RX pulled up (idle high). */
static void uart_init(void)
{
    RCC_AHB1ENR |= RCC_AHB1ENR_GPIOAEN | RCC_AHB1ENR_GPIOBEN;
    RCC_APB2ENR |= RCC_APB2ENR_USART1EN;
    (void)RCC_APB2ENR;
    GPIO_MODER(GPIOA_BASE) = (GPIO_MODER(GPIOA_BASE) & ~(3u << 18)) | (GPIO_MODE_AF << 18);
    GPIO_OSPEEDR(GPIOA_BASE) = (GPIO_OSPEEDR(GPIOA_BASE) & ~(3u << 18)) | (GPIO_SPEED_HIGH << 18);
    GPIO_AFRH(GPIOA_BASE) = (GPIO_AFRH(GPIOA_BASE) & ~(0xFu << 4)) | (7u << 4);
    GPIO_MODER(GPIOB_BASE) = (GPIO_MODER(GPIOB_BASE) & ~(3u << 14)) | (GPIO_MODE_AF << 14);
    GPIO_PUPDR(GPIOB_BASE) = (GPIO_PUPDR(GPIOB_BASE) & ~(3u << 14)) | (GPIO_PULL_UP << 14);
    GPIO_AFRL(GPIOB_BASE) = (GPIO_AFRL(GPIOB_BASE) & ~(0xFu << 28)) | (7u << 28);

    USART1->CR1 = 0;
    USART1->CR3 = USART_CR3_OVRDIS; /* an overrun drops a byte (the frame CRC catches it) */
    USART1->BRR = (PCLK2_HZ + TS_UART_BAUD / 2u) / TS_UART_BAUD;
    USART1->CR1 = USART_CR1_UE | USART_CR1_TE | USART_CR1_RE;
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
    caches_init();
    uart_init();
    cm_time_init((RCC_CFGR & RCC_CFGR_SWS_MASK) == RCC_CFGR_SWS_PLL ? SYSCLK_HZ : 16000000u);
    cm_entropy_init();
}

void ts_board_uart_write(const uint8_t *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        while (!(USART1->ISR & USART_ISR_TXE)) {
        }
        USART1->TDR = buf[i];
    }
}

int cm_uart_poll(uint8_t *byte)
{
    if (USART1->ISR & USART_ISR_RXNE) {
        *byte = (uint8_t)USART1->RDR;
        return 1;
    }
    return 0;
}

void cm_fault_putc(char c)
{
    if (!(USART1->CR1 & USART_CR1_UE)) {
        return; /* faulted before ts_board_init: no clock setup from the fault handler */
    }
    while (!(USART1->ISR & USART_ISR_TXE)) {
    }
    USART1->TDR = (uint8_t)c;
}

uint32_t cm_board_hw_random(void)
{
    RCC_AHB2ENR |= RCC_AHB2ENR_RNGEN;
    (void)RCC_AHB2ENR;
    RNG_CR |= RNG_CR_RNGEN;
    if (!cm_wait(&RNG_SR, RNG_SR_DRDY, RNG_SR_DRDY)) {
        return 0;
    }
    return RNG_DR;
}

const char *ts_board_name(void)
{
    return "disco-f746ng";
}

uint8_t ts_board_reset_cause(void)
{
    return s_reset_cause;
}
