/* mps2-an385-m0plus under QEMU -M mps2-an385 (boards/mps2_common/mps2_board.c reads these). */
#ifndef TS_MPS2_BOARD_H
#define TS_MPS2_BOARD_H

#define MPS2_BOARD_NAME "mps2-an385-m0plus"
#define MPS2_SYSCLK_HZ 25000000u
#define MPS2_UART0_BASE 0x40004000u
#define MPS2_UART0_RX_IRQ 0u /* UART0 RX is line 0 (TX 1) */

#endif
