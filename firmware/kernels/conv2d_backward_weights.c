/**
 * @file conv2d_backward_weights.c
 * @brief ts_conv2d_backward_weights: adds one sample's filter and bias gradient to the layer.
 *
 * Layouts: x [H][W][Cin] int8 (the layer input of the sample), g [OH][OW][Cout] int8 (masked
 * output gradient, real = s_g * g), grad_w [Cout][KH][KW][Cin] float32, grad_b [Cout] float32.
 *
 * docs/int8-conv.md, "Conv2D backward": per filter element an int32 sum over the output
 * positions of g * (x - zp_x) (taps outside the image are real zeros and add nothing), then
 * grad_w += (float)sum * (s_g * s_x); per channel grad_b += (float)(sum of g) * s_g. The int32
 * sum cannot wrap while OH * OW <= 65793 (|g| <= 128, |x - zp_x| <= 255); ts_conv_check asks
 * for <= 65535. Samples meet in float (their scales differ), as in the FC layer.
 */
#include <stddef.h>
#include <stdint.h>

#include "ts_kernels.h"

void ts_conv2d_backward_weights(ts_conv_layer_t *l, const int8_t *x, const int8_t *g, float s_g)
{
    const int32_t in_h = l->in.h, in_w = l->in.w, c_in = l->in.c;
    const int32_t out_h = l->out.h, out_w = l->out.w, c_out = l->out.c;
    const int32_t kh = l->kh, kw = l->kw;
    const int32_t pad_t = ts_conv_pad(in_h, out_h, kh, l->stride_h);
    const int32_t pad_l = ts_conv_pad(in_w, out_w, kw, l->stride_w);
    const int32_t zp_x = l->p.in_q.zero_point;
    const float coef = s_g * l->p.in_q.scale;

    for (int32_t co = 0; co < c_out; ++co) {
        uint32_t sb = 0;
        for (size_t p = 0; p < (size_t)out_h * (size_t)out_w; ++p) {
            sb += (uint32_t)(int32_t)g[p * (size_t)c_out + (size_t)co];
        }
        const int32_t sum_g = sb <= (uint32_t)INT32_MAX ? (int32_t)sb : -(int32_t)(~sb) - 1;
        l->p.grad_b[co] = l->p.grad_b[co] + (float)sum_g * s_g;

        for (int32_t ky = 0; ky < kh; ++ky) {
            for (int32_t kx = 0; kx < kw; ++kx) {
                float *gw_tap = &l->p.grad_w[(((size_t)co * (size_t)kh + (size_t)ky) * (size_t)kw +
                                            (size_t)kx) * (size_t)c_in];
                for (int32_t ci = 0; ci < c_in; ++ci) {
                    uint32_t sum = 0;
                    for (int32_t oy = 0; oy < out_h; ++oy) {
                        const int32_t iy = oy * l->stride_h - pad_t + ky;
                        if (iy < 0 || iy >= in_h) {
                            continue;
                        }
                        for (int32_t ox = 0; ox < out_w; ++ox) {
                            const int32_t ix = ox * l->stride_w - pad_l + kx;
                            if (ix < 0 || ix >= in_w) {
                                continue;
                            }
                            const int32_t gv =
                                g[((size_t)oy * (size_t)out_w + (size_t)ox) * (size_t)c_out +
                                  (size_t)co];
                            const int32_t xv =
                                x[((size_t)iy * (size_t)in_w + (size_t)ix) * (size_t)c_in +
                                  (size_t)ci];
                            sum += (uint32_t)(gv * (xv - zp_x));
                        }
                    }
                    const int32_t acc =
                        sum <= (uint32_t)INT32_MAX ? (int32_t)sum : -(int32_t)(~sum) - 1;
                    gw_tap[ci] = gw_tap[ci] + (float)acc * coef;
                }
            }
        }
    }
}
