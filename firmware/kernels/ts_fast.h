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

#if TS_FAST_DSP
/** SXTB16 of v rotated right by 8: the odd bytes of a word as two int16 lanes (gcc 12 does not
 *  fold the rotation into the instruction by itself). */
static inline uint32_t ts_fast_sxtb16_ror8(uint32_t v)
{
    uint32_t r;
    __asm("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
}
#endif

static inline void ts_fast_st32(void *p, uint32_t v)
{
    memcpy(p, &v, sizeof v);
}

/** left and right shifts of a TFLite shift (> 0: left), clamped as the reference clamps it. */
static inline void ts_fast_shifts(int32_t shift, int32_t *left, int32_t *right)
{
    shift = shift > 31 ? 31 : shift;
    shift = shift < -31 ? -31 : shift;
    *left = shift > 0 ? shift : 0;
    *right = shift > 0 ? 0 : -shift;
}

/* ---- the output stage: requantization, zero point, activation clamp, observed range ---------- */

/** Output channels the output stage keeps constants for (on the stack, 24 bytes each); a layer
 *  with more runs its reference kernel. */
#define TS_FAST_CHANNELS_MAX 32

/** One channel's requantization, set up once per call, and the extremes of its sums. */
typedef struct {
    int32_t mult;
    int32_t mask;  /**< 2^right - 1 */
    int32_t rnd;   /**< 2^(right - 1) (narrow stage) */
    uint8_t left;  /**< left shift (wide stage); the narrow stage shifts left + 1 */
    uint8_t right; /**< right shift */
    int32_t acc_min, acc_max;
} ts_fast_chan_t;

typedef struct {
    ts_fast_chan_t ch[TS_FAST_CHANNELS_MAX];
    int32_t act_min, act_max, zp_y;
    int observe; /**< the range is observed: acc_min/acc_max are kept */
    int narrow;  /**< every sum fits the narrow stage (ts_fast_out_setup) */
} ts_fast_out_t;

/**
 * Sets up the output stage of an op with params p, activation act, at most k_taps products of
 * an int8 weight and an input minus its zero point per sum. Returns 0 when the op needs its
 * reference kernel: more than TS_FAST_CHANNELS_MAX channels, a multiplier of INT32_MIN (the one
 * product gemmlowp saturates), or, with the range observed, a scale s_x * w_scale[c] that is
 * not finite and positive. With such scales the observed real value act((float)acc * scale)
 * never decreases as acc grows (int32 -> float and a multiply rounding to nearest are
 * monotonic, so are ReLU and the cap at 6): the extremes of each channel's sums give the
 * extremes of its real values, converted once per call by ts_fast_out_finish.
 *
 * o->narrow is set when every channel shifts right by 1 to 30 and every sum it can meet,
 * |bias| + k_taps * 128 * 255, shifted left by left + 1 stays inside int32: then the doubling
 * high multiply is one SMMULR of (acc << (left + 1)) (floor((2x m + 2^31) / 2^32) is
 * gemmlowp's floor((x m + 2^30) / 2^31)), the result is below 2^30 in magnitude and the
 * rounding divide is one add and a shift. Trained layers meet it (multipliers below 1, modest
 * biases); the wide stage takes the rest, also bit for bit.
 */
int ts_fast_out_setup(const ts_params_t *p, uint8_t act, uint32_t k_taps, int observe,
                      ts_fast_out_t *o);

/** As ts_fast_out_setup for the channels [c_first, c_first + c_n) only (c_n at most
 *  TS_FAST_CHANNELS_MAX): o->ch[i] is channel c_first + i. */
int ts_fast_out_setup_block(const ts_params_t *p, uint8_t act, uint32_t k_taps, int observe,
                            uint32_t c_first, uint32_t c_n, ts_fast_out_t *o);

/** Folds the extremes of channels [c_first, c_first + c_n) (o->ch[0..c_n)) into the batch
 *  range [*bmin, *bmax] (no-op unless observing), as the reference kernels fold every output. */
void ts_fast_out_finish(const ts_params_t *p, uint8_t act, const ts_fast_out_t *o,
                        uint32_t c_first, uint32_t c_n, float *bmin, float *bmax);

#if TS_FAST_DSP
static inline int32_t ts_fast_smmulr(int32_t a, int32_t b)
{
    int32_t r;
    __asm("smmulr %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
#else
static inline int32_t ts_fast_smmulr(int32_t a, int32_t b)
{
    return (int32_t)(((int64_t)a * b + 0x80000000ll) >> 32);
}
#endif

/**
 * One output: ts_multiply_by_quantized_multiplier(acc), + zp_y, clamped to the activation
 * range, bit for bit. narrow (a constant at each call site) picks the stage o->narrow allows.
 * The reference clamps the int64 requant + zp_y; the wide stage clamps the int32 requant to the
 * range minus zp_y instead, then adds zp_y: the same value without int64 arithmetic. Constants
 * come in by value: the caller loads them once, as outputs stored through int8_t pointers
 * (which may alias anything) would make the compiler load them again for every output.
 */
__attribute__((always_inline)) static inline int32_t ts_fast_out(int32_t acc, int32_t mult,
                                                                 int32_t left, int32_t right,
                                                                 int32_t mask_or_rnd,
                                                                 int32_t act_min,
                                                                 int32_t act_max, int32_t zp_y,
                                                                 const int narrow)
{
    if (narrow) {
        /* left is left + 1 here, mask_or_rnd the rounding constant 2^(right - 1) */
        const int32_t h = ts_fast_smmulr((int32_t)((uint32_t)acc << left), mult);
        int32_t r = ((h + mask_or_rnd - (int32_t)((uint32_t)h >> 31)) >> right) + zp_y;
        r = r < act_min ? act_min : r;
        return r > act_max ? act_max : r;
    }
    const int32_t x = (int32_t)((uint32_t)acc << left);
    const int32_t h = (int32_t)(((int64_t)x * mult + (1ll << 30)) >> 31);
    const int32_t threshold = (mask_or_rnd >> 1) + (int32_t)((uint32_t)h >> 31);
    int32_t r = (h >> right) + ((h & mask_or_rnd) > threshold ? 1 : 0);
    r = r < act_min - zp_y ? act_min - zp_y : r;
    r = r > act_max - zp_y ? act_max - zp_y : r;
    return r + zp_y;
}

/** The constants ts_fast_out takes for channel ch in the stage narrow picks. */
#define TS_FAST_CHAN_ARGS(ch, narrow)                                                          \
    (ch)->mult, (narrow) ? (ch)->left + 1 : (ch)->left, (ch)->right,                           \
        (narrow) ? (ch)->rnd : (ch)->mask

/** Keeps the extremes of channel ch's sums (when observing). */
static inline void ts_fast_observe(ts_fast_chan_t *ch, int32_t lo, int32_t hi)
{
    ch->acc_min = lo < ch->acc_min ? lo : ch->acc_min;
    ch->acc_max = hi > ch->acc_max ? hi : ch->acc_max;
}

#endif
