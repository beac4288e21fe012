/*
 * Board facts the application needs at compile time, shared by every Cortex-M board
 * (boards/<board>/board.mk puts boards/cortex_m on the include path).
 *
 * The stack: the linker script has no fixed stack size. The application sizes it from what the
 * model needs, once, at file scope:
 *
 *     #include "board_config.h"
 *     TS_BOARD_DEFINE_STACK(TS_MODEL_STACK_BYTES);
 *
 * Here that is an array `ts_stack` in section .stack, which cortex_m_sections.ld places at the
 * bottom of RAM (an overflow runs off the start of RAM and faults instead of overwriting
 * .data/.bss); the initial SP is its top. The link fails if no stack is defined or RAM overflows.
 */
#ifndef TS_BOARD_CONFIG_H
#define TS_BOARD_CONFIG_H

#include <stdint.h>

#define TS_BOARD_HAS_LINKER_STACK 1

#define TS_BOARD_DEFINE_STACK(bytes)                                                  \
    _Static_assert((bytes) % 8 == 0 && (bytes) >= 1024,                               \
                   "stack bytes must be a multiple of 8 and at least 1024");          \
    __attribute__((section(".stack"), aligned(8), used)) uint8_t ts_stack[(bytes)]

#endif
