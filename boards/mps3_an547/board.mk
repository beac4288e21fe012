# MPS3 AN547 (Corstone SSE-300: Cortex-M55 with Helium (MVE) and the FPU, in Secure state) under
# qemu-system-arm -M mps3-an547. The image gets a Cortex-M55 part's 512 KiB of ITCM for code and
# 512 KiB of DTCM for data (see linker.ld). Same CMSDK UART glue as the MPS2 boards.
ARCH     := -mcpu=cortex-m55 -mthumb -mfloat-abi=hard
LDSCRIPT := boards/mps3_an547/linker.ld
include boards/mps2_common/mps2.mk
