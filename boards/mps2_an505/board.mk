# MPS2 AN505 (Cortex-M33 in Secure state; built without the FPU: soft-float) under
# qemu-system-arm -M mps2-an505. The image gets only the memory of a Cortex-M33 part with 512 KiB
# flash and 256 KiB RAM (see linker.ld), not the 4 MiB QEMU offers.
ARCH     := -mcpu=cortex-m33 -mthumb -mfloat-abi=soft
LDSCRIPT := boards/mps2_an505/linker.ld
include boards/mps2_common/mps2.mk
