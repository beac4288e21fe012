/**
 * @file conv2d_backward_weights_fast.c
 * @brief ts_conv2d_backward_weights_fast: ts_conv2d_backward_weights
 *        (conv2d_backward_weights.c) bit for bit, in fewer instructions, with a scratch buffer.
 *
 * The filter gradient is a correlation of the kept input with the output gradient: per filter
 * element an int32 sum over the output pixels of g[p][co] * (window of p)[k]. The reference
 * walks filter elements outermost and finds each one's inputs again with bounds tests. Here
 * every sum lives in the caller's scratch (int32 [Cout][K], then the window buffer) and the
 * output pixels are walked once, four at a time:
 * - four pixels whose gradients are all zero (most of them behind a ReLU and a max pool) cost
 *   one test per channel;
 * - otherwise their four windows are copied once into an int16 column [K][4] (x - zp_x, padded
 *   taps 0), and every channel with a nonzero gradient adds (g0, g1) . (col[k][0], col[k][1])
 *   and (g2, g3) . (col[k][2], col[k][3]) to sum k: two SMLAD per four products on a core with
 *   the DSP extension, one load and one store of the sum.
 * The float updates are the reference's, element by element: grad_w += (float)sum * coef,
 * grad_b += (float)(sum of g) * s_g.
 */
#include <stddef.h>
#include <stdint.h>

#include "ts_fast.h"
#include "ts_kernels.h"

size_t ts_conv2d_backward_weights_fast_get_buffer_size(const ts_conv_layer_t *l)
{
    const size_t k = (size_t)l->kh * l->kw * l->in.c;
    return 4u * (size_t)l->out.c * k + 8u * k;
}

/* The window of output pixel p into col[4 * j + lane], j < K (x - zp_x, zero padding). */
static void window(const ts_conv_layer_t *l, const int8_t *x, int32_t p, int16_t *col,
                   uint32_t lane)
{
    const int32_t in_h = l->in.h, in_w = l->in.w, c_in = l->in.c;
    const int32_t kh = l->kh, kw = l->kw;
    const int32_t oy = p / l->out.w, ox = p % l->out.w;
    const int32_t y0 = oy * l->stride_h - ts_conv_pad(in_h, l->out.h, kh, l->stride_h);
    const int32_t x0 = ox * l->stride_w - ts_conv_pad(in_w, l->out.w, kw, l->stride_w);
    const int32_t zp = l->p.in_q.zero_point;
    int16_t *dst = &col[lane];
    for (int32_t ky = 0; ky < kh; ++ky) {
        const int32_t iy = y0 + ky;
        const int row_in = iy >= 0 && iy < in_h;
        for (int32_t kx = 0; kx < kw; ++kx) {
            const int32_t ix = x0 + kx;
            if (!row_in || ix < 0 || ix >= in_w) {
                for (int32_t ci = 0; ci < c_in; ++ci, dst += 4) {
                    *dst = 0;
                }
            } else {
                const int8_t *src = &x[((size_t)iy * (size_t)in_w + (size_t)ix) * (size_t)c_in];
                for (int32_t ci = 0; ci < c_in; ++ci, dst += 4) {
                    *dst = (int16_t)(src[ci] - zp);
                }
            }
        }
    }
}

void ts_conv2d_backward_weights_fast(ts_conv_layer_t *l, const int8_t *x, const int8_t *g,
                                     float s_g, int32_t *scratch)
{
    const uint32_t k = (uint32_t)l->kh * l->kw * l->in.c;
    const int32_t c_out = l->out.c;
    const int32_t n_px = (int32_t)l->out.h * l->out.w;
    const float coef = s_g * l->p.in_q.scale;
    int32_t *acc = scratch;
    int16_t *col = (int16_t *)(void *)&scratch[(size_t)c_out * k]; /* [K][4] */

    for (uint32_t i = 0; i < (uint32_t)c_out * k; ++i) {
        acc[i] = 0;
    }
    for (int32_t p0 = 0; p0 < n_px; p0 += 4) {
        const int32_t n = n_px - p0 < 4 ? n_px - p0 : 4; /* pixels in this group */
        const int8_t *g0 = &g[(size_t)p0 * (size_t)c_out];
        int built = 0;
        for (int32_t c = 0; c < c_out; ++c) {
            int32_t v[4] = {0, 0, 0, 0};
            int32_t any = 0;
            for (int32_t i = 0; i < n; ++i) {
                v[i] = g0[(size_t)i * (size_t)c_out + (size_t)c];
                any |= v[i];
            }
            if (any == 0) {
                continue;
            }
            if (!built) {
                for (int32_t i = 0; i < 4; ++i) {
                    if (i < n) {
                        window(l, x, p0 + i, col, (uint32_t)i);
                    } else {
                        for (uint32_t j = 0; j < k; ++j) {
                            col[4u * j + (uint32_t)i] = 0;
                        }
                    }
                }
                built = 1;
            }
            int32_t *a = &acc[(uint32_t)c * k];
#if TS_FAST_DSP
            const int16x2_t g01 = (int16x2_t)(((uint32_t)v[0] & 0xffffu) | ((uint32_t)v[1] << 16));
            const int16x2_t g23 = (int16x2_t)(((uint32_t)v[2] & 0xffffu) | ((uint32_t)v[3] << 16));
            const int16_t *cp = col;
            for (uint32_t j = 0; j < k; ++j, cp += 4) {
                int32_t s = __smlad(g01, (int16x2_t)ts_fast_ld32(cp), a[j]);
                a[j] = __smlad(g23, (int16x2_t)ts_fast_ld32(cp + 2), s);
            }
#else
            for (uint32_t j = 0; j < k; ++j) {
                const int16_t *cp = &col[4u * j];
                a[j] = (int32_t)((uint32_t)a[j] + (uint32_t)(v[0] * cp[0]) +
                                 (uint32_t)(v[1] * cp[1]) + (uint32_t)(v[2] * cp[2]) +
                                 (uint32_t)(v[3] * cp[3]));
            }
#endif
        }
    }
    for (int32_t co = 0; co < c_out; ++co) {
        uint32_t sb = 0;
        for (int32_t p = 0; p < n_px; ++p) {
            sb += (uint32_t)(int32_t)g[(size_t)p * (size_t)c_out + (size_t)co];
        }
        const int32_t sum_g = sb <= (uint32_t)INT32_MAX ? (int32_t)sb : -(int32_t)(~sb) - 1;
        l->p.grad_b[co] = l->p.grad_b[co] + (float)sum_g * s_g;
        float *gw = &l->p.grad_w[(size_t)co * k];
        const int32_t *a = &acc[(size_t)co * k];
        for (uint32_t j = 0; j < k; ++j) {
            gw[j] = gw[j] + (float)a[j] * coef;
        }
    }
}
