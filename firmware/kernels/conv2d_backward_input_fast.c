/**
 * @file conv2d_backward_input_fast.c
 * @brief ts_conv2d_backward_input_fast: ts_conv2d_backward_input (conv2d_backward_input.c)
 *        bit for bit, in fewer instructions.
 *
 * The input gradient is a transposed convolution: every output pixel adds t[co] * w[co][tap]
 * to the inputs of its window, t the rescaled output gradient (zero for most channels behind a
 * ReLU). The reference adds channel by channel, loading and storing each input's sum once per
 * channel and testing the bounds per tap. Here each output pixel gathers its nonzero channels
 * first, works out its in-image taps once, and each input sum of its window is loaded and
 * stored once, with the products of all those channels added in registers in between (add_tap);
 * the int8 result comes from ts_grad_requantize_fast. int32 sums wrap the same in any order;
 * t fits 16 bits (|g * r| <= 128 * 2^15 before the shift by 7 or more), as SMLAxB needs.
 */
#include <stddef.h>
#include <stdint.h>

#include "ts_fast.h"
#include "ts_kernels.h"

#define GATHER 64

/* a[ci] += sum over the n gathered channels of t[i] * rows[i][tap + ci], for ci < c_in: four
 * input channels at a time with their sums in registers (one word of four filter bytes per
 * channel; SMLABB / SMLATB on a core with the DSP extension), then each sum stored once. */
/* a gathered channel: its filter row and its rescaled gradient (one LDRD) */
typedef struct {
    const int8_t *row;
    int32_t t;
} chan_t;

__attribute__((always_inline)) static inline void add_tap(int32_t *a, const chan_t *ch,
                                                           int32_t n, size_t tap, int32_t c_in)
{
    int32_t ci = 0;
#if TS_FAST_DSP
    /* eight input channels per pass where there are: one channel's filter pointer and gradient
     * loaded once per eight products */
    for (; ci + 8 <= c_in; ci += 8) {
        const size_t off = tap + (size_t)ci;
        uint32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
        for (const chan_t *c = ch, *end = ch + n; c != end; ++c) {
            const int8_t *w = c->row + off;
            const int32_t ti = c->t;
            const uint32_t v = ts_fast_ld32(w), u = ts_fast_ld32(w + 4);
            const int32_t w02 = (int32_t)__sxtb16(v), w13 = (int32_t)ts_fast_sxtb16_ror8(v);
            const int32_t u02 = (int32_t)__sxtb16(u), u13 = (int32_t)ts_fast_sxtb16_ror8(u);
            s0 = (uint32_t)__smlabb(w02, ti, (int32_t)s0);
            s2 = (uint32_t)__smlatb(w02, ti, (int32_t)s2);
            s1 = (uint32_t)__smlabb(w13, ti, (int32_t)s1);
            s3 = (uint32_t)__smlatb(w13, ti, (int32_t)s3);
            s4 = (uint32_t)__smlabb(u02, ti, (int32_t)s4);
            s6 = (uint32_t)__smlatb(u02, ti, (int32_t)s6);
            s5 = (uint32_t)__smlabb(u13, ti, (int32_t)s5);
            s7 = (uint32_t)__smlatb(u13, ti, (int32_t)s7);
        }
        a[ci] = (int32_t)((uint32_t)a[ci] + s0);
        a[ci + 1] = (int32_t)((uint32_t)a[ci + 1] + s1);
        a[ci + 2] = (int32_t)((uint32_t)a[ci + 2] + s2);
        a[ci + 3] = (int32_t)((uint32_t)a[ci + 3] + s3);
        a[ci + 4] = (int32_t)((uint32_t)a[ci + 4] + s4);
        a[ci + 5] = (int32_t)((uint32_t)a[ci + 5] + s5);
        a[ci + 6] = (int32_t)((uint32_t)a[ci + 6] + s6);
        a[ci + 7] = (int32_t)((uint32_t)a[ci + 7] + s7);
    }
#endif
    for (; ci + 4 <= c_in; ci += 4) {
        const size_t off = tap + (size_t)ci;
        uint32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (const chan_t *c = ch, *end = ch + n; c != end; ++c) {
            const int8_t *w = c->row + off;
            const int32_t ti = c->t;
#if TS_FAST_DSP
            const uint32_t v = ts_fast_ld32(w);
            const int32_t w02 = (int32_t)__sxtb16(v), w13 = (int32_t)ts_fast_sxtb16_ror8(v);
            s0 = (uint32_t)__smlabb(w02, ti, (int32_t)s0);
            s2 = (uint32_t)__smlatb(w02, ti, (int32_t)s2);
            s1 = (uint32_t)__smlabb(w13, ti, (int32_t)s1);
            s3 = (uint32_t)__smlatb(w13, ti, (int32_t)s3);
#else
            s0 += (uint32_t)(ti * w[0]);
            s1 += (uint32_t)(ti * w[1]);
            s2 += (uint32_t)(ti * w[2]);
            s3 += (uint32_t)(ti * w[3]);
#endif
        }
        a[ci] = (int32_t)((uint32_t)a[ci] + s0);
        a[ci + 1] = (int32_t)((uint32_t)a[ci + 1] + s1);
        a[ci + 2] = (int32_t)((uint32_t)a[ci + 2] + s2);
        a[ci + 3] = (int32_t)((uint32_t)a[ci + 3] + s3);
    }
    for (; ci < c_in; ++ci) {
        uint32_t s = (uint32_t)a[ci];
        for (int32_t i = 0; i < n; ++i) {
            s += (uint32_t)(ch[i].t * (int32_t)ch[i].row[tap + (size_t)ci]);
        }
        a[ci] = (int32_t)s;
    }
}

