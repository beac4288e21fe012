/**
 * @file conv2d_backward_input.c
 * @brief ts_conv2d_backward_input: int8 gradient of the Conv2D input, one sample
 *        (+ ts_conv2d_backward_input_get_buffer_size).
 *
 * Layouts: g [OH][OW][Cout] int8 (masked output gradient, real = s_g * g),
 * w [Cout][KH][KW][Cin] int8, gx [H][W][Cin] int8 in [-127, 127] (real ≈ *s_gx * gx),
 * scratch: acc [H * W * Cin] int32 then r [Cout] int32 (caller-owned).
 *
 * docs/int8-conv.md, "Input gradient": the FC scheme (docs/int8-training.md, step 3) on the
 * transposed convolution. The per-channel weight scales are folded into the gradient as Q15
 * ratios r[co] to the largest scale; t = (g * r + 2^(6+e)) >> (7+e) drops 7 + e bits, where e
 * (ts_grad_shift) grows with the number of products an input element sums, so the int32 sum
 * provably cannot overflow; then one max-abs rescale to the full int8 range. The sum runs in
 * uint32 (defined wrap, identical to the golden model's) and skips zero t (masked outputs).
 */
#include <stddef.h>
#include <stdint.h>

#include "ts_kernels.h"

/* Arithmetic (flooring) right shift, written so it is defined C for negative x too. */
static int32_t asr_i32(int32_t x, int32_t n)
{
    return x < 0 ? ~(~x >> n) : x >> n;
}

size_t ts_conv2d_backward_input_get_buffer_size(const ts_conv_layer_t *l)
{
    const size_t n_in = (size_t)l->in.h * (size_t)l->in.w * (size_t)l->in.c;
    return (n_in + (size_t)l->out.c) * sizeof(int32_t);
}

void ts_conv2d_backward_input(const ts_conv_layer_t *l, const int8_t *g, float s_g,
                              int32_t *scratch, int8_t *gx, float *s_gx)
{
    const int32_t in_h = l->in.h, in_w = l->in.w, c_in = l->in.c;
    const int32_t out_h = l->out.h, out_w = l->out.w, c_out = l->out.c;
    const int32_t kh = l->kh, kw = l->kw;
    const int32_t pad_t = ts_conv_pad(in_h, out_h, kh, l->stride_h);
    const int32_t pad_l = ts_conv_pad(in_w, out_w, kw, l->stride_w);
    const size_t n_in = (size_t)in_h * (size_t)in_w * (size_t)c_in;
    int32_t *acc = scratch;
    int32_t *r = &scratch[n_in];

    const uint64_t n_terms = (uint64_t)c_out * (uint64_t)((kh + l->stride_h - 1) / l->stride_h) *
                             (uint64_t)((kw + l->stride_w - 1) / l->stride_w);
    const int32_t e = ts_grad_shift(n_terms);

    float s_wmax = 0.0f;
    for (int32_t co = 0; co < c_out; ++co) {
        s_wmax = l->p.w_scale[co] > s_wmax ? l->p.w_scale[co] : s_wmax;
    }
    for (size_t i = 0; i < n_in; ++i) {
        acc[i] = 0;
    }
    /* Without a positive scale there is no gradient path (and the ratio would be 0/0). */
    if (s_wmax > 0.0f) {
        for (int32_t co = 0; co < c_out; ++co) {
            r[co] = ts_round((l->p.w_scale[co] / s_wmax) * 32768.0f);
        }
        for (int32_t oy = 0; oy < out_h; ++oy) {
            for (int32_t ox = 0; ox < out_w; ++ox) {
                const int8_t *g_px = &g[((size_t)oy * (size_t)out_w + (size_t)ox) * (size_t)c_out];
                for (int32_t co = 0; co < c_out; ++co) {
                    const int32_t t = asr_i32((int32_t)g_px[co] * r[co] + (1 << (6 + e)), 7 + e);
                    if (t == 0) {
                        continue;
                    }
                    for (int32_t ky = 0; ky < kh; ++ky) {
                        const int32_t iy = oy * l->stride_h - pad_t + ky;
                        if (iy < 0 || iy >= in_h) {
                            continue;
                        }
                        for (int32_t kx = 0; kx < kw; ++kx) {
                            const int32_t ix = ox * l->stride_w - pad_l + kx;
                            if (ix < 0 || ix >= in_w) {
                                continue;
                            }
                            const int8_t *w_tap =
                                &l->p.w[(((size_t)co * (size_t)kh + (size_t)ky) * (size_t)kw +
                                       (size_t)kx) * (size_t)c_in];
                            int32_t *a = &acc[((size_t)iy * (size_t)in_w + (size_t)ix) *
                                              (size_t)c_in];
                            for (int32_t ci = 0; ci < c_in; ++ci) {
                                const uint32_t s =
                                    (uint32_t)a[ci] + (uint32_t)(t * (int32_t)w_tap[ci]);
                                a[ci] = s <= (uint32_t)INT32_MAX ? (int32_t)s : -(int32_t)(~s) - 1;
                            }
                        }
                    }
                }
            }
        }
    }

    const uint32_t m = ts_grad_requantize(acc, n_in, gx);
    if (m == 0) {
        *s_gx = 0.0f;
        return;
    }
    float p = 0.00390625f; /* 2^(e - 8), exact */
    for (int32_t i = 0; i < e; ++i) {
        p *= 2.0f;
    }
    *s_gx = ((s_g * s_wmax) * p) * ((float)m / 127.0f);
}
