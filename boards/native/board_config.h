/*
 * Board facts the application needs at compile time; see boards/cortex_m/board_config.h.
 * A Linux process gets its stack from the OS, so TS_BOARD_DEFINE_STACK only checks the size.
 */
#ifndef TS_BOARD_CONFIG_H
#define TS_BOARD_CONFIG_H

#define TS_BOARD_HAS_LINKER_STACK 0

#define TS_BOARD_DEFINE_STACK(bytes) \
    _Static_assert((bytes) > 0, "stack bytes must be positive")

#endif
