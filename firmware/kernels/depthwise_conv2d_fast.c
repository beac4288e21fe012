/**
 * @file depthwise_conv2d_fast.c
 * @brief ts_depthwise_conv2d_forward_fast: ts_depthwise_conv2d_forward (depthwise_conv2d.c)
 *        bit for bit, in fewer instructions.
 *
 * Channels four at a time: every tap is one word of four inputs and one word of four filter
 * bytes, and each pixel's in-image window is worked out once (no bounds test per tap). On a
 * core with the DSP extension SXTB16 widens both words to lane pairs, SSUB16 takes the zero
 * point off the inputs, and SMLABB / SMLATT add each channel's product to its own sum (the
 * products of a depthwise layer never meet across channels, so SMLAD's pairing does not
 * apply). The requantization is ts_fast.h's output stage, in blocks of TS_FAST_CHANNELS_MAX
 * channels; the sums are the reference's in another order.
 */
#include <stddef.h>
#include <stdint.h>

#include "ts_fast.h"
#include "ts_kernels.h"

/* Adds to s the products of channels c..c+3 at one pixel: the n_ky x n_kx in-image taps from
 * the first one, x_tap in the input and w_tap in the filter. */
__attribute__((always_inline)) static inline void quad(const ts_conv_layer_t *l,
                                                       const int8_t *x_tap, const int8_t *w_tap,
                                                       int32_t n_ky, int32_t n_kx, int32_t s[4])
{
    const size_t c_n = l->in.c;
    const size_t x_row = (size_t)l->in.w * c_n, w_row = (size_t)l->kw * c_n;
    const int32_t zp = l->p.in_q.zero_point;
    int32_t a0 = s[0], a1 = s[1], a2 = s[2], a3 = s[3];
#if TS_FAST_DSP
    const uint32_t zp2 = ((uint32_t)zp & 0xffffu) | ((uint32_t)zp << 16);
#endif
    for (int32_t ky = 0; ky < n_ky; ++ky) {
        const int8_t *xp = x_tap + (size_t)ky * x_row;
        const int8_t *wp = w_tap + (size_t)ky * w_row;
        for (int32_t kx = 0; kx < n_kx; ++kx, xp += c_n, wp += c_n) {
#if TS_FAST_DSP
            const uint32_t xv = ts_fast_ld32(xp), wv = ts_fast_ld32(wp);
            const uint32_t x02 = (uint32_t)__ssub16(__sxtb16(xv), (int16x2_t)zp2);
            const uint32_t x13 = (uint32_t)__ssub16((int16x2_t)ts_fast_sxtb16_ror8(xv),
                                                    (int16x2_t)zp2);
            const uint32_t w02 = (uint32_t)__sxtb16(wv), w13 = ts_fast_sxtb16_ror8(wv);
            a0 = __smlabb((int32_t)x02, (int32_t)w02, a0);
            a2 = __smlatt((int32_t)x02, (int32_t)w02, a2);
            a1 = __smlabb((int32_t)x13, (int32_t)w13, a1);
            a3 = __smlatt((int32_t)x13, (int32_t)w13, a3);
#else
            a0 = (int32_t)((uint32_t)a0 + (uint32_t)((xp[0] - zp) * wp[0]));
            a1 = (int32_t)((uint32_t)a1 + (uint32_t)((xp[1] - zp) * wp[1]));
            a2 = (int32_t)((uint32_t)a2 + (uint32_t)((xp[2] - zp) * wp[2]));
            a3 = (int32_t)((uint32_t)a3 + (uint32_t)((xp[3] - zp) * wp[3]));
#endif
        }
    }
    s[0] = a0;
    s[1] = a1;
    s[2] = a2;
    s[3] = a3;
}

/* quad for a pixel whose whole window is in the image, without the zero point: the caller's
 * sums start at bias - zp_x * (sum of the channel's filter), which is the same int32 sum
 * (sum w (x - zp) = sum w x - zp sum w, modulo 2^32 as every sum here). kw is a constant at the
 * call sites that unroll it. */
