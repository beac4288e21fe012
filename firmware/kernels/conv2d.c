/**
 * @file conv2d.c
 * @brief ts_conv2d_forward: int8 Conv2D forward, per-channel requantization, fused activation
 *        and (optionally) the batch range observation.
 *
 * Layouts (TFLite): x [H][W][Cin] int8, w [Cout][KH][KW][Cin] int8, bias [Cout] int32,
 * y [OH][OW][Cout] int8. Conv1D is this kernel with H = KH = 1.
 *
 * Bit-exact with TFLite Micro's reference ConvPerChannel (docs/int8-conv.md, "Conv2D forward"):
 * taps outside the image are skipped (a padded input is a real 0), the bias is added after the
 * sum, then gemmlowp's double-rounding multiply, the zero point and the activation clamp. The
 * sum runs in uint32 so that it wraps like TFLM's int32 without signed-overflow UB; it never
 * wraps for KH * KW * Cin <= 65535 (ts_conv_check). The observer folds in
 * v = act((float)acc * (s_x * s_w[c])) per output, so no int32 accumulator buffer is needed.
 */
#include <stddef.h>
#include <stdint.h>

#include "ts_kernels.h"

void ts_conv2d_forward(const ts_conv_layer_t *l, const int8_t *x, int8_t *y, float *bmin,
                       float *bmax)
{
    const int32_t in_h = l->in.h, in_w = l->in.w, c_in = l->in.c;
    const int32_t out_h = l->out.h, out_w = l->out.w, c_out = l->out.c;
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
            int8_t *y_px = &y[((size_t)oy * (size_t)out_w + (size_t)ox) * (size_t)c_out];
            for (int32_t co = 0; co < c_out; ++co) {
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
                        const int8_t *x_px = &x[((size_t)iy * (size_t)in_w + (size_t)ix) *
                                                (size_t)c_in];
                        const int8_t *w_tap =
                            &l->p.w[(((size_t)co * (size_t)kh + (size_t)ky) * (size_t)kw +
                                   (size_t)kx) * (size_t)c_in];
                        for (int32_t ci = 0; ci < c_in; ++ci) {
                            sum += (uint32_t)(((int32_t)x_px[ci] - zp_x) * (int32_t)w_tap[ci]);
                        }
                    }
                }
                sum += (uint32_t)l->p.bias[co];
                const int32_t acc =
                    sum <= (uint32_t)INT32_MAX ? (int32_t)sum : -(int32_t)(~sum) - 1;
                if (bmin != NULL) {
                    float v = (float)acc * (s_x * l->p.w_scale[co]);
                    if (l->act != TS_ACT_NONE) {
                        v = v > 0.0f ? v : 0.0f;
                    }
                    if (l->act == TS_ACT_RELU6) {
                        v = v < 6.0f ? v : 6.0f;
                    }
                    lo = v < lo ? v : lo;
                    hi = v > hi ? v : hi;
                }
                int64_t out = (int64_t)ts_multiply_by_quantized_multiplier(acc, l->p.out_mult[co],
                                                                           l->p.out_shift[co]);
                out += zp_y;
                out = out < act_min ? act_min : out;
                out = out > act_max ? act_max : out;
                y_px[co] = (int8_t)out;
            }
        }
    }
    if (bmin != NULL) {
        *bmin = lo;
        *bmax = hi;
    }
}
