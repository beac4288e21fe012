/*
 * Reset and fault entry for every Cortex-M board (ARMv6-M, ARMv7-M, ARMv8-M mainline). Vector 0
 * is the top of the stack the application defines (cortex_m_sections.ld, board_config.h). The 16
 * core exceptions are listed here; a board that takes a peripheral interrupt (its UART's RX)
 * lists its lines in its own `ts_device_vectors`, section .isr_vector.device, which the linker
 * script places right after these (cm_board.h). Startup masks every NVIC line a bootloader may
 * have left enabled (Nano 33 BLE's does); the board enables the lines it uses.
 */
#include <stdint.h>
#include <string.h>

#include "cm_board.h"
#include "cm_regs.h"

/* Linker script symbols (cortex_m_sections.ld): only their addresses mean something. */
extern uint32_t __stack_top[];
extern uint32_t __stack_bottom[];
extern uint32_t __data_start[];
extern uint32_t __data_end[];
extern const uint32_t __data_load[];
extern uint32_t __bss_start[];
extern uint32_t __bss_end[];

int main(void);
void Reset_Handler(void);
void ts_startup_c(void) __attribute__((noreturn, used));
void ts_fault_report(const uint32_t *frame, uint32_t ipsr) __attribute__((noreturn, used));
void Fault_Handler(void);
void SysTick_Handler(void);

__attribute__((section(".isr_vector"), used)) const uintptr_t ts_vectors[16] = {
    (uintptr_t)__stack_top,
    (uintptr_t)Reset_Handler,
    (uintptr_t)Fault_Handler, /* NMI */
    (uintptr_t)Fault_Handler, /* HardFault */
    (uintptr_t)Fault_Handler, /* MemManage (mainline) */
    (uintptr_t)Fault_Handler, /* BusFault (mainline) */
    (uintptr_t)Fault_Handler, /* UsageFault (mainline) */
    (uintptr_t)Fault_Handler, /* SecureFault (ARMv8-M with the Security Extension) */
    0, 0, 0,
    (uintptr_t)Fault_Handler, /* SVCall: unused, so unexpected */
    (uintptr_t)Fault_Handler, /* DebugMon */
    0,
    (uintptr_t)Fault_Handler, /* PendSV: unused */
    (uintptr_t)SysTick_Handler,
};

/*
 * With -mfloat-abi=hard the compiler may use FP registers anywhere (even for plain copies), and
 * an FP instruction with CP10/CP11 off is a UsageFault: the FPU is enabled before any C code
 * runs, so this entry is assembly only. Branches go through a register: a 16-bit `b` on ARMv6-M
 * reaches only +-2 KiB.
 */
#if defined(__ARM_FP)
#define CM_ENABLE_FPU                                                                           \
    "ldr r0, =0xE000ED88\n" /* CPACR */                                                         \
    "ldr r1, [r0]\n"                                                                            \
    "orr r1, r1, #(0xF << 20)\n" /* CP10, CP11 full access */                                   \
    "str r1, [r0]\n"                                                                            \
    "dsb\n"                                                                                     \
    "isb\n"
#else
#define CM_ENABLE_FPU ""
#endif

__attribute__((naked)) void Reset_Handler(void)
{
    __asm volatile(CM_ENABLE_FPU "ldr r0, =ts_startup_c\n"
                                 "bx r0\n"
                                 ".ltorg\n");
}

void ts_startup_c(void)
{
    /* A bootloader (Nano 33 BLE's, RP2040's boot2) may have run first: take the vector table
       and mask whatever interrupts it left on. */
    CM_SCB_VTOR = (uint32_t)(uintptr_t)ts_vectors;
    for (uint32_t i = 0; i < CM_NVIC_WORDS; i++) {
        CM_NVIC_ICER(i) = 0xFFFFFFFFu;
        CM_NVIC_ICPR(i) = 0xFFFFFFFFu;
    }
    cm_dsb_isb();

    size_t data_bytes = (size_t)((uintptr_t)__data_end - (uintptr_t)__data_start);
    size_t bss_bytes = (size_t)((uintptr_t)__bss_end - (uintptr_t)__bss_start);
    memcpy(__data_start, __data_load, data_bytes);
    memset(__bss_start, 0, bss_bytes);
    (void)main();
    for (;;) {
        __asm volatile("wfi");
    }
}

