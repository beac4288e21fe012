/**
 * @file conv_requantize.c
 * @brief ts_conv_requantize: int8 filter, int32 bias and multipliers of a conv layer from its
 *        float32 master copy.
 *
 * Layouts: master_w -> w, [Cout][KH][KW][Cin] (conv: channel c owns the contiguous row of
 * K = KH*KW*Cin) or [1][KH][KW][C] (depthwise: channel c owns every C-th element, K = KH*KW);
 * w_scale, bias, out_mult, out_shift [C].
 *
 * Per-channel symmetric max-abs quantization with the arithmetic of ts_fc_requantize
 * (docs/int8-training.md, "Optimizer step"), so TFLite Micro runs the re-quantized layer
 * unchanged. Uses l->out_q as it is now: call ts_conv_range_update first.
 */
#include <stddef.h>
#include <stdint.h>

#include "ts_conv.h"

/* Largest float32 below 2^31: every value in [-this, this] converts to int32 without UB. */
#define TS_INT32_FLOAT_LIMIT 2147483520.0f

void ts_conv_requantize(ts_conv_layer_t *l)
{
    const size_t c_n = l->out.c;
    const size_t taps = (size_t)l->kh * (size_t)l->kw;
    /* Element k of channel c sits at c * ch_stride + k * k_stride. */
    const size_t k_n = l->depthwise ? taps : taps * (size_t)l->in.c;
    const size_t ch_stride = l->depthwise ? 1u : k_n;
    const size_t k_stride = l->depthwise ? c_n : 1u;
    const float s_x = l->in_q.scale;
    const double s_y = (double)l->out_q.scale;

    for (size_t c = 0; c < c_n; ++c) {
        const float *mw = &l->master_w[c * ch_stride];
        int8_t *w = &l->w[c * ch_stride];

        float a = 0.0f;
        for (size_t k = 0; k < k_n; ++k) {
            const float v = mw[k * k_stride] < 0.0f ? -mw[k * k_stride] : mw[k * k_stride];
            a = v > a ? v : a;
        }
        const float s_w = a > 0.0f ? a / 127.0f : 1.0f;
        l->w_scale[c] = s_w;

        for (size_t k = 0; k < k_n; ++k) {
            int32_t q = ts_round(mw[k * k_stride] / s_w);
            q = q < -127 ? -127 : q;
            q = q > 127 ? 127 : q;
            w[k * k_stride] = (int8_t)q;
        }

        float b = l->master_b[c] / (s_x * s_w);
        if (b != b) { /* 0/0: both scales underflowed and a zero bias */
            b = 0.0f;
        }
        b = b > TS_INT32_FLOAT_LIMIT ? TS_INT32_FLOAT_LIMIT : b;
        b = b < -TS_INT32_FLOAT_LIMIT ? -TS_INT32_FLOAT_LIMIT : b;
        l->bias[c] = ts_round(b);

        /* TFLM's order: (double)s_x * (double)s_w / (double)s_y, left to right. */
        ts_quantize_multiplier((double)s_x * (double)s_w / s_y, &l->out_mult[c],
                               &l->out_shift[c]);
    }
}
