/**
 * @file depthwise_conv2d.c
 * @brief ts_depthwise_conv2d_forward: int8 DepthwiseConv2D forward (depth multiplier 1).
 *
 * Layouts (TFLite): x [H][W][C] int8, w [1][KH][KW][C] int8, bias [C] int32,
 * y [OH][OW][C] int8. Output channel c sees input channel c only.
 *
 * Bit-exact with TFLite Micro's reference DepthwiseConvPerChannel (docs/int8-conv.md,
 * "DepthwiseConv2D"): in-image taps only, bias after the sum, gemmlowp requantization, zero
 * point, activation clamp. uint32 sum as in conv2d.c; the observer is the same too.
 */
#include <stddef.h>
#include <stdint.h>

#include "ts_kernels.h"

void ts_depthwise_conv2d_forward(const ts_conv_layer_t *l, const int8_t *x, int8_t *y,
                                 float *bmin, float *bmax)
{
    const int32_t in_h = l->in.h, in_w = l->in.w, c_n = l->in.c;
    const int32_t out_h = l->out.h, out_w = l->out.w;
    const int32_t kh = l->kh, kw = l->kw;
    const int32_t pad_t = ts_conv_pad(in_h, out_h, kh, l->stride_h);
    const int32_t pad_l = ts_conv_pad(in_w, out_w, kw, l->stride_w);
    const int32_t zp_x = l->p.in_q.zero_point;
    const int32_t zp_y = l->p.out_q.zero_point;
    const float s_x = l->p.in_q.scale;
    int32_t act_min, act_max;
    ts_act_range(l->act, l->p.out_q, &act_min, &act_max);
    float lo = bmin != NULL ? *bmin : 0.0f;
    float hi = bmax != NULL ? *bmax : 0.0f;

    for (int32_t oy = 0; oy < out_h; ++oy) {
        const int32_t y0 = oy * l->stride_h - pad_t;
        for (int32_t ox = 0; ox < out_w; ++ox) {
            const int32_t x0 = ox * l->stride_w - pad_l;
            int8_t *y_px = &y[((size_t)oy * (size_t)out_w + (size_t)ox) * (size_t)c_n];
            for (int32_t c = 0; c < c_n; ++c) {
                uint32_t sum = 0;
                for (int32_t ky = 0; ky < kh; ++ky) {
                    const int32_t iy = y0 + ky;
                    if (iy < 0 || iy >= in_h) {
                        continue;
                    }
                    for (int32_t kx = 0; kx < kw; ++kx) {
                        const int32_t ix = x0 + kx;
                        if (ix < 0 || ix >= in_w) {
                            continue;
                        }
                        const int32_t xv =
                            x[((size_t)iy * (size_t)in_w + (size_t)ix) * (size_t)c_n + (size_t)c];
                        const int32_t wv =
                            l->p.w[((size_t)ky * (size_t)kw + (size_t)kx) * (size_t)c_n +
                                   (size_t)c];
                        sum += (uint32_t)((xv - zp_x) * wv);
                    }
                }
                sum += (uint32_t)l->p.bias[c];
                const int32_t acc =
                    sum <= (uint32_t)INT32_MAX ? (int32_t)sum : -(int32_t)(~sum) - 1;
                if (bmin != NULL) {
                    float v = (float)acc * (s_x * l->p.w_scale[c]);
                    if (l->act != TS_ACT_NONE) {
                        v = v > 0.0f ? v : 0.0f;
                    }
                    if (l->act == TS_ACT_RELU6) {
                        v = v < 6.0f ? v : 6.0f;
                    }
                    lo = v < lo ? v : lo;
                    hi = v > hi ? v : hi;
                }
                int64_t out = (int64_t)ts_multiply_by_quantized_multiplier(acc, l->p.out_mult[c],
                                                                           l->p.out_shift[c]);
                out += zp_y;
                out = out < act_min ? act_min : out;
                out = out > act_max ? act_max : out;
                y_px[c] = (int8_t)out;
            }
        }
    }
    if (bmin != NULL) {
        *bmin = lo;
        *bmax = hi;
    }
}
