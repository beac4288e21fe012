# MPS2 AN386 (Cortex-M4F) under qemu-system-arm -M mps2-an386. The image gets only the memory of
# a Nucleo-F446RE (512 KiB flash, 128 KiB RAM) (see linker.ld), not the 4 MiB QEMU offers.
ARCH     := -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16
LDSCRIPT := boards/mps2_an386/linker.ld
include boards/mps2_common/mps2.mk
