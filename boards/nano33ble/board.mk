# Arduino Nano 33 BLE (nRF52840, Cortex-M4F, 64 MHz, 1 MiB flash of which 960 KiB after the
# Arduino bootloader, 256 KiB RAM). UART: UARTE0 on the header pins (D1/TX P1.03, D0/RX P1.10).
# platformio.ini [env:nano33ble] builds the same files.
ARCH      := -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16
LDSCRIPT  := boards/nano33ble/linker.ld
UART_BAUD ?= 921600
include boards/cortex_m/cortex_m.mk
