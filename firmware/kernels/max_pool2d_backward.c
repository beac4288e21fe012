/**
 * @file max_pool2d_backward.c
 * @brief ts_max_pool2d_backward: int8 MaxPool2D backward, one sample
 *        (+ ts_max_pool2d_backward_get_buffer_size).
 *
 * Layouts: x [H][W][C] int8 (the pool's input, kept from the forward pass), g [OH][OW][C] int8
 * (output gradient, real = s_g * g), gx [H][W][C] int8, scratch [H * W * C] int32 only when
 * windows overlap.
 *
 * docs/int8-conv.md, "MaxPool2D backward". The argmax is recomputed from x rather than kept
 * from the forward pass: x is kept anyway (it is the previous layer's output, whose activation
 * mask needs it), an argmax buffer would add OH * OW * C bytes per kept sample, and the
 * recomputation costs one forward pool. Ties go to the first maximum in row-major window order
 * (TensorFlow's MaxPoolGrad picks the same one).
 * Without overlap (stride >= window) every input gets at most one gradient, written straight
 * into gx with the same scale; with overlap the sums go through an int32 scratch and stay
 * exact when they fit int8, else are re-quantized to [-127, 127].
 */
#include <stddef.h>
#include <stdint.h>

#include "ts_kernels.h"

static int overlapping(const ts_pool_params_t *p)
{
    return p->stride_h < p->kh || p->stride_w < p->kw;
}

size_t ts_max_pool2d_backward_get_buffer_size(const ts_pool_params_t *p)
{
    if (!overlapping(p)) {
        return 0;
    }
    return (size_t)p->in.h * (size_t)p->in.w * (size_t)p->in.c * sizeof(int32_t);
}

void ts_max_pool2d_backward(const ts_pool_params_t *p, const int8_t *x, const int8_t *g,
                            float s_g, int32_t *scratch, int8_t *gx, float *s_gx)
{
    const int32_t in_h = p->in.h, in_w = p->in.w, c_n = p->in.c;
    const int32_t out_h = p->out.h, out_w = p->out.w;
    const int32_t pad_t = ts_conv_pad(in_h, out_h, p->kh, p->stride_h);
    const int32_t pad_l = ts_conv_pad(in_w, out_w, p->kw, p->stride_w);
    const size_t n_in = (size_t)in_h * (size_t)in_w * (size_t)c_n;
    const int sum = overlapping(p);

    for (size_t i = 0; i < n_in; ++i) {
        gx[i] = 0;
        if (sum) {
            scratch[i] = 0;
        }
    }
    for (int32_t oy = 0; oy < out_h; ++oy) {
        const int32_t y0 = oy * p->stride_h - pad_t;
        const int32_t ya = y0 > 0 ? y0 : 0;
        const int32_t yb = y0 + p->kh < in_h ? y0 + p->kh : in_h;
        for (int32_t ox = 0; ox < out_w; ++ox) {
            const int32_t x0 = ox * p->stride_w - pad_l;
            const int32_t xa = x0 > 0 ? x0 : 0;
            const int32_t xb = x0 + p->kw < in_w ? x0 + p->kw : in_w;
            const int8_t *g_px = &g[((size_t)oy * (size_t)out_w + (size_t)ox) * (size_t)c_n];
            for (int32_t c = 0; c < c_n; ++c) {
                /* The first maximum in row-major order: only a strictly larger value moves it. */
                size_t best_i = ((size_t)ya * (size_t)in_w + (size_t)xa) * (size_t)c_n + (size_t)c;
                int8_t best = x[best_i];
                for (int32_t iy = ya; iy < yb; ++iy) {
                    for (int32_t ix = xa; ix < xb; ++ix) {
                        const size_t i =
                            ((size_t)iy * (size_t)in_w + (size_t)ix) * (size_t)c_n + (size_t)c;
                        if (x[i] > best) {
                            best = x[i];
                            best_i = i;
                        }
                    }
                }
                if (sum) {
                    scratch[best_i] += g_px[c]; /* <= ceil(kh/sh)*ceil(kw/sw) int8 terms */
                } else {
                    gx[best_i] = g_px[c];
                }
            }
        }
    }
    *s_gx = s_g;
    if (!sum) {
        return;
    }
    int fits = 1;
    for (size_t i = 0; i < n_in; ++i) {
        if (scratch[i] < -128 || scratch[i] > 127) {
            fits = 0;
            break;
        }
    }
    if (fits) {
        for (size_t i = 0; i < n_in; ++i) {
            gx[i] = (int8_t)scratch[i];
        }
        return;
    }
    const uint32_t m = ts_grad_requantize(scratch, n_in, gx);
    *s_gx = s_g * ((float)m / 127.0f);
}
