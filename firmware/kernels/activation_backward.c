/**
 * @file activation_backward.c
 * @brief ts_act_backward: the mask a fused RELU / RELU6 puts on the output gradient, in place.
 *
 * Layouts: g [n] int8 (output gradient, modified), y [n] int8 (the forward output kept from
 * the forward pass, quantized with q).
 *
 * An output clamped at the floor (y <= max(-128, zp)) had no gradient path; for RELU6 an output
 * at the 6 cap (y >= zp + round(6 / s), which can only happen when that cap lies inside int8)
 * had none either. An output saturated at 127 by the int8 range alone passes its gradient
 * straight through, as in ts_relu_backward (docs/int8-conv.md, "Activations").
 */
#include <stddef.h>
#include <stdint.h>

#include "ts_kernels.h"


void ts_act_backward(uint8_t act, ts_quant_t q, int8_t *g, const int8_t *y, size_t n)
{
    if (act != TS_ACT_RELU && act != TS_ACT_RELU6) {
        return;
    }
    const int64_t floor_q = q.zero_point > -128 ? q.zero_point : -128;
    int64_t cap_q = INT64_MAX; /* RELU: no upper mask */
    if (act == TS_ACT_RELU6) {
        float f = 6.0f / q.scale;
        if (!(f <= TS_INT32_FLOAT_LIMIT)) {
            f = TS_INT32_FLOAT_LIMIT;
        }
        cap_q = (int64_t)q.zero_point + (int64_t)ts_round(f);
    }
    for (size_t i = 0; i < n; ++i) {
        const int64_t v = y[i];
        if (v <= floor_q || v >= cap_q) {
            g[i] = 0;
        }
    }
}
