/* mps3-an547 under QEMU -M mps3-an547 (boards/mps2_common/mps2_board.c reads these). */
#ifndef TS_MPS2_BOARD_H
#define TS_MPS2_BOARD_H

#define MPS2_BOARD_NAME "mps3-an547"
#define MPS2_SYSCLK_HZ 32000000u
#define MPS2_UART0_BASE 0x59303000u /* UART0, Secure alias */
#define MPS2_UART0_RX_IRQ 33u       /* AN547: UART0 RX is line 33, TX 34 */

#endif
