# Shared by the MPS2 boards' board.mk (QEMU mps2-an385/an386/an500/an505): the CMSDK UART glue
# in boards/mps2_common, then the Cortex-M rules. QEMU ignores the baud rate.
BOARD_SRCS += $(wildcard boards/mps2_common/*.c)
INCLUDES   += -Iboards/mps2_common
UART_BAUD  ?= 115200
include boards/cortex_m/cortex_m.mk
