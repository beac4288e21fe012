/*
 * The STM32F446 registers this board touches beyond boards/stm32_common/stm32_regs.h
 * (RM0390), no vendor headers: the flash caches, USART2 and the unique device ID.
 */
#ifndef TS_STM32F446_REGS_H
#define TS_STM32F446_REGS_H

#include "stm32_regs.h"

#define FLASH_ACR_ICEN (1u << 9)
#define FLASH_ACR_DCEN (1u << 10)

/* USART2 (0x40004400, APB1), the original STM32 USART */
#define USART2 ((stm32_usart_v1_t *)0x40004400u)

/* 96-bit unique device ID */
#define STM32F4_UID_BASE 0x1FFF7A10u

#endif
