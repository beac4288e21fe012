# Shared by every Cortex-M board's board.mk, which sets before including this file:
#   ARCH       -mcpu/-mthumb/-mfloat-abi/-mfpu of the board
#   LDSCRIPT   boards/<board>/linker.ld (MEMORY; INCLUDEs cortex_m_sections.ld)
#   UART_BAUD  default baud of the host UART (`make UART_BAUD=115200 ...` overrides it)
# and may add BOARD_ASM (assembly sources) and POST_LINK (a Python script run on the ELF).
# platformio.ini names the same sources, flags and linker script (tests/boards/test_platformio.py).
CC        := arm-none-eabi-gcc
OBJCOPY   := arm-none-eabi-objcopy
PYTHON    ?= python3
BOARD_SRCS += $(wildcard boards/cortex_m/*.c)
INCLUDES  += -Iboards/cortex_m
CFLAGS    := $(COMMON) $(ARCH) -ffunction-sections -fdata-sections -DTS_UART_BAUD=$(UART_BAUD)
# nano.specs: newlib-nano for memcpy/memset only; there is no printf, heap or syscall layer, so
# anything that needs one fails to link rather than growing the image.
LINKFLAGS := -nostartfiles --specs=nano.specs -Wl,--gc-sections -Lboards/cortex_m
LDFLAGS   := $(ARCH) $(LINKFLAGS) -T $(LDSCRIPT) -Wl,-Map=$(BUILD_DIR)/tinysplit.map
TARGET    := tinysplit.elf
OBJS      += $(patsubst %.S,$(BUILD_DIR)/obj/%.o,$(BOARD_ASM))

$(BUILD_DIR)/$(TARGET): $(OBJS) $(LDSCRIPT) boards/cortex_m/cortex_m_sections.ld $(POST_LINK)
	$(CC) $(OBJS) $(LDFLAGS) -o $@
	$(if $(POST_LINK),$(PYTHON) $(POST_LINK) $@ || { rm -f $@; exit 1; })

$(BUILD_DIR)/tinysplit.bin: $(BUILD_DIR)/$(TARGET)
	$(OBJCOPY) -O binary $< $@

$(BUILD_DIR)/obj/%.o: %.S
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(EXTRA_CFLAGS) $(INCLUDES) -MMD -MP -c $< -o $@

all: $(BUILD_DIR)/tinysplit.bin
