/**
 * @file activation_range.c
 * @brief ts_act_range: the int8 clamp of a fused activation (NONE, RELU, RELU6).
 *
 * TFLite Micro's CalculateActivationRangeQuantized for an int8 output quantized with q:
 * RELU's floor is Quantize(0) = zp; RELU6's cap is Quantize(6) = zp + round(6.0f / s) (float32
 * division, rounding half away from zero), each clipped to [-128, 127]. Computed from out_q on
 * every call because out_q moves with the running range (docs/int8-conv.md, "Activations").
 */
#include <stdint.h>

#include "ts_kernels.h"


void ts_act_range(uint8_t act, ts_quant_t q, int32_t *act_min, int32_t *act_max)
{
    *act_min = -128;
    *act_max = 127;
    if (act != TS_ACT_RELU && act != TS_ACT_RELU6) {
        return;
    }
    *act_min = q.zero_point > -128 ? q.zero_point : -128;
    if (act == TS_ACT_RELU6) {
        float f = 6.0f / q.scale;
        /* A scale so small that 6 / s leaves int32 (TFLM refuses such a model) caps at 127. */
        if (!(f <= TS_INT32_FLOAT_LIMIT)) {
            f = TS_INT32_FLOAT_LIMIT;
        }
        const int64_t cap = (int64_t)q.zero_point + (int64_t)ts_round(f);
        *act_max = cap < 127 ? (int32_t)cap : 127;
    }
}
