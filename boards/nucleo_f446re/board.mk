# ST Nucleo-F446RE (STM32F446RE, Cortex-M4F, 180 MHz, 512 KiB flash, 128 KiB RAM). UART: USART2
# to the ST-LINK/V2-1 virtual COM port. platformio.ini [env:nucleo_f446re] builds the same files.
ARCH      := -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16
LDSCRIPT  := boards/nucleo_f446re/linker.ld
UART_BAUD ?= 921600
include boards/stm32_common/stm32.mk
