/*
 * The STM32F746 registers this board touches beyond boards/stm32_common/stm32_regs.h
 * (RM0385), no vendor headers: the flash accelerator, USART1 and the RNG.
 */
#ifndef TS_STM32F746_REGS_H
#define TS_STM32F746_REGS_H

#include "stm32_regs.h"

#define FLASH_ACR_ARTEN (1u << 9)

/* USART1 (0x40011000, APB2), the newer STM32 USART */
#define USART1 ((stm32_usart_v2_t *)0x40011000u)

/* RNG (0x50060800), clocked from the PLL's 48 MHz Q output */
#define RCC_AHB2ENR_RNGEN (1u << 6)
#define RNG_CR CM_REG(0x50060800u)
#define RNG_CR_RNGEN (1u << 2)
#define RNG_SR CM_REG(0x50060804u)
#define RNG_SR_DRDY (1u << 0)
#define RNG_DR CM_REG(0x50060808u)

#endif