__attribute__((always_inline)) static inline void quad_inner(const ts_conv_layer_t *l,
                                                             const int8_t *x_tap,
                                                             const int8_t *w_tap, int32_t s[4],
                                                             const int32_t kw)
{
    const size_t c_n = l->in.c;
    const size_t x_row = (size_t)l->in.w * c_n;
    int32_t a0 = s[0], a1 = s[1], a2 = s[2], a3 = s[3];
    for (int32_t ky = 0; ky < l->kh; ++ky, x_tap += x_row) {
        const int8_t *xp = x_tap;
#pragma GCC unroll 5
        for (int32_t kx = 0; kx < kw; ++kx, xp += c_n, w_tap += c_n) {
#if TS_FAST_DSP
            const uint32_t xv = ts_fast_ld32(xp), wv = ts_fast_ld32(w_tap);
            const int32_t x02 = (int32_t)__sxtb16(xv), w02 = (int32_t)__sxtb16(wv);
            const int32_t x13 = (int32_t)ts_fast_sxtb16_ror8(xv);
            const int32_t w13 = (int32_t)ts_fast_sxtb16_ror8(wv);
            a0 = __smlabb(x02, w02, a0);
            a2 = __smlatt(x02, w02, a2);
            a1 = __smlabb(x13, w13, a1);
            a3 = __smlatt(x13, w13, a3);
#else
            a0 = (int32_t)((uint32_t)a0 + (uint32_t)(xp[0] * w_tap[0]));
            a1 = (int32_t)((uint32_t)a1 + (uint32_t)(xp[1] * w_tap[1]));
            a2 = (int32_t)((uint32_t)a2 + (uint32_t)(xp[2] * w_tap[2]));
            a3 = (int32_t)((uint32_t)a3 + (uint32_t)(xp[3] * w_tap[3]));
#endif
        }
    }
    s[0] = a0;
    s[1] = a1;
    s[2] = a2;
    s[3] = a3;
}

/* One channel's sum (the channels after the last group of four); arguments as quad's. */
static int32_t single(const ts_conv_layer_t *l, const int8_t *x_tap, const int8_t *w_tap,
                      int32_t n_ky, int32_t n_kx, int32_t a)
{
    const size_t c_n = l->in.c;
    const int32_t zp = l->p.in_q.zero_point;
    for (int32_t ky = 0; ky < n_ky; ++ky) {
        for (int32_t kx = 0; kx < n_kx; ++kx) {
            const size_t xo = ((size_t)ky * l->in.w + (size_t)kx) * c_n;
            const size_t wo = ((size_t)ky * l->kw + (size_t)kx) * c_n;
            a = (int32_t)((uint32_t)a + (uint32_t)((x_tap[xo] - zp) * w_tap[wo]));
        }
    }
    return a;
}

/* The four outputs of channels cb + i .. cb + i + 3 at one pixel. */
__attribute__((always_inline)) static inline void quad_out(ts_fast_out_t *o, size_t i,
                                                           const int32_t s[4], int8_t *y_px,
                                                           const int narrow)
{
    const int32_t lo = o->act_min, hi = o->act_max, zp_y = o->zp_y;
    for (size_t r = 0; r < 4u; ++r) {
        ts_fast_chan_t *h = &o->ch[i + r];
        const int32_t v = ts_fast_out(s[r], TS_FAST_CHAN_ARGS(h, narrow), lo, hi, zp_y, narrow);
        if (o->observe) {
            ts_fast_observe(h, s[r], s[r]);
        }
        y_px[i + r] = (int8_t)v;
    }
}

/* channels [cb, cb + cn) of every pixel; kw_c: the filter width as a constant to unroll for,
 * or 0 */
