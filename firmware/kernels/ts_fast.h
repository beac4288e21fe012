/*
 * What the optimized kernels (*_fast.c) share: the requantization of one output written for
 * speed, unaligned word loads, and the DSP-extension instructions they are built around.
 * Private to firmware/kernels/.
 *
 * Every *_fast.c kernel has the contract of its reference twin (ts_kernels.h) and computes the
 * same outputs bit for bit; the reference stays the oracle (tests/firmware/test_fast_kernels.py
 * on the host, firmware/bench/kernel_check.c on every emulated core).
 *
 * Two paths, chosen by the compiler's target: TS_FAST_DSP on cores with the DSP extension
 * (__ARM_FEATURE_DSP: Cortex-M4, M7, M33 with DSP, M55), where SXTB16 widens two int8 values
 * to two int16 lanes and SMLAD does two 16x16 multiply-accumulates in one instruction; the
 * portable C path elsewhere (Cortex-M0+, M3, the native build), the same loop structure with
 * plain multiplies.
 */
#ifndef TS_FAST_H
#define TS_FAST_H

#include <stdint.h>
#include <string.h>

#include "ts_kernels.h"

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#define TS_FAST_DSP 1
#include <arm_acle.h>
#else
#define TS_FAST_DSP 0
#endif

/* The requantization below shifts negative int32/int64 values right and relies on an
 * arithmetic shift, which every gcc and clang target does (C leaves it to the compiler). */
_Static_assert((-8 >> 1) == -4, "the fast kernels need an arithmetic right shift");

/** Four bytes from any address (one LDR on cores with unaligned access, bytes elsewhere). */
static inline uint32_t ts_fast_ld32(const void *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/** v rotated right by n (1..31): the second SXTB16 of a word takes its odd bytes. */
static inline uint32_t ts_fast_ror(uint32_t v, uint32_t n)
{
    return (v >> n) | (v << (32u - n));
}

static inline void ts_fast_st32(void *p, uint32_t v)
{
    memcpy(p, &v, sizeof v);
}

/**
 * ts_multiply_by_quantized_multiplier, bit for bit, for shift in [-31, 30] (what
 * ts_quantize_multiplier gives; the kernels' *_check callers hold the multipliers it made):
 * gemmlowp's nudge-then-truncate equals adding 2^30 and flooring (one SMLAL on a Cortex-M),
 * and its rounding divide by 2^right is the remainder test below.
 */
static inline int32_t ts_fast_requant(int32_t acc, int32_t mult, int32_t left, int32_t right)
{
    const int32_t x = (int32_t)((uint32_t)acc << left);
    /* the one product that saturates: INT32_MIN * INT32_MIN */
    const int32_t hi = x == INT32_MIN && mult == INT32_MIN
                           ? INT32_MAX
                           : (int32_t)(((int64_t)x * mult + (1ll << 30)) >> 31);
    const int32_t mask = (int32_t)((1u << right) - 1u);
    const int32_t rem = hi & mask;
    const int32_t threshold = (mask >> 1) + (hi < 0 ? 1 : 0);
    return (hi >> right) + (rem > threshold ? 1 : 0);
}

/** left and right shifts of a TFLite shift (> 0: left), clamped as the reference clamps it. */
static inline void ts_fast_shifts(int32_t shift, int32_t *left, int32_t *right)
{
    shift = shift > 31 ? 31 : shift;
    shift = shift < -31 ? -31 : shift;
    *left = shift > 0 ? shift : 0;
    *right = shift > 0 ? 0 : -shift;
}

#endif
