/*
 * The architectural Cortex-M registers the boards touch (ARMv6-M, ARMv7-M, ARMv8-M mainline),
 * from the Arm Architecture Reference Manuals. No CMSIS, no vendor headers.
 */
#ifndef TS_CM_REGS_H
#define TS_CM_REGS_H

#include <stdint.h>

#define CM_REG(addr) (*(volatile uint32_t *)(addr))

/* ARMv7-M and ARMv8-M mainline have CFSR, DWT and CCR cache bits; ARMv6-M (M0/M0+) has none. */
#if defined(__ARM_ARCH_7M__) || defined(__ARM_ARCH_7EM__) || defined(__ARM_ARCH_8M_MAIN__)
#define CM_MAINLINE 1
#else
#define CM_MAINLINE 0
#endif

/* SysTick */
#define CM_SYST_CSR CM_REG(0xE000E010u)
#define CM_SYST_RVR CM_REG(0xE000E014u)
#define CM_SYST_CVR CM_REG(0xE000E018u)
#define CM_SYST_CSR_ENABLE (1u << 0)
#define CM_SYST_CSR_TICKINT (1u << 1)
#define CM_SYST_CSR_CLKSOURCE (1u << 2) /* processor clock */

/* NVIC: interrupt set-enable, clear-enable and clear-pending, one bit per line, 32 per word. */
#define CM_NVIC_ISER(word) CM_REG(0xE000E100u + 4u * (word))
#define CM_NVIC_ICER(word) CM_REG(0xE000E180u + 4u * (word))
#define CM_NVIC_ICPR(word) CM_REG(0xE000E280u + 4u * (word))
#if CM_MAINLINE
#define CM_NVIC_WORDS 16u
#else
#define CM_NVIC_WORDS 1u
#endif

/* System control block */
#define CM_SCB_VTOR CM_REG(0xE000ED08u)
#define CM_SCB_CCR CM_REG(0xE000ED14u)
#define CM_SCB_CCR_UNALIGN_TRP (1u << 3)
#define CM_SCB_CCR_DC (1u << 16)
#define CM_SCB_CCR_IC (1u << 17)
#define CM_SCB_CFSR CM_REG(0xE000ED28u)
#define CM_SCB_CFSR_BFSR_MASK 0x0000FF00u /* BusFault status, write 1 to clear */
#define CM_SCB_CCSIDR CM_REG(0xE000ED80u)
#define CM_SCB_CSSELR CM_REG(0xE000ED84u)
#define CM_SCB_ICIALLU CM_REG(0xE000EF50u)
#define CM_SCB_DCISW CM_REG(0xE000EF60u)

/* Debug: the DWT cycle counter (mainline only). */
#define CM_DEMCR CM_REG(0xE000EDFCu)
#define CM_DEMCR_TRCENA (1u << 24)
#define CM_DWT_CTRL CM_REG(0xE0001000u)
#define CM_DWT_CTRL_CYCCNTENA (1u << 0)
#define CM_DWT_CYCCNT CM_REG(0xE0001004u)
#define CM_DWT_LAR CM_REG(0xE0001FB0u) /* Cortex-M7: writes to DWT are ignored until unlocked */
#define CM_DWT_LAR_KEY 0xC5ACCE55u

static inline void cm_dsb_isb(void)
{
    __asm volatile("dsb\n"
                   "isb\n" ::: "memory");
}

/** Enables peripheral interrupt line `irq` (0 = the first after the 16 core exceptions). */
static inline void cm_nvic_enable(uint32_t irq)
{
    CM_NVIC_ISER(irq / 32u) = 1u << (irq % 32u);
}

static inline void cm_enable_irq(void)
{
    __asm volatile("cpsie i" ::: "memory");
}

static inline void cm_disable_irq(void)
{
    __asm volatile("cpsid i" ::: "memory");
}

#endif
