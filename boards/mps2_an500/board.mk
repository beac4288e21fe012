# MPS2 AN500 (Cortex-M7; single-precision FPU as on the STM32F746) under qemu-system-arm -M
# mps2-an500. The image gets only the memory of a 32F746G-DISCO (1 MiB flash, 320 KiB RAM) (see
# linker.ld), not the 4 MiB QEMU offers.
ARCH     := -mcpu=cortex-m7 -mthumb -mfloat-abi=hard -mfpu=fpv5-sp-d16
LDSCRIPT := boards/mps2_an500/linker.ld
include boards/mps2_common/mps2.mk
