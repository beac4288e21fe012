/**
 * @file conv2d_fast.c
 * @brief ts_conv2d_forward_fast: ts_conv2d_forward (conv2d.c) bit for bit, in fewer
 *        instructions.
 *
 * The reference walks output, channel, tap and input channel, and pays the window's bounds
 * checks and the requantization set-up for every output. This one:
 * - copies each output pixel's window once into a column of int16 values x - zp_x (padded taps
 *   0, which is what the reference's skipped taps add), in the filter's own order
 *   [KH][KW][Cin], so that a channel's sum is the dot product of its filter row and the column;
 * - computes two output pixels by two output channels at a time (each weight and column load
 *   feeds two products);
 * - on a core with the DSP extension (TS_FAST_DSP) keeps the column's groups of four as the
 *   lane pairs SXTB16 makes of four filter bytes ((x0, x2), (x1, x3)), so four taps cost one
 *   filter load, two SXTB16 and two SMLAD per output;
 * - requantizes with the per-channel shifts and the activation range computed once per call.
 * The sums are the reference's, added in another order: int32 addition wraps the same in any
 * order (and never wraps for a layer ts_conv_check accepts).
 *
 * The two columns live on the stack (2 * TS_CONV_FAST_MAX_TAPS int16, 1 KB): a layer with a
 * larger window (KH * KW * Cin > TS_CONV_FAST_MAX_TAPS) runs the reference.
 */
#include <stddef.h>
#include <stdint.h>

#include "ts_fast.h"
#include "ts_kernels.h"

/* Column slot of window element j: the DSP path swaps the middle two of each group of four
 * (below k4, the whole groups); the tail and the portable path keep the natural order. */
static inline uint32_t col_slot(uint32_t j, uint32_t k4)
{
#if TS_FAST_DSP
    return j < k4 ? (j & ~3u) | ((j & 1u) << 1) | ((j >> 1) & 1u) : j;
#else
    (void)k4;
    return j;
#endif
}

/* n values x - zp from src into the column from element j. */
static void col_put(int16_t *col, uint32_t j, const int8_t *src, uint32_t n, int32_t zp,
                    uint32_t k4)
{
#if TS_FAST_DSP
    /* whole aligned groups of four: one word, two SXTB16, two SSUB16, two stores */
    while (n > 0u && (j & 3u) != 0u) {
        col[col_slot(j, k4)] = (int16_t)(*src++ - zp);
        ++j;
        --n;
    }
    const uint32_t zp2 = ((uint32_t)zp & 0xffffu) | ((uint32_t)zp << 16);
    while (n >= 4u && j + 4u <= k4) {
        const uint32_t v = ts_fast_ld32(src);
        ts_fast_st32(&col[j], (uint32_t)__ssub16(__sxtb16(v), zp2));
        ts_fast_st32(&col[j + 2u], (uint32_t)__ssub16(__sxtb16(ts_fast_ror(v, 8)), zp2));
        src += 4;
        j += 4u;
        n -= 4u;
    }
#endif
    while (n > 0u) {
        col[col_slot(j, k4)] = (int16_t)(*src++ - zp);
        ++j;
        --n;
    }
}

static void col_zero(int16_t *col, uint32_t j, uint32_t n, uint32_t k4)
{
    for (uint32_t i = 0; i < n; ++i) {
        col[col_slot(j + i, k4)] = 0;
    }
}

/* The window of output pixel (oy, ox) into col: K = KH * KW * Cin elements. */
static void im2col(const ts_conv_layer_t *l, const int8_t *x, int32_t oy, int32_t ox,
                   int32_t pad_t, int32_t pad_l, int16_t *col, uint32_t k4)
{
    const int32_t in_h = l->in.h, in_w = l->in.w, c_in = l->in.c;
    const int32_t kh = l->kh, kw = l->kw;
    const int32_t zp = l->p.in_q.zero_point;
    const int32_t y0 = oy * l->stride_h - pad_t;
    const int32_t x0 = ox * l->stride_w - pad_l;
    const uint32_t row = (uint32_t)(kw * c_in);
    uint32_t j = 0;
    for (int32_t ky = 0; ky < kh; ++ky, j += row) {
        const int32_t iy = y0 + ky;
        if (iy < 0 || iy >= in_h) {
            col_zero(col, j, row, k4);
            continue;
        }
        const int8_t *x_row = &x[((size_t)iy * (size_t)in_w) * (size_t)c_in];
        if (x0 >= 0 && x0 + kw <= in_w) { /* the whole window row is in the image */
            col_put(col, j, &x_row[(size_t)x0 * (size_t)c_in], row, zp, k4);
            continue;
        }
        for (int32_t kx = 0; kx < kw; ++kx) {
            const int32_t ix = x0 + kx;
            const uint32_t jj = j + (uint32_t)(kx * c_in);
            if (ix < 0 || ix >= in_w) {
                col_zero(col, jj, (uint32_t)c_in, k4);
            } else {
                col_put(col, jj, &x_row[(size_t)ix * (size_t)c_in], (uint32_t)c_in, zp, k4);
            }
        }
    }
}

