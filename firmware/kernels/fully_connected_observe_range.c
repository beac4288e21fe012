/**
 * @file fully_connected_observe_range.c
 * @brief ts_fully_connected_observe_range: folds one sample's accumulators into the batch
 *        output range.
 *
 * Layouts: acc [C] int32, the accumulators ts_fully_connected_forward wrote to acc_out (before
 * requantization, so values that saturate the int8 output are still seen).
 *
 * v = (float)acc[c] * (s_x * s_w[c]) is the real pre-activation output (the bias is part of
 * acc); ReLU is applied in float so a ReLU layer's range starts at 0
 * (docs/int8-training.md, "Activation range"). Start a batch with *bmin = +inf, *bmax = -inf.
 */
#include <stddef.h>
#include <stdint.h>

#include "ts_kernels.h"

void ts_fully_connected_observe_range(const ts_fc_layer_t *l, const int32_t *acc, float *bmin,
                                      float *bmax)
{
    const size_t c_n = l->out_features;
    const float s_x = l->p.in_q.scale;
    float lo = *bmin;
    float hi = *bmax;

    for (size_t c = 0; c < c_n; ++c) {
        float v = (float)acc[c] * (s_x * l->p.w_scale[c]);
        if (l->act == TS_ACT_RELU) {
            v = v > 0.0f ? v : 0.0f;
        }
        if (v < lo) {
            lo = v;
        }
        if (v > hi) {
            hi = v;
        }
    }
    *bmin = lo;
    *bmax = hi;
}
