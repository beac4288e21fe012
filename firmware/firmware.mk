# tinysplit firmware build (the host CLI runs `make -f firmware/firmware.mk` from the source root;
# the top-level Makefile includes this file; platformio.ini compiles the same files).
#
#   make BOARD=mps2_an386 MODEL_DIR=out/digits     -> build/mps2_an386/tinysplit.elf (+ .map, .bin)
#   make BOARD=nucleo_f446re MODEL_DIR=out/digits  -> a real board's image (boards/README.md lists
#                                                     the boards; UART_BAUD=... sets their baud)
#   make BOARD=native MODEL_DIR=out/digits         -> build/native/tinysplit (UART on a pty)
#   make BOARD=native SANITIZE=1 ...               -> with ASan + UBSan
#   make KERNELS=reference ...                     -> the reference kernels instead of the
#                                                     optimized ones (firmware/kernels/*_fast.c)
#   make hostlib                                   -> build/hostlib/libtinysplit.so (kernels and
#                                                     protocol for the Python tests, via ctypes)
BOARD     ?= mps2_an386
MODEL_DIR ?=
# fast: the optimized kernels where there is one (ts_kernels.h, TS_KERNEL); reference: the plain
# reference kernels everywhere (the oracle the optimized ones are tested against)
KERNELS   ?= fast
ifeq ($(filter $(KERNELS),fast reference),)
$(error KERNELS must be fast or reference, not '$(KERNELS)')
endif
BUILD_DIR ?= build/$(BOARD)$(if $(SANITIZE),-san,)$(if $(filter reference,$(KERNELS)),-ref,)

CORE_SRCS := $(wildcard firmware/kernels/*.c) $(wildcard firmware/protocol/*.c)
APP_SRCS  := $(wildcard firmware/client/*.c)
BOARD_SRCS = $(wildcard boards/$(BOARD)/*.c)
MODEL_SRCS = $(if $(MODEL_DIR),$(wildcard $(MODEL_DIR)/*.c),)
INCLUDES   = -Ifirmware/include -Ifirmware/protocol -Iboards/$(BOARD) $(if $(MODEL_DIR),-I$(MODEL_DIR),)

# Same float results on every target: no fused multiply-add, no fast-math.
WARN    := -Wall -Wextra -Werror -Wshadow -Wdouble-promotion -Wno-error=double-promotion
COMMON  := -std=c11 -O2 -g -ffp-contract=off -fno-fast-math $(WARN)

# Extra compiler flags for one build (tests use it for -D switches), e.g. EXTRA_CFLAGS=-DFOO=1.
EXTRA_CFLAGS ?=
KERNEL_FLAGS := $(if $(filter reference,$(KERNELS)),-DTS_REFERENCE_KERNELS,)

OBJS = $(patsubst %.c,$(BUILD_DIR)/obj/%.o,$(CORE_SRCS) $(APP_SRCS) $(BOARD_SRCS)) \
       $(patsubst $(MODEL_DIR)/%.c,$(BUILD_DIR)/obj/model/%.o,$(MODEL_SRCS))

# board.mk defines CC, CFLAGS (from $(COMMON)), LDFLAGS, TARGET and the link rule
# `$(BUILD_DIR)/$(TARGET): $(OBJS)`; it is included after OBJS so that rule sees the objects, and
# may add board outputs to `all` (e.g. a .bin). `all` stays the default goal.
.DEFAULT_GOAL := all
include firmware/fuzz/fuzz.mk
include boards/$(BOARD)/board.mk

.PHONY: all hostlib clean
all: $(BUILD_DIR)/$(TARGET)

$(BUILD_DIR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(KERNEL_FLAGS) $(EXTRA_CFLAGS) $(INCLUDES) -MMD -MP -c $< -o $@

# The model's folder changes between builds into one BUILD_DIR (tests export to temporary
# folders): its objects list their headers here instead of in a .d file, which would name a
# previous export's model_data.c and stop make once that folder is gone.
$(BUILD_DIR)/obj/model/%.o: $(MODEL_DIR)/%.c $(wildcard $(MODEL_DIR)/*.h) $(wildcard firmware/include/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(KERNEL_FLAGS) $(EXTRA_CFLAGS) $(INCLUDES) -c $< -o $@

-include $(filter-out $(BUILD_DIR)/obj/model/%,$(OBJS:.o=.d))

# The app's objects include model_data.h, and their .d files name the header of the export they
# were built with. Built with another export into the same BUILD_DIR (say digits-mlp, then
# mnist-cnn), make would see nothing changed and link stale objects: model.id records the
# export's folder and the checksum of its header, and the app and model objects depend on it.
ifneq ($(MODEL_DIR),)
MODEL_ID := $(abspath $(MODEL_DIR)) $(shell cksum < $(MODEL_DIR)/model_data.h 2>/dev/null)
$(shell mkdir -p $(BUILD_DIR) && { test "$$(cat $(BUILD_DIR)/model.id 2>/dev/null)" = "$(MODEL_ID)" || echo "$(MODEL_ID)" > $(BUILD_DIR)/model.id; })
$(patsubst %.c,$(BUILD_DIR)/obj/%.o,$(APP_SRCS)) $(patsubst $(MODEL_DIR)/%.c,$(BUILD_DIR)/obj/model/%.o,$(MODEL_SRCS)): $(BUILD_DIR)/model.id
endif

# Built with KERNELS=fast, then reference, into one BUILD_DIR: make would see no source change and
# link the other kind's objects. flags.id records the kernel choice; every object depends on it.
$(shell mkdir -p $(BUILD_DIR) && { test -f $(BUILD_DIR)/flags.id && test "$$(cat $(BUILD_DIR)/flags.id)" = "kernels=$(KERNELS)" || echo "kernels=$(KERNELS)" > $(BUILD_DIR)/flags.id; })
$(OBJS): $(BUILD_DIR)/flags.id

HOSTLIB_DIR := build/hostlib
hostlib: $(HOSTLIB_DIR)/libtinysplit.so
$(HOSTLIB_DIR)/libtinysplit.so: $(CORE_SRCS) $(wildcard firmware/include/*.h) $(wildcard firmware/protocol/*.h)
	@mkdir -p $(dir $@)
	gcc $(COMMON) -fPIC -shared -Ifirmware/include -Ifirmware/protocol $(CORE_SRCS) -o $@

clean:
	rm -rf build

# `make -s BOARD=x print-CC print-TARGET`: what host/board/build.py asks before building (no shell
# command, so it works even when PATH lacks the tools).
print-%:
	$(info $($*))