/* sums[2][2]: (pixel a, pixel b) x (filter rows w0, w1) over the K column elements; the sums
 * start at the two biases. */
static void mac_2x2(const int16_t *ca, const int16_t *cb, const int8_t *w0, const int8_t *w1,
                    uint32_t k, uint32_t k4, int32_t b0, int32_t b1, int32_t s[4])
{
    int32_t a0 = b0, a1 = b1, c0 = b0, c1 = b1;
    uint32_t i = 0;
#if TS_FAST_DSP
    for (; i < k4; i += 4u) {
        const uint32_t xa02 = ts_fast_ld32(&ca[i]), xa13 = ts_fast_ld32(&ca[i + 2u]);
        const uint32_t xb02 = ts_fast_ld32(&cb[i]), xb13 = ts_fast_ld32(&cb[i + 2u]);
        const uint32_t v0 = ts_fast_ld32(&w0[i]);
        const uint32_t w0_02 = (uint32_t)__sxtb16(v0), w0_13 = (uint32_t)__sxtb16(ts_fast_ror(v0, 8));
        a0 = __smlad((int16x2_t)w0_02, (int16x2_t)xa02, a0);
        a0 = __smlad((int16x2_t)w0_13, (int16x2_t)xa13, a0);
        c0 = __smlad((int16x2_t)w0_02, (int16x2_t)xb02, c0);
        c0 = __smlad((int16x2_t)w0_13, (int16x2_t)xb13, c0);
        const uint32_t v1 = ts_fast_ld32(&w1[i]);
        const uint32_t w1_02 = (uint32_t)__sxtb16(v1), w1_13 = (uint32_t)__sxtb16(ts_fast_ror(v1, 8));
        a1 = __smlad((int16x2_t)w1_02, (int16x2_t)xa02, a1);
        a1 = __smlad((int16x2_t)w1_13, (int16x2_t)xa13, a1);
        c1 = __smlad((int16x2_t)w1_02, (int16x2_t)xb02, c1);
        c1 = __smlad((int16x2_t)w1_13, (int16x2_t)xb13, c1);
    }
#else
    (void)k4;
    uint32_t u_a0 = (uint32_t)a0, u_a1 = (uint32_t)a1, u_c0 = (uint32_t)c0, u_c1 = (uint32_t)c1;
    for (; i + 2u <= k; i += 2u) {
        const int32_t xa0 = ca[i], xa1 = ca[i + 1u], xb0 = cb[i], xb1 = cb[i + 1u];
        const int32_t w00 = w0[i], w01 = w0[i + 1u], w10 = w1[i], w11 = w1[i + 1u];
        u_a0 += (uint32_t)(xa0 * w00) + (uint32_t)(xa1 * w01);
        u_c0 += (uint32_t)(xb0 * w00) + (uint32_t)(xb1 * w01);
        u_a1 += (uint32_t)(xa0 * w10) + (uint32_t)(xa1 * w11);
        u_c1 += (uint32_t)(xb0 * w10) + (uint32_t)(xb1 * w11);
    }
    a0 = (int32_t)u_a0;
    a1 = (int32_t)u_a1;
    c0 = (int32_t)u_c0;
    c1 = (int32_t)u_c1;
#endif
    for (; i < k; ++i) {
        const int32_t xa = ca[i], xb = cb[i], v0 = w0[i], v1 = w1[i];
        a0 = (int32_t)((uint32_t)a0 + (uint32_t)(xa * v0));
        a1 = (int32_t)((uint32_t)a1 + (uint32_t)(xa * v1));
        c0 = (int32_t)((uint32_t)c0 + (uint32_t)(xb * v0));
        c1 = (int32_t)((uint32_t)c1 + (uint32_t)(xb * v1));
    }
    s[0] = a0;
    s[1] = a1;
    s[2] = c0;
    s[3] = c1;
}

