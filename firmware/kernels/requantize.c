/**
 * @file requantize.c
 * @brief ts_requantize: int8 weights, int32 bias and multipliers of a trainable op from its
 *        float32 master copy (any op, either channel layout).
 *
 * Layouts: master_w -> w, [C][K] (TS_CHANNEL_FIRST: channel c owns the contiguous row of K) or
 * [K][C] (TS_CHANNEL_LAST, a depthwise filter [1][KH][KW][C]: channel c owns every C-th
 * element); w_scale, bias, out_mult, out_shift [C].
 *
 * Per-channel symmetric max-abs quantization, as TFLite's converter does for weights, so the
 * re-quantized op is one TFLite Micro runs unchanged (docs/int8-training.md, "Optimizer
 * step"). Uses p->out_q as it is now: call ts_range_update first.
 */
#include <stddef.h>
#include <stdint.h>

#include "ts_kernels.h"

void ts_requantize(ts_params_t *p)
{
    const size_t c_n = p->channels;
    const size_t k_n = p->per_channel;
    /* Weight k of channel c sits at c * ch_stride + k * k_stride. */
    const size_t ch_stride = p->layout == TS_CHANNEL_LAST ? 1u : k_n;
    const size_t k_stride = p->layout == TS_CHANNEL_LAST ? c_n : 1u;
    const float s_x = p->in_q.scale;
    const double s_y = (double)p->out_q.scale;

    for (size_t c = 0; c < c_n; ++c) {
        const float *mw = &p->master_w[c * ch_stride];
        int8_t *w = &p->w[c * ch_stride];

        float a = 0.0f;
        for (size_t k = 0; k < k_n; ++k) {
            const float v = mw[k * k_stride] < 0.0f ? -mw[k * k_stride] : mw[k * k_stride];
            a = v > a ? v : a;
        }
        const float s_w = a > 0.0f ? a / 127.0f : 1.0f;
        p->w_scale[c] = s_w;

        for (size_t k = 0; k < k_n; ++k) {
            /* |mw / s_w| <= 127 (plus rounding), so ts_round's input is in range. */
            int32_t q = ts_round(mw[k * k_stride] / s_w);
            q = q < -127 ? -127 : q;
            q = q > 127 ? 127 : q;
            w[k * k_stride] = (int8_t)q;
        }

        float b = p->master_b[c] / (s_x * s_w);
        if (b != b) { /* 0/0: both scales underflowed and a zero bias; NaN has no int32 */
            b = 0.0f;
        }
        b = b > TS_INT32_FLOAT_LIMIT ? TS_INT32_FLOAT_LIMIT : b;
        b = b < -TS_INT32_FLOAT_LIMIT ? -TS_INT32_FLOAT_LIMIT : b;
        p->bias[c] = ts_round(b);

        /* TFLM's order: (double)s_x * (double)s_w / (double)s_y, left to right. */
        ts_quantize_multiplier((double)s_x * (double)s_w / s_y, &p->out_mult[c],
                               &p->out_shift[c]);
    }
}
