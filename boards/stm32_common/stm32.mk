# Shared by the STM32 boards' board.mk (nucleo_f446re, disco_f746ng): the clock, reset-cause
# and pin code in boards/stm32_common, then the Cortex-M rules. platformio.ini's STM32 envs name
# the same folder.
BOARD_SRCS += $(wildcard boards/stm32_common/*.c)
INCLUDES   += -Iboards/stm32_common
include boards/cortex_m/cortex_m.mk
