/**
 * @file avg_pool2d.c
 * @brief ts_avg_pool2d_forward: int8 AveragePool2D forward.
 *
 * Layouts: x [H][W][C] int8, y [OH][OW][C] int8; input and output share one quantization.
 *
 * Bit-exact with TFLite Micro's reference AveragePool (docs/int8-conv.md, "AveragePool2D"): the
 * mean of the window's in-image taps (SAME padding shrinks the count, it adds no zeros), rounded
 * half away from zero with C's truncating division: acc > 0 ? (acc + n/2) / n : (acc - n/2) / n.
 */
#include <stddef.h>
#include <stdint.h>

#include "ts_kernels.h"

void ts_avg_pool2d_forward(const ts_pool_params_t *p, const int8_t *x, int8_t *y)
{
    const int32_t in_h = p->in.h, in_w = p->in.w, c_n = p->in.c;
    const int32_t out_h = p->out.h, out_w = p->out.w;
    const int32_t pad_t = ts_conv_pad(in_h, out_h, p->kh, p->stride_h);
    const int32_t pad_l = ts_conv_pad(in_w, out_w, p->kw, p->stride_w);

    for (int32_t oy = 0; oy < out_h; ++oy) {
        const int32_t y0 = oy * p->stride_h - pad_t;
        const int32_t ya = y0 > 0 ? y0 : 0;
        const int32_t yb = y0 + p->kh < in_h ? y0 + p->kh : in_h;
        for (int32_t ox = 0; ox < out_w; ++ox) {
            const int32_t x0 = ox * p->stride_w - pad_l;
            const int32_t xa = x0 > 0 ? x0 : 0;
            const int32_t xb = x0 + p->kw < in_w ? x0 + p->kw : in_w;
            const int32_t count = (yb - ya) * (xb - xa); /* >= 1 for TFLite geometry */
            int8_t *y_px = &y[((size_t)oy * (size_t)out_w + (size_t)ox) * (size_t)c_n];
            for (int32_t c = 0; c < c_n; ++c) {
                int32_t acc = 0;
                for (int32_t iy = ya; iy < yb; ++iy) {
                    for (int32_t ix = xa; ix < xb; ++ix) {
                        acc += x[((size_t)iy * (size_t)in_w + (size_t)ix) * (size_t)c_n +
                                 (size_t)c];
                    }
                }
                acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                acc = acc < -128 ? -128 : acc;
                acc = acc > 127 ? 127 : acc;
                y_px[c] = (int8_t)acc;
            }
        }
    }
}
