/*
 * The RP2040 registers this board touches (RP2040 datasheet), no Pico SDK: RESETS, CLOCKS,
 * XOSC, PLL_SYS, IO_BANK0, PADS_BANK0, UART0 (an Arm PL011), ROSC, WATCHDOG, VREG_AND_CHIP_RESET.
 * Every peripheral register also has atomic aliases: +0x2000 sets bits, +0x3000 clears them.
 */
#ifndef TS_RP2040_REGS_H
#define TS_RP2040_REGS_H

#include <stdint.h>

#include "cm_regs.h"

#define RP_SET(addr) CM_REG((addr) + 0x2000u)
#define RP_CLR(addr) CM_REG((addr) + 0x3000u)

/* RESETS (0x4000C000): a block is held in reset while its bit is 1 */
#define RESETS_RESET_ADDR 0x4000C000u
#define RESETS_RESET_DONE CM_REG(0x4000C008u)
#define RESET_IO_BANK0 (1u << 5)
#define RESET_PADS_BANK0 (1u << 8)
#define RESET_PLL_SYS (1u << 12)
#define RESET_UART0 (1u << 22)

/* CLOCKS (0x40008000) */
#define CLK_REF_CTRL_ADDR 0x40008030u
#define CLK_REF_CTRL CM_REG(CLK_REF_CTRL_ADDR)
#define CLK_REF_CTRL_SRC_ROSC 0u
#define CLK_REF_CTRL_SRC_XOSC 2u
#define CLK_REF_DIV CM_REG(0x40008034u)
#define CLK_REF_SELECTED CM_REG(0x40008038u) /* one-hot: bit n = source n */
#define CLK_SYS_CTRL_ADDR 0x4000803Cu
#define CLK_SYS_CTRL CM_REG(CLK_SYS_CTRL_ADDR)
#define CLK_SYS_CTRL_SRC_AUX 1u       /* clksrc_clk_sys_aux (else clk_ref) */
#define CLK_SYS_CTRL_AUXSRC_PLL_SYS 0u /* bits 7:5 */
#define CLK_SYS_DIV CM_REG(0x40008040u)
#define CLK_SYS_SELECTED CM_REG(0x40008044u)
#define CLK_PERI_CTRL CM_REG(0x40008048u)
#define CLK_PERI_CTRL_ENABLE (1u << 11) /* AUXSRC (bits 7:5) 0 = clk_sys */
#define CLK_SYS_RESUS_CTRL CM_REG(0x40008078u)
#define CLK_DIV_INT1 (1u << 8) /* integer divider 1 */

/* XOSC (0x40024000): the Pico's 12 MHz crystal */
#define XOSC_CTRL CM_REG(0x40024000u)
#define XOSC_CTRL_FREQ_RANGE_1_15MHZ 0xAA0u
#define XOSC_CTRL_ENABLE (0xFABu << 12)
#define XOSC_STATUS CM_REG(0x40024004u)
#define XOSC_STATUS_STABLE (1u << 31)
#define XOSC_STARTUP CM_REG(0x4002400Cu) /* in units of 256 reference cycles */

/* PLL_SYS (0x40028000) */
#define PLL_SYS_CS CM_REG(0x40028000u)
#define PLL_CS_LOCK (1u << 31)
#define PLL_SYS_PWR_ADDR 0x40028004u
#define PLL_PWR_PD (1u << 0)
#define PLL_PWR_POSTDIVPD (1u << 3)
#define PLL_PWR_VCOPD (1u << 5)
#define PLL_SYS_FBDIV_INT CM_REG(0x40028008u)
#define PLL_SYS_PRIM CM_REG(0x4002800Cu)
#define PLL_PRIM_POSTDIV1(d) ((uint32_t)(d) << 16)
#define PLL_PRIM_POSTDIV2(d) ((uint32_t)(d) << 12)

/* IO_BANK0 (0x40014000): GPIOn_CTRL at 0x004 + 8n, FUNCSEL in bits 4:0 */
#define IO_GPIO_CTRL(n) CM_REG(0x40014004u + 8u * (n))
#define IO_FUNC_UART 2u

/* PADS_BANK0 (0x4001C000): GPIOn at 0x004 + 4n */
#define PADS_GPIO(n) CM_REG(0x4001C004u + 4u * (n))
#define PAD_SCHMITT (1u << 1)
#define PAD_PUE (1u << 3)
#define PAD_DRIVE_4MA (1u << 4)
#define PAD_IE (1u << 6)

/* UART0 (0x40034000), PL011 */
#define UART0_DR CM_REG(0x40034000u)
#define UART0_FR CM_REG(0x40034018u)
#define UART_FR_RXFE (1u << 4)
#define UART_FR_TXFF (1u << 5)
#define UART0_IBRD CM_REG(0x40034024u)
#define UART0_FBRD CM_REG(0x40034028u)
#define UART0_LCR_H CM_REG(0x4003402Cu) /* written after IBRD/FBRD: that latches them */
#define UART_LCR_H_FEN (1u << 4)
#define UART_LCR_H_WLEN8 (3u << 5)
#define UART0_CR CM_REG(0x40034030u)
#define UART_CR_UARTEN (1u << 0)
#define UART_CR_TXE (1u << 8)
#define UART_CR_RXE (1u << 9)
#define UART0_IMSC CM_REG(0x40034038u) /* interrupt mask set/clear */
#define UART0_ICR CM_REG(0x40034044u)  /* interrupt clear, write 1 */
#define UART_INT_RX (1u << 4)          /* RX FIFO at its trigger level (half) */
#define UART_INT_TX (1u << 5)          /* TX FIFO at or below its trigger level (half) */
#define UART_INT_RT (1u << 6)          /* RX timeout: bytes below the level, line idle */

/* ROSC (0x40060000): one random bit per read */
#define ROSC_RANDOMBIT CM_REG(0x4006001Cu)

/* Reset reasons */
#define WATCHDOG_REASON CM_REG(0x40058008u)
#define CHIP_RESET CM_REG(0x40064008u)
#define CHIP_RESET_HAD_RUN (1u << 16)

#endif
