# The firmware as a Linux process; its UART is a pty (the path is printed as
# `TINYSPLIT_PTY <path>` on stdout). SANITIZE=1 adds ASan + UBSan.
CC      := gcc
CFLAGS  := $(COMMON)
LDFLAGS :=
ifeq ($(SANITIZE),1)
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
CFLAGS  += $(SAN)
LDFLAGS += $(SAN)
endif
TARGET  := tinysplit

$(BUILD_DIR)/$(TARGET): $(OBJS)
	$(CC) $(OBJS) $(LDFLAGS) -o $@
