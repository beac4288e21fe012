/**
 * @file quant.c
 * @brief Scalar quantization helpers: ts_round, ts_quantize_multiplier,
 *        ts_multiply_by_quantized_multiplier (docs/int8-training.md, "Rounding helpers").
 *
 * No tensors. Everything here is bit-exact with core/golden/quant.py and, for the
 * multiplier pair, with TFLite's QuantizeMultiplier / MultiplyByQuantizedMultiplier
 * (gemmlowp double rounding, the TFLM reference build). No libm: frexp is done on the IEEE-754
 * bits so the result cannot depend on the C library of the target.
 */
#include <stdint.h>
#include <string.h>

#include "ts_kernels.h"

int32_t ts_round(float f)
{
    /* Truncate, then look at the exact fractional part: f - (float)i is exact because i is
     * f with its fraction dropped (for |f| >= 2^23 f is already an integer and frac is 0). */
    int32_t i = (int32_t)f;
    float frac = f - (float)i;
    if (frac >= 0.5f) {
        i += 1;
    } else if (frac <= -0.5f) {
        i -= 1;
    }
    return i;
}

/* Rounds a double half away from zero; |x| <= 2^62 so the int64 conversion is defined. */
static int64_t round_half_away_d(double x)
{
    int64_t i = (int64_t)x;
    double frac = x - (double)i;
    if (frac >= 0.5) {
        i += 1;
    } else if (frac <= -0.5) {
        i -= 1;
    }
    return i;
}

/*
 * frexp for a finite non-zero double, from its bits: returns q with 0.5 <= |q| < 1 and
 * m = q * 2^*e exactly. Subnormals are normalized first (a bounded loop of at most 52 steps).
 */
static double frexp_bits(double m, int32_t *e)
{
    uint64_t bits;
    memcpy(&bits, &m, sizeof bits);
    const uint64_t sign = bits & 0x8000000000000000ull;
    int32_t exp_field = (int32_t)((bits >> 52) & 0x7ffu);
    uint64_t mant = bits & 0x000fffffffffffffull;

    if (exp_field == 0) {
        /* Subnormal: value = mant * 2^-1074. Shift the leading one up to bit 52. */
        exp_field = 1;
        for (int32_t n = 0; n < 52 && (mant & 0x0010000000000000ull) == 0; ++n) {
            mant <<= 1;
            exp_field -= 1;
        }
        mant &= 0x000fffffffffffffull;
    }
    /* A normal double is 1.mant * 2^(exp_field - 1023) = 0.1mant * 2^(exp_field - 1022). */
    *e = exp_field - 1022;
    const uint64_t qbits = sign | ((uint64_t)1022u << 52) | mant;
    double q;
    memcpy(&q, &qbits, sizeof q);
    return q;
}

void ts_quantize_multiplier(double m, int32_t *mult, int32_t *shift)
{
    if (m == 0.0 || m != m) {
        /* Zero, and NaN (which has no meaningful multiplier): a multiplier of 0. */
        *mult = 0;
        *shift = 0;
        return;
    }
    if (m > 1.7976931348623157e308 || m < -1.7976931348623157e308) {
        /* Infinite: saturate exactly as the shift > 30 case below does for a huge finite m. */
        *mult = INT32_MAX;
        *shift = 30;
        return;
    }
    int32_t e;
    const double q = frexp_bits(m, &e);
    /* q * 2^31 is exact (a power-of-two scaling); |q_fixed| <= 2^31. */
    int64_t q_fixed = round_half_away_d(q * 2147483648.0);
    if (q_fixed == 2147483648ll) {
        q_fixed /= 2;
        e += 1;
    }
    if (e < -31) {
        e = 0;
        q_fixed = 0;
    }
    if (e > 30) {
        e = 30;
        q_fixed = 2147483647ll;
    }
    *mult = (int32_t)q_fixed;
    *shift = e;
}

/* Two's-complement wrap of a uint32 into int32 without implementation-defined conversion. */
static int32_t wrap_i32(uint32_t u)
{
    return u <= (uint32_t)INT32_MAX ? (int32_t)u : -(int32_t)(~u) - 1;
}

/* Arithmetic (flooring) right shift, written so it is defined C for negative x too. */
static int32_t asr_i32(int32_t x, int32_t n)
{
    return x < 0 ? ~(~x >> n) : x >> n;
}

/* gemmlowp SaturatingRoundingDoublingHighMul: round(a * b / 2^31), saturating MIN*MIN. */
static int32_t sat_rounding_doubling_high_mul(int32_t a, int32_t b)
{
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    const int64_t ab = (int64_t)a * (int64_t)b;
    const int64_t nudge = ab >= 0 ? (1ll << 30) : (1ll - (1ll << 30));
    /* C division truncates toward zero, as gemmlowp's does; the quotient fits int32. */
    return (int32_t)((ab + nudge) / (1ll << 31));
}

/* gemmlowp RoundingDivideByPOT: x / 2^exponent rounded to nearest, ties away from zero. */
static int32_t rounding_divide_by_pot(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)((1ll << exponent) - 1);
    const int32_t remainder = (int32_t)((uint32_t)x & (uint32_t)mask); /* in [0, mask] */
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return asr_i32(x, exponent) + (remainder > threshold ? 1 : 0);
}

int32_t ts_multiply_by_quantized_multiplier(int32_t x, int32_t mult, int32_t shift)
{
    /* ts_quantize_multiplier gives shift in [-31, 30]; clamping to [-31, 31] keeps any other
     * input defined behaviour (and is a no-op for every valid one). */
    if (shift > 31) {
        shift = 31;
    } else if (shift < -31) {
        shift = -31;
    }
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    /* x * 2^left wraps in 32 bits like TFLM's int32 multiply on every target, but without UB. */
    const int32_t x_shifted = wrap_i32((uint32_t)x << left);
    return rounding_divide_by_pot(sat_rounding_doubling_high_mul(x_shifted, mult), right);
}
