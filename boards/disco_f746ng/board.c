/*
 * ts_board_* for the ST 32F746G-DISCO (STM32F746NG, Cortex-M7, single-precision FPU): 216 MHz
 * from the 16 MHz HSI through the PLL, L1 instruction and data caches on, USART1 (PA9 TX,
 * PB7 RX) to the ST-LINK/V2-1 virtual COM port, DWT cycle counter, SysTick 1 ms, the RNG for
 * entropy. USART1 receives by interrupt into the RX ring (cm_rx_ring.c: its one-byte data
 * register would lose bytes while a kernel runs) and transmits by interrupt (cm_tx.c); no DMA
 * (so the data cache needs no maintenance).
 */
#include "cm_board.h"
#include "stm32.h"
#include "stm32f746_regs.h"
#include "ts_board.h"

#define SYSCLK_HZ 216000000u
#define HSI_HZ 16000000u
#define PCLK2_HZ (SYSCLK_HZ / 2u) /* APB2 at most 108 MHz; USART1's clock */
#define USART1_IRQ 37u           /* RM0385 table 46 */
#define USART_V2_CR1_RXNEIE (1u << 5)
#define USART_V2_CR1_TXEIE (1u << 7)

static uint8_t s_reset_cause;

/*
 * HSI 16 MHz / M 8 = 2 MHz, * N 216 = 432 MHz VCO, / P 2 = 216 MHz, / Q 9 = 48 MHz (RNG).
 * 7 wait states at 216 MHz and 2.7-3.6 V; APB1 54 MHz, APB2 108 MHz.
 */
static const stm32_clock_t k_clock = {
    .pllcfgr = RCC_PLLCFGR_PLLM(8) | RCC_PLLCFGR_PLLN(216) | RCC_PLLCFGR_PLLP_DIV2 |
               RCC_PLLCFGR_PLLSRC_HSI | RCC_PLLCFGR_PLLQ(9),
    .flash_latency = 7u,
    .flash_acr = FLASH_ACR_PRFTEN | FLASH_ACR_ARTEN,
};

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

static void usart1_irq(void);

__attribute__((section(".isr_vector.device"), used)) const uintptr_t
    ts_device_vectors[USART1_IRQ + 1u] = {
        [USART1_IRQ] = (uintptr_t)usart1_irq,
};

/* PA9 = USART1_TX, PB7 = USART1_RX, alternate function 7; RX pulled up (idle high). APB2 runs
   at 108 MHz on the PLL; if the PLL did not start, everything runs on the HSI. */
static void uart_init(uint32_t pclk2_hz)
{
    RCC_AHB1ENR |= RCC_AHB1ENR_GPIOAEN | RCC_AHB1ENR_GPIOBEN;
    RCC_APB2ENR |= RCC_APB2ENR_USART1EN;
    (void)RCC_APB2ENR;
    stm32_pin_af(GPIOA_BASE, 9u, 7u, 0);
    stm32_pin_af(GPIOB_BASE, 7u, 7u, 1);

    USART1->CR1 = 0;
    USART1->CR3 = USART_V2_CR3_OVRDIS; /* an overrun drops a byte (the frame CRC catches it) */
    USART1->BRR = (pclk2_hz + TS_UART_BAUD / 2u) / TS_UART_BAUD;
    USART1->CR1 = USART_V2_CR1_UE | USART_V2_CR1_TE | USART_V2_CR1_RE | USART_V2_CR1_RXNEIE;
    cm_nvic_enable(USART1_IRQ);
}

/* Reading RDR clears RXNE; writing TDR clears TXE. */
static void usart1_irq(void)
{
    const uint32_t isr = USART1->ISR;
    if (isr & USART_V2_ISR_RXNE) {
        cm_rx_isr_put((uint8_t)USART1->RDR);
    }
    if ((USART1->CR1 & USART_V2_CR1_TXEIE) && (isr & USART_V2_ISR_TXE)) {
        uint8_t byte;
        if (cm_tx_isr_next(&byte)) {
            USART1->TDR = byte;
        } else {
            USART1->CR1 &= ~USART_V2_CR1_TXEIE;
        }
    }
}

/* TXE interrupts while the data register is empty: turning them on starts the transfer. */
void cm_uart_tx_start(void)
{
    cm_disable_irq();
    USART1->CR1 |= USART_V2_CR1_TXEIE;
    cm_enable_irq();
}

void cm_uart_tx_poll(void)
{
    cm_disable_irq();
    uint8_t byte;
    if ((USART1->ISR & USART_V2_ISR_TXE) && cm_tx_isr_next(&byte)) {
        USART1->TDR = byte;
    }
    cm_enable_irq();
}

void ts_board_init(void)
{
    s_reset_cause = stm32_reset_cause();
    const int on_pll = stm32_clock_start(&k_clock);
    caches_init();
    uart_init(on_pll ? PCLK2_HZ : HSI_HZ);
    cm_time_init(on_pll ? SYSCLK_HZ : HSI_HZ);
    cm_entropy_init();
}

int cm_uart_poll(uint8_t *byte)
{
    return cm_rx_take(byte);
}

void cm_fault_putc(char c)
{
    if (!(USART1->CR1 & USART_V2_CR1_UE)) {
        return; /* faulted before ts_board_init: no clock setup from the fault handler */
    }
    while (!(USART1->ISR & USART_V2_ISR_TXE)) {
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
