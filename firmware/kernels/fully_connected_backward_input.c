/**
 * @file fully_connected_backward_input.c
 * @brief ts_fully_connected_backward_input: int8 gradient of the layer input, one sample.
 *
 * Layouts: g [C] int8 (masked output gradient, real = s_g * g), w [C][K] int8 row-major,
 * scratch [K] int32 (caller-owned), gx [K] int8 in [-127, 127] (real ≈ *s_gx * gx).
 *
 * docs/int8-training.md, "Backward" step 3. The per-channel weight scales are folded into the
 * gradient as Q15 ratios to the largest scale (r[c] <= 32768), with 8 bits dropped so that
 * t[c] * w[c][k] summed over C <= 512 channels stays inside int32; the result is then
 * re-scaled to the full int8 range with an exact integer division.
 * The sum runs over rows of w (cache-friendly) in uint32, which wraps instead of overflowing
 * for C > 512 (defined behaviour, same result as the golden model's int32 wrap).
 */
#include <stddef.h>
#include <stdint.h>

#include "ts_kernels.h"

/* Arithmetic (flooring) right shift, written so it is defined C for negative x too. */
static int32_t asr_i32(int32_t x, int32_t n)
{
    return x < 0 ? ~(~x >> n) : x >> n;
}

void ts_fully_connected_backward_input(const ts_fc_layer_t *l, const int8_t *g, float s_g,
                                       int32_t *scratch, int8_t *gx, float *s_gx)
{
    const size_t k_n = l->in_features;
    const size_t c_n = l->out_features;

    float s_wmax = 0.0f;
    for (size_t c = 0; c < c_n; ++c) {
        if (l->p.w_scale[c] > s_wmax) {
            s_wmax = l->p.w_scale[c];
        }
    }

    for (size_t k = 0; k < k_n; ++k) {
        scratch[k] = 0;
    }
    /* Without a positive scale there is no gradient path (and the ratio below would be 0/0). */
    if (s_wmax > 0.0f) {
        for (size_t c = 0; c < c_n; ++c) {
            const int32_t r = ts_round((l->p.w_scale[c] / s_wmax) * 32768.0f);
            const int32_t t = asr_i32((int32_t)g[c] * r + 64, 7);
            if (t == 0) {
                continue; /* masked channels (most of them after ReLU) cost nothing */
            }
            const int8_t *w_row = &l->p.w[c * k_n];
            for (size_t k = 0; k < k_n; ++k) {
                const uint32_t sum = (uint32_t)scratch[k] + (uint32_t)(t * (int32_t)w_row[k]);
                scratch[k] = sum <= (uint32_t)INT32_MAX ? (int32_t)sum : -(int32_t)(~sum) - 1;
            }
        }
    }

    int64_t m = 0;
    for (size_t k = 0; k < k_n; ++k) {
        const int64_t a = scratch[k] < 0 ? -(int64_t)scratch[k] : (int64_t)scratch[k];
        if (a > m) {
            m = a;
        }
    }
    if (m == 0) {
        for (size_t k = 0; k < k_n; ++k) {
            gx[k] = 0;
        }
        *s_gx = 0.0f;
        return;
    }
    for (size_t k = 0; k < k_n; ++k) {
        const int64_t v = scratch[k];
        const int64_t a = v < 0 ? -v : v;
        /* Rounds |v| * 127 / m to nearest; the result is <= 127 because |v| <= m. */
        const int64_t q = (a * 127 + m / 2) / m;
        gx[k] = (int8_t)(v < 0 ? -q : q);
    }
    *s_gx = ((s_g * s_wmax) * 0.00390625f) * ((float)m / 127.0f);
}
