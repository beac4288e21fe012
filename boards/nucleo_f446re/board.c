/*
 * ts_board_* for the ST Nucleo-F446RE (STM32F446RE, Cortex-M4F): 180 MHz from the 16 MHz HSI
 * through the PLL (no dependency on the board's HSE/MCO solder bridges), USART2 on PA2/PA3 to
 * the ST-LINK virtual COM port, DWT cycle counter, SysTick 1 ms. USART2 receives by interrupt
 * into the RX ring (cm_rx_ring.c: its one-byte data register would lose bytes while a kernel
 * runs) and transmits by interrupt (cm_tx.c).
 *
 * The same ELF boots on QEMU's netduinoplus2 (an STM32F405: the same USART at the same address,
 * on QEMU's second serial port), which models no RCC and no unique ID: every clock wait is
 * bounded (cm_wait), the board then stays on the 16 MHz HSI, and the ID is read by a probe.
 */
#include "cm_board.h"
#include "stm32.h"
#include "stm32f446_regs.h"
#include "ts_board.h"

#define SYSCLK_HZ 180000000u
#define HSI_HZ 16000000u
#define PCLK1_HZ (SYSCLK_HZ / 4u) /* APB1 at most 45 MHz */
#define USART2_IRQ 38u           /* RM0390 table 38 */
#define USART_V1_CR1_RXNEIE (1u << 5)
#define USART_V1_CR1_TXEIE (1u << 7)

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

static void usart2_irq(void);

__attribute__((section(".isr_vector.device"), used)) const uintptr_t
    ts_device_vectors[USART2_IRQ + 1u] = {
        [USART2_IRQ] = (uintptr_t)usart2_irq,
};

/* PA2 = USART2_TX, PA3 = USART2_RX, alternate function 7; RX pulled up (idle high). APB1 runs
   at 45 MHz on the PLL; if the PLL did not start, everything runs on the HSI. */
static void uart_init(uint32_t pclk1_hz)
{
    RCC_AHB1ENR |= RCC_AHB1ENR_GPIOAEN;
    RCC_APB1ENR |= RCC_APB1ENR_USART2EN;
    (void)RCC_APB1ENR;
    stm32_pin_af(GPIOA_BASE, 2u, 7u, 0);
    stm32_pin_af(GPIOA_BASE, 3u, 7u, 1);

    USART2->CR1 = 0;
    USART2->BRR = (pclk1_hz + TS_UART_BAUD / 2u) / TS_UART_BAUD;
    USART2->CR1 = USART_V1_CR1_UE | USART_V1_CR1_TE | USART_V1_CR1_RE | USART_V1_CR1_RXNEIE;
    cm_nvic_enable(USART2_IRQ);
}

/* RX: reading SR then DR clears RXNE and an overrun (ORE: a byte came while DR was full and is
   lost, which takes interrupts masked for a byte time; the frame CRC catches it). */
static void usart2_irq(void)
{
    const uint32_t sr = USART2->SR;
    if (sr & (USART_V1_SR_RXNE | USART_V1_SR_ORE)) {
        cm_rx_isr_put((uint8_t)USART2->DR);
    }
    if ((USART2->CR1 & USART_V1_CR1_TXEIE) && (sr & USART_V1_SR_TXE)) {
        uint8_t byte;
        if (cm_tx_isr_next(&byte)) {
            USART2->DR = byte;
        } else {
            USART2->CR1 &= ~USART_V1_CR1_TXEIE;
        }
    }
}

/* TXE interrupts while the data register is empty: turning them on starts the transfer. */
void cm_uart_tx_start(void)
{
    cm_disable_irq();
    USART2->CR1 |= USART_V1_CR1_TXEIE;
    cm_enable_irq();
}

void cm_uart_tx_poll(void)
{
    cm_disable_irq();
    uint8_t byte;
    if ((USART2->SR & USART_V1_SR_TXE) && cm_tx_isr_next(&byte)) {
        USART2->DR = byte;
    }
    cm_enable_irq();
}

void ts_board_init(void)
{
    s_reset_cause = stm32_reset_cause();
    const int on_pll = stm32_clock_start(&k_clock);
    uart_init(on_pll ? PCLK1_HZ : HSI_HZ);
    cm_time_init(on_pll ? SYSCLK_HZ : HSI_HZ);
    cm_entropy_init();
}

int cm_uart_poll(uint8_t *byte)
{
    return cm_rx_take(byte);
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

/* No RNG on the F446: the unique ID at least tells boards apart (cm_board.c adds timing). Read
   by probe: QEMU's netduinoplus2 does not decode it. */
uint32_t cm_board_hw_random(void)
{
    uint32_t uid[3];
    for (uint32_t i = 0; i < 3u; i++) {
        (void)cm_probe_read32(STM32F4_UID_BASE + 4u * i, &uid[i]);
    }
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