/* The per-call constants of the output stage. */
typedef struct {
    const ts_conv_layer_t *l;
    int32_t zp_y, act_min, act_max;
    float s_x;
    float *lo, *hi; /* the observed range, or NULL */
} out_stage_t;

static inline void emit(const out_stage_t *o, int32_t co, int32_t acc, int8_t *y)
{
    const ts_params_t *p = &o->l->p;
    if (o->lo != NULL) {
        float v = (float)acc * (o->s_x * p->w_scale[co]);
        if (o->l->act != TS_ACT_NONE) {
            v = v > 0.0f ? v : 0.0f;
        }
        if (o->l->act == TS_ACT_RELU6) {
            v = v < 6.0f ? v : 6.0f;
        }
        *o->lo = v < *o->lo ? v : *o->lo;
        *o->hi = v > *o->hi ? v : *o->hi;
    }
    int32_t left, right;
    ts_fast_shifts(p->out_shift[co], &left, &right);
    /* the requantized value is an int32; adding zp_y in int64 as the reference does */
    int64_t out = (int64_t)ts_fast_requant(acc, p->out_mult[co], left, right) + o->zp_y;
    out = out < o->act_min ? o->act_min : out;
    out = out > o->act_max ? o->act_max : out;
    *y = (int8_t)out;
}

void ts_conv2d_forward_fast(const ts_conv_layer_t *l, const int8_t *x, int8_t *y, float *bmin,
                            float *bmax)
{
    const uint32_t k = (uint32_t)l->kh * l->kw * l->in.c;
    if (k > TS_CONV_FAST_MAX_TAPS) {
        ts_conv2d_forward(l, x, y, bmin, bmax);
        return;
    }
    const uint32_t k4 = k & ~3u;
    const int32_t out_w = l->out.w, c_out = l->out.c;
    const int32_t n_px = (int32_t)l->out.h * out_w;
    const int32_t pad_t = ts_conv_pad(l->in.h, l->out.h, l->kh, l->stride_h);
    const int32_t pad_l = ts_conv_pad(l->in.w, out_w, l->kw, l->stride_w);
    float lo = bmin != NULL ? *bmin : 0.0f;
    float hi = bmax != NULL ? *bmax : 0.0f;
    out_stage_t o = {l, l->p.out_q.zero_point, 0, 0, l->p.in_q.scale,
                     bmin != NULL ? &lo : NULL, &hi};
    ts_act_range(l->act, l->p.out_q, &o.act_min, &o.act_max);

    int16_t col[2][TS_CONV_FAST_MAX_TAPS] __attribute__((aligned(4)));
    for (int32_t pa = 0; pa < n_px; pa += 2) {
        /* an odd last pixel is computed twice and stored once */
        const int32_t pb = pa + 1 < n_px ? pa + 1 : pa;
        im2col(l, x, pa / out_w, pa % out_w, pad_t, pad_l, col[0], k4);
        im2col(l, x, pb / out_w, pb % out_w, pad_t, pad_l, col[1], k4);
        int8_t *ya = &y[(size_t)pa * (size_t)c_out];
        int8_t *yb = &y[(size_t)pb * (size_t)c_out];
        for (int32_t c0 = 0; c0 < c_out; c0 += 2) {
            const int32_t c1 = c0 + 1 < c_out ? c0 + 1 : c0;
            int32_t s[4];
            mac_2x2(col[0], col[1], &l->p.w[(size_t)c0 * k], &l->p.w[(size_t)c1 * k], k, k4,
                    l->p.bias[c0], l->p.bias[c1], s);
            emit(&o, c0, s[0], &ya[c0]);
            if (c1 != c0) {
                emit(&o, c1, s[1], &ya[c1]);
            }
            if (pb != pa) {
                emit(&o, c0, s[2], &yb[c0]);
                if (c1 != c0) {
                    emit(&o, c1, s[3], &yb[c1]);
                }
            }
        }
    }
    if (bmin != NULL) {
        *bmin = lo;
        *bmax = hi;
    }
}
