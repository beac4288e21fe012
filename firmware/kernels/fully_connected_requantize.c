/**
 * @file fully_connected_requantize.c
 * @brief ts_fc_requantize: int8 weights, int32 bias and multipliers from the master copy.
 *
 * Layouts: master_w [C][K] float32 -> w [C][K] int8 in [-127, 127], w_scale [C] float32;
 * master_b [C] float32 -> bias [C] int32 (scale s_x * w_scale[c]); out_mult/out_shift [C].
 *
 * Per-channel symmetric max-abs quantization, as TFLite's converter does for weights, so the
 * re-quantized layer is one TFLite Micro runs unchanged (docs/int8-training.md, "Optimizer
 * step"). Uses l->out_q as it is now: call ts_range_update first.
 */
#include <stddef.h>
#include <stdint.h>

#include "ts_kernels.h"

/* Largest float32 below 2^31: every value in [-this, this] converts to int32 without UB. */
#define TS_INT32_FLOAT_LIMIT 2147483520.0f

void ts_fc_requantize(ts_fc_layer_t *l)
{
    const size_t k_n = l->in_features;
    const size_t c_n = l->out_features;
    const float s_x = l->in_q.scale;
    const double s_y = (double)l->out_q.scale;

    for (size_t c = 0; c < c_n; ++c) {
        const float *mw = &l->master_w[c * k_n];
        int8_t *w_row = &l->w[c * k_n];

        float a = 0.0f;
        for (size_t k = 0; k < k_n; ++k) {
            const float v = mw[k] < 0.0f ? -mw[k] : mw[k];
            if (v > a) {
                a = v;
            }
        }
        const float s_w = a > 0.0f ? a / 127.0f : 1.0f;
        l->w_scale[c] = s_w;

        for (size_t k = 0; k < k_n; ++k) {
            /* |mw[k] / s_w| <= 127 (plus rounding), so ts_round's input is in range. */
            int32_t q = ts_round(mw[k] / s_w);
            if (q < -127) {
                q = -127;
            } else if (q > 127) {
                q = 127;
            }
            w_row[k] = (int8_t)q;
        }

        float b = l->master_b[c] / (s_x * s_w);
        /* 0/0 (both scales underflowed and a zero bias) gives NaN, which has no int32 value. */
        if (b != b) {
            b = 0.0f;
        }
        if (b > TS_INT32_FLOAT_LIMIT) {
            b = TS_INT32_FLOAT_LIMIT;
        } else if (b < -TS_INT32_FLOAT_LIMIT) {
            b = -TS_INT32_FLOAT_LIMIT;
        }
        l->bias[c] = ts_round(b);

        /* TFLM's order: (double)s_x * (double)s_w / (double)s_y, left to right. */
        ts_quantize_multiplier((double)s_x * (double)s_w / s_y, &l->out_mult[c],
                               &l->out_shift[c]);
    }
}
