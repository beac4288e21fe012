# MPS2 AN386 (Cortex-M4F) under qemu-system-arm -M mps2-an386. The image gets only the memory of
# a real small target (512 KiB flash, 128 KiB RAM, see linker.ld), not the 4 MiB QEMU offers.
CC      := arm-none-eabi-gcc
OBJCOPY := arm-none-eabi-objcopy
ARCH    := -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16
CFLAGS  := $(COMMON) $(ARCH) -ffunction-sections -fdata-sections
LDSCRIPT := boards/mps2_an386/linker.ld
# nano.specs: newlib-nano for memcpy/memset only; there is no printf, heap or syscall layer, so
# anything that needs one fails to link rather than growing the image.
LDFLAGS := $(ARCH) -nostartfiles --specs=nano.specs -T $(LDSCRIPT) \
           -Wl,--gc-sections -Wl,-Map=$(BUILD_DIR)/tinysplit.map
TARGET  := tinysplit.elf

$(BUILD_DIR)/$(TARGET): $(OBJS) $(LDSCRIPT)
	$(CC) $(OBJS) $(LDFLAGS) -o $@

$(BUILD_DIR)/tinysplit.bin: $(BUILD_DIR)/$(TARGET)
	$(OBJCOPY) -O binary $< $@

all: $(BUILD_DIR)/tinysplit.bin
