/**
 * @file fully_connected.c
 * @brief ts_fully_connected_forward: int8 fully-connected forward, per-channel requantization.
 *
 * Layouts (TFLite): x [K] int8, w [C][K] int8 row-major, bias [C] int32, y [C] int8,
 * acc_out [C] int32 (optional). K = l->in_features, C = l->out_features.
 *
 * Bit-exact with TFLite Micro's reference FullyConnectedPerChannel (docs/int8-training.md,
 * "Forward"). The accumulator is summed in uint32 so that it wraps like TFLM's int32 sum on
 * every target without signed-overflow UB; for K <= 65535, |zp_x| <= 128 and a bias within the
 * exporter's range it never wraps at all.
 */
#include <stddef.h>
#include <stdint.h>

#include "ts_kernels.h"

void ts_fully_connected_forward(const ts_fc_layer_t *l, const int8_t *x, int8_t *y,
                                int32_t *acc_out)
{
    const size_t k_n = l->in_features;
    const size_t c_n = l->out_features;
    const int32_t zp_x = l->p.in_q.zero_point;
    const int32_t zp_y = l->p.out_q.zero_point;
    int32_t act_min;
    int32_t act_max;
    ts_act_range(l->act, l->p.out_q, &act_min, &act_max);

    for (size_t c = 0; c < c_n; ++c) {
        const int8_t *w_row = &l->p.w[c * k_n];
        uint32_t sum = (uint32_t)l->p.bias[c];
        for (size_t k = 0; k < k_n; ++k) {
            const int32_t term = ((int32_t)x[k] - zp_x) * (int32_t)w_row[k];
            sum += (uint32_t)term;
        }
        /* Back to int32 with two's-complement wrap, without implementation-defined casts. */
        const int32_t acc = sum <= (uint32_t)INT32_MAX ? (int32_t)sum : -(int32_t)(~sum) - 1;
        if (acc_out != NULL) {
            acc_out[c] = acc;
        }
        /* int64 for the zero-point add: a saturated multiplier result cannot overflow it. */
        int64_t out = (int64_t)ts_multiply_by_quantized_multiplier(acc, l->p.out_mult[c],
                                                                   l->p.out_shift[c]);
        out += zp_y;
        if (out < act_min) {
            out = act_min;
        } else if (out > act_max) {
            out = act_max;
        }
        y[c] = (int8_t)out;
    }
}
