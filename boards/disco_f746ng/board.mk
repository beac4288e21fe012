# ST 32F746G-DISCO (STM32F746NG, Cortex-M7 with a single-precision FPU, 216 MHz, 1 MiB flash,
# 320 KiB RAM). UART: USART1 to the ST-LINK/V2-1 virtual COM port. platformio.ini
# [env:disco_f746ng] builds the same files.
ARCH      := -mcpu=cortex-m7 -mthumb -mfloat-abi=hard -mfpu=fpv5-sp-d16
LDSCRIPT  := boards/disco_f746ng/linker.ld
UART_BAUD ?= 921600
include boards/stm32_common/stm32.mk