__attribute__((always_inline)) static inline void channel_block(const ts_conv_layer_t *l,
                                                                ts_fast_out_t *o, size_t cb,
                                                                size_t cn, const int8_t *x,
                                                                int8_t *y, const int narrow,
                                                                const int32_t kw_c)
{
    const int32_t in_h = l->in.h, in_w = l->in.w;
    const int32_t out_h = l->out.h, out_w = l->out.w;
    const size_t c_n = l->in.c;
    const int32_t kh = l->kh, kw = l->kw;
    const int32_t pad_t = ts_conv_pad(in_h, out_h, kh, l->stride_h);
    const int32_t pad_l = ts_conv_pad(in_w, out_w, kw, l->stride_w);
    const int32_t zp_x = l->p.in_q.zero_point;
    const int32_t lo = o->act_min, hi = o->act_max, zp_y = o->zp_y;
    /* the inner pixels' starting sums: bias - zp_x * sum of the channel's filter */
    int32_t inner[TS_FAST_CHANNELS_MAX];
    for (size_t i = 0; i < cn; ++i) {
        uint32_t w_sum = 0;
        for (int32_t t = 0; t < kh * kw; ++t) {
            w_sum += (uint32_t)(int32_t)l->p.w[(size_t)t * c_n + cb + i];
        }
        inner[i] = (int32_t)((uint32_t)l->p.bias[cb + i] - (uint32_t)zp_x * w_sum);
    }
    for (int32_t oy = 0; oy < out_h; ++oy) {
        const int32_t y0 = oy * l->stride_h - pad_t;
        const int32_t ky0 = y0 < 0 ? -y0 : 0, ky1 = in_h - y0 < kh ? in_h - y0 : kh;
        for (int32_t ox = 0; ox < out_w; ++ox) {
            const int32_t x0 = ox * l->stride_w - pad_l;
            const int32_t kx0 = x0 < 0 ? -x0 : 0, kx1 = in_w - x0 < kw ? in_w - x0 : kw;
            int32_t n_ky = ky1 - ky0, n_kx = kx1 - kx0;
            if (n_ky <= 0 || n_kx <= 0) { /* no tap in the image: the sums are the biases */
                n_ky = 0;
                n_kx = 0;
            }
            /* the first in-image tap of channel cb, in the input and in the filter */
            const int8_t *x_tap =
                n_ky == 0 ? x
                          : &x[((size_t)(y0 + ky0) * (size_t)in_w + (size_t)(x0 + kx0)) * c_n + cb];
            const int8_t *w_tap =
                n_ky == 0 ? l->p.w : &l->p.w[((size_t)ky0 * (size_t)kw + (size_t)kx0) * c_n + cb];
            int8_t *y_px = &y[((size_t)oy * (size_t)out_w + (size_t)ox) * c_n + cb];
            const int whole = n_ky == kh && n_kx == kw;
            size_t i = 0;
            for (; i + 4u <= cn; i += 4u) {
                int32_t s[4];
                if (whole) {
                    s[0] = inner[i];
                    s[1] = inner[i + 1u];
                    s[2] = inner[i + 2u];
                    s[3] = inner[i + 3u];
                    quad_inner(l, x_tap + i, w_tap + i, s, kw_c != 0 ? kw_c : kw);
                } else {
                    s[0] = l->p.bias[cb + i];
                    s[1] = l->p.bias[cb + i + 1u];
                    s[2] = l->p.bias[cb + i + 2u];
                    s[3] = l->p.bias[cb + i + 3u];
                    quad(l, x_tap + i, w_tap + i, n_ky, n_kx, s);
                }
                quad_out(o, i, s, y_px, narrow);
            }
            for (; i < cn; ++i) {
                const int32_t s = single(l, x_tap + i, w_tap + i, n_ky, n_kx, l->p.bias[cb + i]);
                ts_fast_chan_t *h = &o->ch[i];
                const int32_t v =
                    ts_fast_out(s, TS_FAST_CHAN_ARGS(h, narrow), lo, hi, zp_y, narrow);
                if (o->observe) {
                    ts_fast_observe(h, s, s);
                }
                y_px[i] = (int8_t)v;
            }
        }
    }
}

void ts_depthwise_conv2d_forward_fast(const ts_conv_layer_t *l, const int8_t *x, int8_t *y,
                                      float *bmin, float *bmax)
{
    const size_t c_n = l->in.c;
    ts_fast_out_t o;
    float lo = bmin != NULL ? *bmin : 0.0f, hi = bmax != NULL ? *bmax : 0.0f;
    for (size_t cb = 0; cb < c_n; cb += TS_FAST_CHANNELS_MAX) {
        const size_t cn = c_n - cb < TS_FAST_CHANNELS_MAX ? c_n - cb : TS_FAST_CHANNELS_MAX;
        if (!ts_fast_out_setup_block(&l->p, l->act, (uint32_t)l->kh * l->kw, bmin != NULL,
                                     (uint32_t)cb, (uint32_t)cn, &o)) {
            ts_depthwise_conv2d_forward(l, x, y, bmin, bmax); /* from the caller's range */
            return;
        }
        if (o.narrow && l->kw == 3u) {
            channel_block(l, &o, cb, cn, x, y, 1, 3); /* 3 wide, the common depthwise window */
        } else {
            channel_block(l, &o, cb, cn, x, y, o.narrow, 0); /* one general copy */
        }
        ts_fast_out_finish(&l->p, l->act, &o, (uint32_t)cb, (uint32_t)cn, &lo, &hi);
    }
    if (bmin != NULL) {
        *bmin = lo;
        *bmax = hi;
    }
}
