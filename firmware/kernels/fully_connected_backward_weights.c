/**
 * @file fully_connected_backward_weights.c
 * @brief ts_fully_connected_backward_weights: adds one sample's weight and bias gradient to
 *        the layer.
 *
 * Layouts: x [K] int8 (the layer input of the sample), g [C] int8 (masked output gradient,
 * real = s_g * g), l->p.grad_w [C][K] float32 row-major, l->p.grad_b [C] float32.
 *
 * docs/int8-training.md, "Backward" step 2. The product g * (x - zp_x) is an exact int32
 * (|.| <= 128 * 255); the sample's scale is applied in float32 because every sample has its own
 * s_g, and summing samples in float avoids an int32 accumulator that would overflow over a
 * batch (NUMERICS.md). Every float operation is rounded in the order written here, which the
 * golden model repeats.
 */
#include <stddef.h>
#include <stdint.h>

#include "ts_kernels.h"

void ts_fully_connected_backward_weights(ts_fc_layer_t *l, const int8_t *x, const int8_t *g,
                                         float s_g)
{
    const size_t k_n = l->in_features;
    const size_t c_n = l->out_features;
    const int32_t zp_x = l->p.in_q.zero_point;
    const float coef = s_g * l->p.in_q.scale;

    for (size_t c = 0; c < c_n; ++c) {
        const int32_t gc = g[c];
        float *gw_row = &l->p.grad_w[c * k_n];
        for (size_t k = 0; k < k_n; ++k) {
            const int32_t prod = gc * ((int32_t)x[k] - zp_x);
            gw_row[k] = gw_row[k] + (float)prod * coef;
        }
        l->p.grad_b[c] = l->p.grad_b[c] + (float)gc * s_g;
    }
}
