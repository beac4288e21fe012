# MPS2 AN385 (Cortex-M3, no FPU: soft-float) under qemu-system-arm -M mps2-an385. The image gets
# only the memory of an Arduino Due (SAM3X8E: 512 KiB flash, 96 KiB RAM) (see linker.ld), not the
# 4 MiB QEMU offers.
ARCH     := -mcpu=cortex-m3 -mthumb -mfloat-abi=soft
LDSCRIPT := boards/mps2_an385/linker.ld
include boards/mps2_common/mps2.mk