void ts_conv2d_backward_input_fast(const ts_conv_layer_t *l, const int8_t *g, float s_g,
                                   int32_t *scratch, int8_t *gx, float *s_gx)
{
    const int32_t in_h = l->in.h, in_w = l->in.w, c_in = l->in.c;
    const int32_t out_h = l->out.h, out_w = l->out.w, c_out = l->out.c;
    const int32_t kh = l->kh, kw = l->kw;
    if (c_out > GATHER) {
        ts_conv2d_backward_input(l, g, s_g, scratch, gx, s_gx);
        return;
    }
    const int32_t pad_t = ts_conv_pad(in_h, out_h, kh, l->stride_h);
    const int32_t pad_l = ts_conv_pad(in_w, out_w, kw, l->stride_w);
    const size_t n_in = (size_t)in_h * (size_t)in_w * (size_t)c_in;
    const size_t k = (size_t)kh * (size_t)kw * (size_t)c_in;
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
    if (s_wmax > 0.0f) {
        for (int32_t co = 0; co < c_out; ++co) {
            r[co] = ts_round((l->p.w_scale[co] / s_wmax) * 32768.0f);
        }
        chan_t ch[GATHER];
        for (int32_t oy = 0; oy < out_h; ++oy) {
            const int32_t y0 = oy * l->stride_h - pad_t;
            const int32_t ky0 = y0 < 0 ? -y0 : 0, ky1 = in_h - y0 < kh ? in_h - y0 : kh;
            for (int32_t ox = 0; ox < out_w; ++ox) {
                const int8_t *g_px = &g[((size_t)oy * (size_t)out_w + (size_t)ox) * (size_t)c_out];
                int32_t n = 0;
                for (int32_t co = 0; co < c_out; ++co) {
                    /* the reference's asr_i32: an arithmetic shift (ts_fast.h asserts it) */
                    const int32_t tc = ((int32_t)g_px[co] * r[co] + (1 << (6 + e))) >> (7 + e);
                    if (tc != 0) {
                        ch[n].t = tc;
                        ch[n++].row = &l->p.w[(size_t)co * k];
                    }
                }
                if (n == 0) {
                    continue;
                }
                const int32_t x0 = ox * l->stride_w - pad_l;
                const int32_t kx0 = x0 < 0 ? -x0 : 0, kx1 = in_w - x0 < kw ? in_w - x0 : kw;
                for (int32_t ky = ky0; ky < ky1; ++ky) {
                    for (int32_t kx = kx0; kx < kx1; ++kx) {
                        const size_t tap = ((size_t)ky * (size_t)kw + (size_t)kx) * (size_t)c_in;
                        int32_t *a = &acc[((size_t)(y0 + ky) * (size_t)in_w + (size_t)(x0 + kx)) *
                                          (size_t)c_in];
                        add_tap(a, ch, n, tap, c_in);
                    }
                }
            }
        }
    }

    const uint32_t m = ts_grad_requantize_fast(acc, n_in, gx);
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
