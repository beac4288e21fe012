/*
 * RP2040 second-stage boot ("boot2"): the first 256 bytes of flash. The boot ROM copies them to
 * SRAM (0x20041F00), checks the CRC-32 in the last 4 bytes and jumps here. This code is
 * position-independent (literals are PC-relative) and does what the ROM cannot know for the
 * board's flash chip: it sets up the XIP SSI so the CPU can execute from flash, then starts the
 * application whose vector table follows at 0x10000100.
 *
 * Serial read (command 03h, 24-bit address, one 32-bit frame per access) at clk_sys / 4: works
 * with any SPI NOR flash (the Pico's W25Q16JV reads 03h up to 50 MHz; 133 MHz / 4 = 33 MHz).
 * Slower than quad reads, but the 16 KiB XIP cache holds the kernels' hot loops.
 *
 * The CRC word is written after linking by boot2_crc.py (the Makefile's and PlatformIO's
 * post-link step): RP2040 datasheet 2.8.1.3.1, CRC-32 with polynomial 0x04C11DB7, initial value
 * 0xFFFFFFFF, no reflection, no final XOR, over the first 252 bytes.
 */
    .cpu cortex-m0plus
    .thumb
    .syntax unified

    .equ XIP_SSI_BASE, 0x18000000
    .equ SSI_CTRLR0, 0x00
    .equ SSI_CTRLR1, 0x04
    .equ SSI_SSIENR, 0x08
    .equ SSI_BAUDR, 0x14
    .equ SSI_SPI_CTRLR0, 0xF4
    /* CTRLR0: standard SPI frame format, DFS_32 = 31 (32-bit frames), TMOD = 3 (EEPROM read:
       send the command and address, then receive). */
    .equ CTRLR0_XIP_03H, (31 << 16) | (3 << 8)
    /* SPI_CTRLR0: XIP_CMD = 03h, INST_L = 2 (8-bit instruction), ADDR_L = 6 (24-bit address),
       TRANS_TYPE = 0 (instruction and address both on one line). */
    .equ SPI_CTRLR0_XIP_03H, (0x03 << 24) | (2 << 8) | (6 << 2)
    .equ SCK_DIVIDER, 4
    .equ APP_VECTORS, 0x10000100
    .equ SCB_VTOR, 0xE000ED08

    .section .boot2, "ax"
    .global ts_boot2
    .type ts_boot2, %function
    .thumb_func
ts_boot2:
    ldr r3, =XIP_SSI_BASE
    movs r0, #0
    str r0, [r3, #SSI_SSIENR]       /* registers change only while the SSI is off */
    movs r0, #SCK_DIVIDER
    str r0, [r3, #SSI_BAUDR]
    ldr r0, =CTRLR0_XIP_03H
    str r0, [r3, #SSI_CTRLR0]
    movs r0, #0
    str r0, [r3, #SSI_CTRLR1]       /* NDF = 0: one data frame per XIP access */
    ldr r0, =SPI_CTRLR0_XIP_03H
    ldr r1, =SSI_SPI_CTRLR0
    str r0, [r3, r1]
    movs r0, #1
    str r0, [r3, #SSI_SSIENR]

    ldr r0, =APP_VECTORS            /* flash is readable now: start the application */
    ldr r1, =SCB_VTOR
    str r0, [r1]
    ldmia r0!, {r1, r2}             /* initial SP, reset handler */
    msr msp, r1
    bx r2
    .ltorg

    .org 252
    .word 0                         /* CRC-32, sealed after linking */
    .size ts_boot2, . - ts_boot2