/* ---- faults: one marker line on the UART, then halt ---- */

/* cm_probe_read32 (cm_board.c) arms this around one load: 1 = armed, 2 = that load faulted. */
volatile uint32_t cm_probe_state;

static void fault_puts(const char *s)
{
    while (*s != '\0') {
        cm_fault_putc(*s++);
    }
}

static void fault_puthex(uint32_t v)
{
    static const char hex[] = "0123456789abcdef";
    for (int shift = 28; shift >= 0; shift -= 4) {
        cm_fault_putc(hex[(v >> shift) & 0xFu]);
    }
}

/*
 * Every unexpected exception lands here on a fresh stack (the old one may be what overflowed):
 * r0 = the stack the exception frame was pushed to, r1 = IPSR (exception number).
 *
 * Except a fault of cm_probe_read32's armed load (run in thread mode on the MSP): that one is
 * marked in cm_probe_state and skipped (the stacked PC, word 6 of the frame, moves past the
 * 16- or 32-bit load), and the probe returns "not readable". A precise bus fault stacks the PC
 * of the load itself.
 */
__attribute__((naked)) void Fault_Handler(void)
{
    __asm volatile("ldr r2, =cm_probe_state\n"
                   "ldr r3, [r2]\n"
                   "cmp r3, #1\n"
                   "bne 1f\n"
                   "mov r3, #2\n"
                   "str r3, [r2]\n"
                   "mrs r0, msp\n"
                   "ldr r1, [r0, #24]\n"
                   "ldrh r2, [r1]\n" /* first halfword >= 0xE800: a 32-bit instruction */
                   "lsr r2, r2, #11\n"
                   "cmp r2, #0x1D\n"
                   "blo 2f\n"
                   "add r1, r1, #2\n"
                   "2:\n"
                   "add r1, r1, #2\n"
                   "str r1, [r0, #24]\n"
                   "bx lr\n"
                   "1:\n"
                   "mrs r0, msp\n"
                   "mrs r1, ipsr\n"
                   "ldr r2, =__stack_top\n"
                   "mov sp, r2\n"
                   "ldr r3, =ts_fault_report\n"
                   "bx r3\n"
                   ".ltorg\n");
}

/* Prints "\r\nTS_FAULT <name> pc=<hex> cfsr=<hex>\r\n" and stops; the host sees it in the stream.
   ARMv6-M has no CFSR (reading it would fault again): it prints 0 there. */
void ts_fault_report(const uint32_t *frame, uint32_t ipsr)
{
    static const char *const names[16] = {
        "?", "Reset", "NMI", "HardFault", "MemManage", "BusFault", "UsageFault", "SecureFault",
        "?", "?", "?", "SVCall", "DebugMon", "?", "PendSV", "SysTick",
    };
    uint32_t n = ipsr & 0x1FFu;
    uint32_t frame_addr = (uint32_t)(uintptr_t)frame;
    /* The frame is only read if it lies inside the stack (a wild SP would fault again). */
    uint32_t pc = 0;
    if (frame_addr >= (uint32_t)(uintptr_t)__stack_bottom &&
        frame_addr + 32u <= (uint32_t)(uintptr_t)__stack_top && (frame_addr & 3u) == 0) {
        pc = frame[6];
    }
    uint32_t cfsr = 0;
#if CM_MAINLINE
    cfsr = CM_SCB_CFSR;
#endif

    fault_puts("\r\nTS_FAULT ");
    fault_puts(n < 16u ? names[n] : "IRQ");
    fault_puts(" pc=");
    fault_puthex(pc);
    fault_puts(" cfsr=");
    fault_puthex(cfsr);
    fault_puts("\r\n");
    __asm volatile("cpsid i");
    for (;;) {
        __asm volatile("wfi");
    }
}
