# Raspberry Pi Pico (RP2040, Cortex-M0+ without FPU, 133 MHz, 2 MiB QSPI flash, 264 KiB RAM).
# UART: UART0 on GP0 (TX) / GP1 (RX). The float32 master weights are soft-float here. The image
# starts with boot2 (boot2.S); boot2_crc.py seals its checksum after linking.
# platformio.ini [env:pico] builds the same files.
ARCH      := -mcpu=cortex-m0plus -mthumb -mfloat-abi=soft
LDSCRIPT  := boards/pico/linker.ld
UART_BAUD ?= 921600
BOARD_ASM := boards/pico/boot2.S
POST_LINK := boards/pico/boot2_crc.py
include boards/cortex_m/cortex_m.mk

# A .uf2 to copy onto the RPI-RP2 drive (BOOTSEL): flashing without PlatformIO or a probe.
$(BUILD_DIR)/tinysplit.uf2: $(BUILD_DIR)/tinysplit.bin boards/pico/uf2.py
	$(PYTHON) boards/pico/uf2.py $< $@

all: $(BUILD_DIR)/tinysplit.uf2
