/* mps2-an505 under QEMU -M mps2-an505 (boards/mps2_common/mps2_board.c reads these). */
#ifndef TS_MPS2_BOARD_H
#define TS_MPS2_BOARD_H

#define MPS2_BOARD_NAME "mps2-an505"
#define MPS2_SYSCLK_HZ 20000000u
#define MPS2_UART0_BASE 0x50200000u
#define MPS2_UART0_RX_IRQ 32u /* AN505: UART0 RX is line 32 */

#endif
