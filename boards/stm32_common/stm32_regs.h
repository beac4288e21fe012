/*
 * The registers the STM32F4 and STM32F7 share at the same addresses with the same bits, as far
 * as tinysplit's boards touch them (RM0390 for the F446, RM0385 for the F746): RCC, PWR, the
 * flash interface and the GPIO ports; and the two USART register layouts (the F4's SR/DR, the
 * F7's ISR/RDR/TDR). No vendor headers. A board's own header adds its instances and extras.
 */
#ifndef TS_STM32_REGS_H
#define TS_STM32_REGS_H

#include <stdint.h>

#include "cm_regs.h"

/* RCC (0x40023800) */
#define RCC_CR CM_REG(0x40023800u)
#define RCC_CR_HSION (1u << 0)
#define RCC_CR_HSIRDY (1u << 1)
#define RCC_CR_PLLON (1u << 24)
#define RCC_CR_PLLRDY (1u << 25)
#define RCC_PLLCFGR CM_REG(0x40023804u)
#define RCC_PLLCFGR_PLLM(m) ((uint32_t)(m) << 0) /* VCO input = PLL source / M */
#define RCC_PLLCFGR_PLLN(n) ((uint32_t)(n) << 6) /* VCO = input * N */
#define RCC_PLLCFGR_PLLP_DIV2 (0u << 16)         /* SYSCLK = VCO / 2 */
#define RCC_PLLCFGR_PLLSRC_HSI (0u << 22)
#define RCC_PLLCFGR_PLLQ(q) ((uint32_t)(q) << 24) /* 48 MHz domain = VCO / Q */
#define RCC_PLLCFGR_PLLR(r) ((uint32_t)(r) << 28) /* F446 only; reserved (0) on the F746 */
#define RCC_CFGR CM_REG(0x40023808u)
#define RCC_CFGR_SW_PLL (2u << 0)
#define RCC_CFGR_SW_MASK (3u << 0)
#define RCC_CFGR_SWS_PLL (2u << 2)
#define RCC_CFGR_SWS_MASK (3u << 2)
#define RCC_CFGR_HPRE_DIV1 (0u << 4)
#define RCC_CFGR_PPRE1_DIV4 (5u << 10)
#define RCC_CFGR_PPRE2_DIV2 (4u << 13)
#define RCC_CFGR_PPRE_MASK ((7u << 10) | (7u << 13) | (15u << 4))
#define RCC_AHB1ENR CM_REG(0x40023830u)
#define RCC_AHB1ENR_GPIOAEN (1u << 0)
#define RCC_AHB1ENR_GPIOBEN (1u << 1)
#define RCC_AHB2ENR CM_REG(0x40023834u)
#define RCC_APB1ENR CM_REG(0x40023840u)
#define RCC_APB1ENR_USART2EN (1u << 17)
#define RCC_APB1ENR_PWREN (1u << 28)
#define RCC_APB2ENR CM_REG(0x40023844u)
#define RCC_APB2ENR_USART1EN (1u << 4)
#define RCC_CSR CM_REG(0x40023874u)
#define RCC_CSR_RMVF (1u << 24)
#define RCC_CSR_BORRSTF (1u << 25)
#define RCC_CSR_PINRSTF (1u << 26)
#define RCC_CSR_PORRSTF (1u << 27)
#define RCC_CSR_SFTRSTF (1u << 28)
#define RCC_CSR_IWDGRSTF (1u << 29)
#define RCC_CSR_WWDGRSTF (1u << 30)

/* PWR (0x40007000): regulator scale 1 and over-drive, needed above 168 MHz. The F7's manual
   calls the two registers CR1 and CSR1; addresses and bits are the F4's. */
#define PWR_CR CM_REG(0x40007000u)
#define PWR_CR_VOS_SCALE1 (3u << 14)
#define PWR_CR_ODEN (1u << 16)
#define PWR_CR_ODSWEN (1u << 17)
#define PWR_CSR CM_REG(0x40007004u)
#define PWR_CSR_ODRDY (1u << 16)
#define PWR_CSR_ODSWRDY (1u << 17)

/* FLASH interface (0x40023C00). The cache bits differ: the board passes its own. */
#define FLASH_ACR CM_REG(0x40023C00u)
#define FLASH_ACR_LATENCY(ws) ((uint32_t)(ws) << 0)
#define FLASH_ACR_LATENCY_MASK (15u << 0)
#define FLASH_ACR_PRFTEN (1u << 8)

/* GPIO ports: MODER 0x00, OSPEEDR 0x08, PUPDR 0x0C, AFRL 0x20, AFRH 0x24 */
#define GPIOA_BASE 0x40020000u
#define GPIOB_BASE 0x40020400u
#define GPIO_MODER(port) CM_REG((port) + 0x00u)
#define GPIO_OSPEEDR(port) CM_REG((port) + 0x08u)
#define GPIO_PUPDR(port) CM_REG((port) + 0x0Cu)
#define GPIO_AFR(port, pin) CM_REG((port) + ((pin) < 8u ? 0x20u : 0x24u))

/* The original STM32 USART (F1/F2/F4): SR/DR/BRR/CR1 */
typedef struct {
    volatile uint32_t SR;  /* 0x00 */
    volatile uint32_t DR;  /* 0x04 */
    volatile uint32_t BRR; /* 0x08: USARTDIV * 16 with OVER8 = 0, i.e. round(PCLK / baud) */
    volatile uint32_t CR1; /* 0x0C */
    volatile uint32_t CR2; /* 0x10 */
    volatile uint32_t CR3; /* 0x14 */
} stm32_usart_v1_t;

#define USART_V1_SR_ORE (1u << 3)
#define USART_V1_SR_RXNE (1u << 5)
#define USART_V1_SR_TXE (1u << 7)
#define USART_V1_CR1_RE (1u << 2)
#define USART_V1_CR1_TE (1u << 3)
#define USART_V1_CR1_UE (1u << 13)

/* The newer STM32 USART (F0/F3/F7/L4...): ISR/ICR/RDR/TDR */
typedef struct {
    volatile uint32_t CR1;  /* 0x00 */
    volatile uint32_t CR2;  /* 0x04 */
    volatile uint32_t CR3;  /* 0x08 */
    volatile uint32_t BRR;  /* 0x0C: round(USART clock / baud) with OVER8 = 0 */
    volatile uint32_t GTPR; /* 0x10 */
    volatile uint32_t RTOR; /* 0x14 */
    volatile uint32_t RQR;  /* 0x18 */
    volatile uint32_t ISR;  /* 0x1C */
    volatile uint32_t ICR;  /* 0x20 */
    volatile uint32_t RDR;  /* 0x24 */
    volatile uint32_t TDR;  /* 0x28 */
} stm32_usart_v2_t;

#define USART_V2_CR1_UE (1u << 0)
#define USART_V2_CR1_RE (1u << 2)
#define USART_V2_CR1_TE (1u << 3)
#define USART_V2_CR3_OVRDIS (1u << 12)
#define USART_V2_ISR_RXNE (1u << 5)
#define USART_V2_ISR_TXE (1u << 7)

#endif
