/**
 * @file avg_pool2d_backward.c
 * @brief ts_avg_pool2d_backward: int8 AveragePool2D backward, one sample
 *        (+ ts_avg_pool2d_backward_get_buffer_size).
 *
 * Layouts: g [OH][OW][C] int8 (output gradient, real = s_g * g), gx [H][W][C] int8 in
 * [-127, 127], scratch [H * W * C] int32 only when windows overlap.
 *
 * docs/int8-conv.md, "AveragePool2D backward": an output's gradient is shared by the n in-image
 * taps of its window, as g * r with r = round(2^15 / n) = (32768 + n/2) / n (integers, so
 * clipped SAME windows get their own weight); the per-input sums are re-quantized with one
 * max-abs scale: *s_gx = (s_g * 2^-15) * (m / 127). Without overlap each input gets at most one
 * term, so m is found from the outputs and gx is written directly, with no scratch.
 */
#include <stddef.h>
#include <stdint.h>

#include "ts_kernels.h"

static int overlapping(const ts_pool_params_t *p)
{
    return p->stride_h < p->kh || p->stride_w < p->kw;
}

size_t ts_avg_pool2d_backward_get_buffer_size(const ts_pool_params_t *p)
{
    if (!overlapping(p)) {
        return 0;
    }
    return (size_t)p->in.h * (size_t)p->in.w * (size_t)p->in.c * sizeof(int32_t);
}

/* Window [ya, yb) x [xa, xb) of output (oy, ox), clipped to the image as TFLM clips it. */
typedef struct {
    int32_t ya, yb, xa, xb;
} window_t;

static window_t window_of(const ts_pool_params_t *p, int32_t oy, int32_t ox)
{
    const int32_t y0 = oy * p->stride_h - ts_conv_pad(p->in.h, p->out.h, p->kh, p->stride_h);
    const int32_t x0 = ox * p->stride_w - ts_conv_pad(p->in.w, p->out.w, p->kw, p->stride_w);
    window_t win;
    win.ya = y0 > 0 ? y0 : 0;
    win.yb = y0 + p->kh < p->in.h ? y0 + p->kh : p->in.h;
    win.xa = x0 > 0 ? x0 : 0;
    win.xb = x0 + p->kw < p->in.w ? x0 + p->kw : p->in.w;
    return win;
}

void ts_avg_pool2d_backward(const ts_pool_params_t *p, const int8_t *g, float s_g,
                            int32_t *scratch, int8_t *gx, float *s_gx)
{
    const int32_t in_w = p->in.w, c_n = p->in.c;
    const int32_t out_h = p->out.h, out_w = p->out.w;
    const size_t n_in = (size_t)p->in.h * (size_t)in_w * (size_t)c_n;
    const int sum = overlapping(p);

    for (size_t i = 0; i < n_in; ++i) {
        gx[i] = 0;
        if (sum) {
            scratch[i] = 0;
        }
    }
    /* Pass 1: scratch sums (overlap) or the largest single term m (no overlap). */
    int64_t m = 0;
    for (int32_t oy = 0; oy < out_h; ++oy) {
        for (int32_t ox = 0; ox < out_w; ++ox) {
            const window_t win = window_of(p, oy, ox);
            const int32_t count = (win.yb - win.ya) * (win.xb - win.xa);
            const int32_t r = (32768 + count / 2) / count;
            const int8_t *g_px = &g[((size_t)oy * (size_t)out_w + (size_t)ox) * (size_t)c_n];
            for (int32_t c = 0; c < c_n; ++c) {
                const int32_t t = (int32_t)g_px[c] * r; /* |t| <= 2^22 */
                if (!sum) {
                    const int64_t a = t < 0 ? -(int64_t)t : (int64_t)t;
                    m = a > m ? a : m;
                    continue;
                }
                for (int32_t iy = win.ya; iy < win.yb; ++iy) {
                    for (int32_t ix = win.xa; ix < win.xb; ++ix) {
                        /* <= 511 terms of 2^22 per input (ts_pool_check): no overflow. */
                        scratch[((size_t)iy * (size_t)in_w + (size_t)ix) * (size_t)c_n +
                                (size_t)c] += t;
                    }
                }
            }
        }
    }
    if (sum) {
        m = (int64_t)ts_grad_requantize(scratch, n_in, gx);
    } else if (m > 0) {
        /* Pass 2 without overlap: each term re-quantized and written to its window's taps. */
        for (int32_t oy = 0; oy < out_h; ++oy) {
            for (int32_t ox = 0; ox < out_w; ++ox) {
                const window_t win = window_of(p, oy, ox);
                const int32_t count = (win.yb - win.ya) * (win.xb - win.xa);
                const int32_t r = (32768 + count / 2) / count;
                const int8_t *g_px = &g[((size_t)oy * (size_t)out_w + (size_t)ox) * (size_t)c_n];
                for (int32_t c = 0; c < c_n; ++c) {
                    const int64_t t = (int64_t)g_px[c] * r;
                    const int64_t a = t < 0 ? -t : t;
                    const int64_t q = (a * 127 + m / 2) / m;
                    const int8_t v = (int8_t)(t < 0 ? -q : q);
                    for (int32_t iy = win.ya; iy < win.yb; ++iy) {
                        for (int32_t ix = win.xa; ix < win.xb; ++ix) {
                            gx[((size_t)iy * (size_t)in_w + (size_t)ix) * (size_t)c_n +
                               (size_t)c] = v;
                        }
                    }
                }
            }
        }
    }
    if (m == 0) {
        *s_gx = 0.0f;
        return;
    }
    *s_gx = (s_g * 3.0517578125e-05f) * ((float)m / 127.0f);
}
