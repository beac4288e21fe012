/**
 * @file fully_connected_fast.c
 * @brief ts_fully_connected_forward_fast: ts_fully_connected_forward (fully_connected.c) bit
 *        for bit, in fewer instructions.
 *
 * Four output channels at a time (each input load feeds four rows) and, for the channels that
 * allow it, ts_fast.h's narrow requantization (one SMMULR, one rounding add). On a
 * core with the DSP extension four inputs are one word: SXTB16 and SSUB16 make the lane pairs
 * (x0 - zp, x2 - zp) and (x1 - zp, x3 - zp) once, and each row takes them with one filter load,
 * two SXTB16 and two SMLAD. The sums are the reference's in another order (int32 addition
 * wraps the same in any order).
 */
#include <stddef.h>
#include <stdint.h>

#include "ts_fast.h"
#include "ts_kernels.h"

/* s[r] = bias[r] + sum over k of w_r[k] * (x[k] - zp) for the n_rows (1 or 4) rows from w0,
 * k_n apart. */
__attribute__((always_inline)) static inline void rows_dot(const int8_t *x, const int8_t *w0,
                                                           size_t k_n, int32_t zp,
                                                           const int32_t *bias, int32_t s[4],
                                                           const int n_rows)
{
    const int8_t *w1 = w0 + k_n, *w2 = w1 + k_n, *w3 = w2 + k_n;
    int32_t a0 = bias[0], a1 = 0, a2 = 0, a3 = 0;
    if (n_rows == 4) {
        a1 = bias[1];
        a2 = bias[2];
        a3 = bias[3];
    }
    size_t k = 0;
#if TS_FAST_DSP
    /* pointers that walk (one post-incremented load each), not an index: gcc 12 otherwise
     * rebuilds every address from its base in each iteration */
    const uint32_t zp2 = ((uint32_t)zp & 0xffffu) | ((uint32_t)zp << 16);
    const int8_t *xp = x, *const x_end = x + (k_n & ~(size_t)3u);
    /* rows 1 and 3 at a register offset from rows 0 and 2: two pointers walk, not four */
    const int8_t *p0 = w0, *p2 = w2;
    while (xp != x_end) {
        const uint32_t xv = ts_fast_ld32(xp);
        xp += 4;
        const int16x2_t x02 = __ssub16(__sxtb16(xv), (int16x2_t)zp2);
        const int16x2_t x13 = __ssub16((int16x2_t)ts_fast_sxtb16_ror8(xv), (int16x2_t)zp2);
        uint32_t v = ts_fast_ld32(p0);
        a0 = __smlad(__sxtb16(v), x02, a0);
        a0 = __smlad((int16x2_t)ts_fast_sxtb16_ror8(v), x13, a0);
        if (n_rows == 4) {
            v = ts_fast_ld32(p0 + k_n);
            a1 = __smlad(__sxtb16(v), x02, a1);
            a1 = __smlad((int16x2_t)ts_fast_sxtb16_ror8(v), x13, a1);
            v = ts_fast_ld32(p2);
            a2 = __smlad(__sxtb16(v), x02, a2);
            a2 = __smlad((int16x2_t)ts_fast_sxtb16_ror8(v), x13, a2);
            v = ts_fast_ld32(p2 + k_n);
            a3 = __smlad(__sxtb16(v), x02, a3);
            a3 = __smlad((int16x2_t)ts_fast_sxtb16_ror8(v), x13, a3);
            p2 += 4;
        }
        p0 += 4;
    }
    k = k_n & ~(size_t)3u;
#endif
    for (; k < k_n; ++k) {
        const int32_t xk = (int32_t)x[k] - zp;
        a0 = (int32_t)((uint32_t)a0 + (uint32_t)(xk * w0[k]));
        if (n_rows == 4) {
            a1 = (int32_t)((uint32_t)a1 + (uint32_t)(xk * w1[k]));
            a2 = (int32_t)((uint32_t)a2 + (uint32_t)(xk * w2[k]));
            a3 = (int32_t)((uint32_t)a3 + (uint32_t)(xk * w3[k]));
        }
    }
    s[0] = a0;
    s[1] = a1;
    s[2] = a2;
    s[3] = a3;
}

/* One output: y = act(requant(acc) + zp_y), bit for bit. A channel with a right shift of 1 to
 * 30 and a bias that keeps every sum below 2^30 in magnitude (lim: 2^30 less the largest sum of
 * products) takes ts_fast.h's narrow stage, computed here per channel (a set-up pass over the
 * channels would cost more than it saves on the small layers of a split client); any other
 * channel the reference's own arithmetic. */
__attribute__((always_inline)) static inline int8_t out_one(const ts_fc_layer_t *l, size_t c,
                                                            int32_t acc, uint32_t lim,
                                                            int32_t act_min, int32_t act_max,
                                                            int32_t zp_y)
{
    const int32_t shift = l->p.out_shift[c], bias = l->p.bias[c];
    const uint32_t mag = bias < 0 ? 0u - (uint32_t)bias : (uint32_t)bias;
    int64_t out;
    if (shift <= -1 && shift >= -30 && mag < lim) {
        const int32_t right = -shift;
        out = ts_fast_out(acc, l->p.out_mult[c], 1, right, (int32_t)(1u << (right - 1)),
                          act_min, act_max, zp_y, 1);
    } else {
        out = (int64_t)ts_multiply_by_quantized_multiplier(acc, l->p.out_mult[c], shift) + zp_y;
        out = out < act_min ? act_min : out;
        out = out > act_max ? act_max : out;
    }
    return (int8_t)out;
}

void ts_fully_connected_forward_fast(const ts_fc_layer_t *l, const int8_t *x, int8_t *y,
                                     int32_t *acc_out)
{
    const size_t k_n = l->in_features, c_n = l->out_features;
    const int32_t zp_x = l->p.in_q.zero_point, zp_y = l->p.out_q.zero_point;
    int32_t act_min, act_max;
    ts_act_range(l->act, l->p.out_q, &act_min, &act_max);
    /* |sum| <= |bias| + K * 128 * 255 (|w| <= 128, |x - zp| <= 255) */
    const uint32_t products = (uint32_t)k_n * 32640u;
    const uint32_t lim = products < (1u << 30) ? (1u << 30) - products : 0u;
    size_t c = 0;
    for (; c + 4u <= c_n; c += 4u) {
        int32_t s[4];
        rows_dot(x, &l->p.w[c * k_n], k_n, zp_x, &l->p.bias[c], s, 4);
        for (size_t r = 0; r < 4u; ++r) {
            const int8_t v = out_one(l, c + r, s[r], lim, act_min, act_max, zp_y);
            if (acc_out != NULL) {
                acc_out[c + r] = s[r];
            }
            y[c + r] = v;
        }
    }
    for (; c < c_n; ++c) {
        int32_t s[4];
        rows_dot(x, &l->p.w[c * k_n], k_n, zp_x, &l->p.bias[c], s, 1);
        const int8_t v = out_one(l, c, s[0], lim, act_min, act_max, zp_y);
        if (acc_out != NULL) {
            acc_out[c] = s[0];
        }
        y[c] = v;
    }
}
