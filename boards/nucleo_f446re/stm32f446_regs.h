/*
 * The STM32F446 registers this board touches (RM0390), no vendor headers: RCC, PWR, FLASH,
 * GPIOA, USART2 and the unique device ID.
 */
#ifndef TS_STM32F446_REGS_H
#define TS_STM32F446_REGS_H

#include <stdint.h>

#include "cm_regs.h"

/* RCC (0x40023800) */
#define RCC_CR CM_REG(0x40023800u)
#define RCC_CR_HSION (1u << 0)
#define RCC_CR_HSIRDY (1u << 1)
#define RCC_CR_PLLON (1u << 24)
#define RCC_CR_PLLRDY (1u << 25)
#define RCC_PLLCFGR CM_REG(0x40023804u)
#define RCC_PLLCFGR_PLLM(m) ((uint32_t)(m) << 0)   /* VCO input = PLL source / M */
#define RCC_PLLCFGR_PLLN(n) ((uint32_t)(n) << 6)   /* VCO = input * N */
#define RCC_PLLCFGR_PLLP_DIV2 (0u << 16)           /* SYSCLK = VCO / 2 */
#define RCC_PLLCFGR_PLLSRC_HSI (0u << 22)
#define RCC_PLLCFGR_PLLQ(q) ((uint32_t)(q) << 24)
#define RCC_PLLCFGR_PLLR(r) ((uint32_t)(r) << 28)
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
#define RCC_APB1ENR CM_REG(0x40023840u)
#define RCC_APB1ENR_USART2EN (1u << 17)
#define RCC_APB1ENR_PWREN (1u << 28)
#define RCC_CSR CM_REG(0x40023874u)
#define RCC_CSR_RMVF (1u << 24)
#define RCC_CSR_BORRSTF (1u << 25)
#define RCC_CSR_PINRSTF (1u << 26)
#define RCC_CSR_PORRSTF (1u << 27)
#define RCC_CSR_SFTRSTF (1u << 28)
#define RCC_CSR_IWDGRSTF (1u << 29)
#define RCC_CSR_WWDGRSTF (1u << 30)

/* PWR (0x40007000): regulator scale 1 and over-drive, needed above 168 MHz */
#define PWR_CR CM_REG(0x40007000u)
#define PWR_CR_VOS_SCALE1 (3u << 14)
#define PWR_CR_ODEN (1u << 16)
#define PWR_CR_ODSWEN (1u << 17)
#define PWR_CSR CM_REG(0x40007004u)
#define PWR_CSR_ODRDY (1u << 16)
#define PWR_CSR_ODSWRDY (1u << 17)

/* FLASH interface (0x40023C00) */
#define FLASH_ACR CM_REG(0x40023C00u)
#define FLASH_ACR_LATENCY(ws) ((uint32_t)(ws) << 0)
#define FLASH_ACR_LATENCY_MASK (15u << 0)
#define FLASH_ACR_PRFTEN (1u << 8)
#define FLASH_ACR_ICEN (1u << 9)
#define FLASH_ACR_DCEN (1u << 10)

/* GPIOA (0x40020000) */
#define GPIOA_MODER CM_REG(0x40020000u)
#define GPIOA_OSPEEDR CM_REG(0x40020008u)
#define GPIOA_PUPDR CM_REG(0x4002000Cu)
#define GPIOA_AFRL CM_REG(0x40020020u)
#define GPIO_MODE_AF 2u
#define GPIO_SPEED_HIGH 2u
#define GPIO_PULL_UP 1u

/* USART2 (0x40004400), the original STM32 USART: SR/DR/BRR/CR1 */
typedef struct {
    volatile uint32_t SR;  /* 0x00 */
    volatile uint32_t DR;  /* 0x04 */
    volatile uint32_t BRR; /* 0x08: USARTDIV * 16 with OVER8 = 0, i.e. round(PCLK / baud) */
    volatile uint32_t CR1; /* 0x0C */
    volatile uint32_t CR2; /* 0x10 */
    volatile uint32_t CR3; /* 0x14 */
} stm32_usart_v1_t;

#define USART2 ((stm32_usart_v1_t *)0x40004400u)
#define USART_SR_ORE (1u << 3)
#define USART_SR_RXNE (1u << 5)
#define USART_SR_TXE (1u << 7)
#define USART_CR1_RE (1u << 2)
#define USART_CR1_TE (1u << 3)
#define USART_CR1_UE (1u << 13)

/* 96-bit unique device ID */
#define STM32F4_UID_BASE 0x1FFF7A10u

#endif
