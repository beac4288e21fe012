# Cortex-M0+ code (ARMv6-M, soft-float) on MPS2 AN385 under qemu-system-arm -M mps2-an385. The
# image gets only the memory of a Raspberry Pi Pico (2 MiB flash, 264 KiB RAM) (see linker.ld),
# not the 4 MiB QEMU offers.
ARCH     := -mcpu=cortex-m0plus -mthumb -mfloat-abi=soft
LDSCRIPT := boards/mps2_an385_m0plus/linker.ld
include boards/mps2_common/mps2.mk
