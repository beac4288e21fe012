/**
 * @file fully_connected_backward_weights_fast.c
 * @brief ts_fully_connected_backward_weights_fast: ts_fully_connected_backward_weights
 *        (fully_connected_backward_weights.c) bit for bit, in fewer instructions.
 *
 * The reference computes grad_w[c][k] += (float)(g[c] * (x[k] - zp)) * coef for every weight.
 * Here:
 * - with a floating-point unit, x[k] - zp is converted to float once per call (in chunks of
 *   CHUNK on the stack), not once per output channel; (float)g[c] * (float)(x[k] - zp) is
 *   exact (|product| < 2^24), so it is the reference's (float)(g[c] * (x[k] - zp)) and the
 *   rounding that follows is the same (without one, where a float multiply is a library call
 *   and an int -> float conversion is cheaper, the reference's expression stays);
 * - a row whose gradient is zero (most of them behind a ReLU) adds (float)0 * coef, a zero, to
 *   each of its weights' sums, which leaves every sum as it is (x + 0 == x for every float but
 *   -0.0 and a signalling NaN; the gradient sums start at +0.0 and a sum is -0.0 only when both
 *   terms are, so they never hold one), and is skipped.
 */
#include <stddef.h>
#include <stdint.h>

#include "ts_kernels.h"

#define CHUNK 64u

void ts_fully_connected_backward_weights_fast(ts_fc_layer_t *l, const int8_t *x, const int8_t *g,
                                              float s_g)
{
    const size_t k_n = l->in_features;
    const size_t c_n = l->out_features;
    const int32_t zp_x = l->p.in_q.zero_point;
    const float coef = s_g * l->p.in_q.scale;
#if defined(__ARM_FP) || !defined(__arm__)
    float xf[CHUNK];
#else
    int32_t xf[CHUNK];
#endif

    for (size_t k0 = 0; k0 < k_n; k0 += CHUNK) {
        const size_t kc = k_n - k0 < CHUNK ? k_n - k0 : CHUNK;
        for (size_t k = 0; k < kc; ++k) {
            xf[k] = (int32_t)x[k0 + k] - zp_x;
        }
        for (size_t c = 0; c < c_n; ++c) {
            if (g[c] == 0) {
                continue;
            }
            float *gw = &l->p.grad_w[c * k_n + k0];
#if defined(__ARM_FP) || !defined(__arm__)
            const float gc = (float)g[c];
            for (size_t k = 0; k < kc; ++k) {
                gw[k] = gw[k] + (gc * xf[k]) * coef;
            }
#else
            const int32_t gc = g[c];
            for (size_t k = 0; k < kc; ++k) {
                gw[k] = gw[k] + (float)(gc * xf[k]) * coef;
            }
#endif
        }
    }
    for (size_t c = 0; c < c_n; ++c) {
        l->p.grad_b[c] = l->p.grad_b[c] + (float)g[c] * s_g;
    }
}
