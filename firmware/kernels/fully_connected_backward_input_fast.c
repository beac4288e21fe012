/**
 * @file fully_connected_backward_input_fast.c
 * @brief ts_fully_connected_backward_input_fast: ts_fully_connected_backward_input
 *        (fully_connected_backward_input.c) bit for bit, in fewer instructions.
 *
 * The same integer sums scratch[k] = sum over c of t[c] * w[c][k] (t[c] the rescaled gradient
 * of channel c, zero for most channels behind a ReLU): the nonzero channels are gathered first,
 * then taken four at a time, so each scratch element is loaded and stored once per four
 * channels; the int8 gradient comes from ts_grad_requantize_fast (no 64-bit division). int32
 * sums wrap the same in any order.
 */
#include <stddef.h>
#include <stdint.h>

#include "ts_fast.h"
#include "ts_kernels.h"

/* Channels the gather holds at a time (on the stack). */
#define GATHER 64u

void ts_fully_connected_backward_input_fast(const ts_fc_layer_t *l, const int8_t *g, float s_g,
                                            int32_t *scratch, int8_t *gx, float *s_gx)
{
    const size_t k_n = l->in_features;
    const size_t c_n = l->out_features;

    float s_wmax = 0.0f;
    for (size_t c = 0; c < c_n; ++c) {
        s_wmax = l->p.w_scale[c] > s_wmax ? l->p.w_scale[c] : s_wmax;
    }
    for (size_t k = 0; k < k_n; ++k) {
        scratch[k] = 0;
    }
    if (s_wmax > 0.0f) {
        int32_t t[GATHER];
        const int8_t *rows[GATHER];
        for (size_t c0 = 0; c0 < c_n; c0 += GATHER) {
            const size_t c1 = c_n - c0 < GATHER ? c_n : c0 + GATHER;
            size_t n = 0;
            for (size_t c = c0; c < c1; ++c) {
                const int32_t r = ts_round((l->p.w_scale[c] / s_wmax) * 32768.0f);
                /* the reference's asr_i32: an arithmetic shift (ts_fast.h asserts it) */
                const int32_t tc = ((int32_t)g[c] * r + 64) >> 7;
                if (tc != 0) {
                    t[n] = tc;
                    rows[n++] = &l->p.w[c * k_n];
                }
            }
            size_t i = 0;
            for (; i + 4u <= n; i += 4u) {
                const int8_t *w0 = rows[i], *w1 = rows[i + 1u], *w2 = rows[i + 2u];
                const int8_t *w3 = rows[i + 3u];
                const int32_t t0 = t[i], t1 = t[i + 1u], t2 = t[i + 2u], t3 = t[i + 3u];
                for (size_t k = 0; k < k_n; ++k) {
                    scratch[k] = (int32_t)((uint32_t)scratch[k] + (uint32_t)(t0 * w0[k]) +
                                           (uint32_t)(t1 * w1[k]) + (uint32_t)(t2 * w2[k]) +
                                           (uint32_t)(t3 * w3[k]));
                }
            }
            for (; i < n; ++i) {
                const int8_t *w0 = rows[i];
                const int32_t t0 = t[i];
                for (size_t k = 0; k < k_n; ++k) {
                    scratch[k] = (int32_t)((uint32_t)scratch[k] + (uint32_t)(t0 * w0[k]));
                }
            }
        }
    }
    const uint32_t m = ts_grad_requantize_fast(scratch, k_n, gx);
    if (m == 0) {
        *s_gx = 0.0f;
        return;
    }
    *s_gx = ((s_g * s_wmax) * 0.00390625f) * ((float)m / 127.0f);
}
