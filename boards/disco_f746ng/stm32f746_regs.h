/*
 * The STM32F746 registers this board touches (RM0385), no vendor headers: RCC, PWR, FLASH,
 * GPIOA/GPIOB, USART1 and RNG.
 */
#ifndef TS_STM32F746_REGS_H
#define TS_STM32F746_REGS_H

#include <stdint.h>

#include "cm_regs.h"

/* RCC (0x40023800) */
#define RCC_CR CM_REG(0x40023800u)
#define RCC_CR_HSION (1u << 0)
#define RCC_CR_HSIRDY (1u << 1)
#define RCC_CR_PLLON (1u << 24)
#define RCC_CR_PLLRDY (1u << 25)
#define RCC_PLLCFGR CM_REG(0x40023804u)
#define RCC_PLLCFGR_PLLM(m) ((uint32_t)(m) << 0)
#define RCC_PLLCFGR_PLLN(n) ((uint32_t)(n) << 6)
#define RCC_PLLCFGR_PLLP_DIV2 (0u << 16)
#define RCC_PLLCFGR_PLLSRC_HSI (0u << 22)
#define RCC_PLLCFGR_PLLQ(q) ((uint32_t)(q) << 24)
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
#define RCC_AHB2ENR_RNGEN (1u << 6)
#define RCC_APB1ENR CM_REG(0x40023840u)
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

/* PWR (0x40007000): regulator scale 1 and over-drive, needed above 180 MHz */
#define PWR_CR1 CM_REG(0x40007000u)
#define PWR_CR1_VOS_SCALE1 (3u << 14)
#define PWR_CR1_ODEN (1u << 16)
#define PWR_CR1_ODSWEN (1u << 17)
#define PWR_CSR1 CM_REG(0x40007004u)
#define PWR_CSR1_ODRDY (1u << 16)
#define PWR_CSR1_ODSWRDY (1u << 17)

/* FLASH interface (0x40023C00) */
#define FLASH_ACR CM_REG(0x40023C00u)
#define FLASH_ACR_LATENCY(ws) ((uint32_t)(ws) << 0)
#define FLASH_ACR_LATENCY_MASK (15u << 0)
#define FLASH_ACR_PRFTEN (1u << 8)
#define FLASH_ACR_ARTEN (1u << 9)

/* GPIO ports: MODER 0x00, OSPEEDR 0x08, PUPDR 0x0C, AFRL 0x20, AFRH 0x24 */
#define GPIOA_BASE 0x40020000u
#define GPIOB_BASE 0x40020400u
#define GPIO_MODER(port) CM_REG((port) + 0x00u)
#define GPIO_OSPEEDR(port) CM_REG((port) + 0x08u)
#define GPIO_PUPDR(port) CM_REG((port) + 0x0Cu)
#define GPIO_AFRL(port) CM_REG((port) + 0x20u)
#define GPIO_AFRH(port) CM_REG((port) + 0x24u)
#define GPIO_MODE_AF 2u
#define GPIO_SPEED_HIGH 2u
#define GPIO_PULL_UP 1u

/* USART1 (0x40011000), the newer STM32 USART: ISR/ICR/RDR/TDR */
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

#define USART1 ((stm32_usart_v2_t *)0x40011000u)
#define USART_CR1_UE (1u << 0)
#define USART_CR1_RE (1u << 2)
#define USART_CR1_TE (1u << 3)
#define USART_CR3_OVRDIS (1u << 12)
#define USART_ISR_ORE (1u << 3)
#define USART_ISR_RXNE (1u << 5)
#define USART_ISR_TXE (1u << 7)
#define USART_ICR_ORECF (1u << 3)

/* RNG (0x50060800), clocked from the PLL's 48 MHz Q output */
#define RNG_CR CM_REG(0x50060800u)
#define RNG_CR_RNGEN (1u << 2)
#define RNG_SR CM_REG(0x50060804u)
#define RNG_SR_DRDY (1u << 0)
#define RNG_DR CM_REG(0x50060808u)

#endif
