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
 * - requantizes with ts_fast.h's output stage, set up once per call.
 * A layer with 1-3 input channels takes the few-channel path below instead (forward_pairs).
 * The sums are the reference's, added in another order: int32 addition wraps the same in any
 * order (and never wraps for a layer ts_conv_check accepts).
 *
 * Stack: the two columns (2 * TS_CONV_FAST_MAX_TAPS int16, 768 B) or the few-channel path's
 * rows and filter (1.1 KB), and the output stage's constants (0.8 KB): 2.4 KB at most on a
 * Cortex-M4 (gcc -fstack-usage). A layer with a larger window (KH * KW * Cin >
 * TS_CONV_FAST_MAX_TAPS), more than TS_FAST_CHANNELS_MAX output channels or a multiplier of
 * INT32_MIN runs the reference kernel.
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
        ts_fast_st32(&col[j + 2u], (uint32_t)__ssub16((int16x2_t)ts_fast_sxtb16_ror8(v), zp2));
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
__attribute__((always_inline)) static inline void mac_2x2(const int16_t *ca, const int16_t *cb, const int8_t *w0, const int8_t *w1,
                    uint32_t k, uint32_t k4, int32_t b0, int32_t b1, int32_t s[4])
{
    int32_t a0 = b0, a1 = b1, c0 = b0, c1 = b1;
    uint32_t i = 0;
#if TS_FAST_DSP
    for (; i < k4; i += 4u) {
        const uint32_t xa02 = ts_fast_ld32(&ca[i]), xa13 = ts_fast_ld32(&ca[i + 2u]);
        const uint32_t xb02 = ts_fast_ld32(&cb[i]), xb13 = ts_fast_ld32(&cb[i + 2u]);
        const uint32_t v0 = ts_fast_ld32(&w0[i]);
        const uint32_t w0_02 = (uint32_t)__sxtb16(v0), w0_13 = ts_fast_sxtb16_ror8(v0);
        a0 = __smlad((int16x2_t)w0_02, (int16x2_t)xa02, a0);
        a0 = __smlad((int16x2_t)w0_13, (int16x2_t)xa13, a0);
        c0 = __smlad((int16x2_t)w0_02, (int16x2_t)xb02, c0);
        c0 = __smlad((int16x2_t)w0_13, (int16x2_t)xb13, c0);
        const uint32_t v1 = ts_fast_ld32(&w1[i]);
        const uint32_t w1_02 = (uint32_t)__sxtb16(v1), w1_13 = ts_fast_sxtb16_ror8(v1);
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

/* The four outputs of a 2 x 2 tile: s = {(a, c0), (a, c1), (b, c0), (b, c1)}. */
__attribute__((always_inline)) static inline void out_tile(ts_fast_out_t *o, int32_t c0,
                                                           int32_t c1, const int32_t s[4],
                                                           int8_t *ya, int8_t *yb,
                                                           const int narrow)
{
    ts_fast_chan_t *h0 = &o->ch[c0], *h1 = &o->ch[c1];
    const int32_t lo = o->act_min, hi = o->act_max, zp_y = o->zp_y;
    const int8_t v00 = (int8_t)ts_fast_out(s[0], TS_FAST_CHAN_ARGS(h0, narrow), lo, hi, zp_y, narrow);
    const int8_t v01 = (int8_t)ts_fast_out(s[1], TS_FAST_CHAN_ARGS(h1, narrow), lo, hi, zp_y, narrow);
    const int8_t v10 = (int8_t)ts_fast_out(s[2], TS_FAST_CHAN_ARGS(h0, narrow), lo, hi, zp_y, narrow);
    const int8_t v11 = (int8_t)ts_fast_out(s[3], TS_FAST_CHAN_ARGS(h1, narrow), lo, hi, zp_y, narrow);
    if (o->observe) {
        ts_fast_observe(h0, s[0] < s[2] ? s[0] : s[2], s[0] < s[2] ? s[2] : s[0]);
        ts_fast_observe(h1, s[1] < s[3] ? s[1] : s[3], s[1] < s[3] ? s[3] : s[1]);
    }
    ya[c0] = v00;
    ya[c1] = v01;
    yb[c0] = v10;
    yb[c1] = v11;
}

/* The general path: im2col columns, 2 x 2 tiles. */
__attribute__((always_inline)) static inline void columns(const ts_conv_layer_t *l,
                                                          ts_fast_out_t *o, const int8_t *x,
                                                          int8_t *y, const int narrow)
{
    const uint32_t k = (uint32_t)l->kh * l->kw * l->in.c;
    const uint32_t k4 = k & ~3u;
    const int32_t out_w = l->out.w, c_out = l->out.c;
    const int32_t n_px = (int32_t)l->out.h * out_w;
    const int32_t pad_t = ts_conv_pad(l->in.h, l->out.h, l->kh, l->stride_h);
    const int32_t pad_l = ts_conv_pad(l->in.w, out_w, l->kw, l->stride_w);
    int16_t col[2][TS_CONV_FAST_MAX_TAPS] __attribute__((aligned(4)));
    for (int32_t pa = 0; pa < n_px; pa += 2) {
        /* an odd last pixel is computed twice and stored once */
        const int32_t pb = pa + 1 < n_px ? pa + 1 : pa;
        im2col(l, x, pa / out_w, pa % out_w, pad_t, pad_l, col[0], k4);
        im2col(l, x, pb / out_w, pb % out_w, pad_t, pad_l, col[1], k4);
        int8_t *ya = &y[(size_t)pa * (size_t)c_out];
        int8_t *yb = &y[(size_t)pb * (size_t)c_out];
        for (int32_t c0 = 0; c0 < c_out; c0 += 2) {
            /* an odd last channel is computed twice and stored once */
            const int32_t c1 = c0 + 1 < c_out ? c0 + 1 : c0;
            int32_t s4[4];
            mac_2x2(col[0], col[1], &l->p.w[(size_t)c0 * k], &l->p.w[(size_t)c1 * k], k, k4,
                    l->p.bias[c0], l->p.bias[c1], s4);
            out_tile(o, c0, c1, s4, ya, yb, narrow);
        }
    }
}

__attribute__((noinline)) static void forward_columns(const ts_conv_layer_t *l,
                                                      ts_fast_out_t *o, const int8_t *x,
                                                      int8_t *y)
{
    if (o->narrow) {
        columns(l, o, x, y, 1);
    } else {
        columns(l, o, x, y, 0);
    }
}

/* ---- few input channels (first layers) ---------------------------------------------------- */

/* The window of a 1-3 channel layer is a few bytes per row, too short for columns to pay: the
 * KH input rows an output row reads are widened once into int16 rows x - zp_x with the padding
 * as zeros, and every output pixel reads its window straight from them, two values (one
 * halfword pair) at a time, against the filter widened once per call into matching int16 pairs
 * (a row of odd length gets a zero weight in its last pair). */

/* Stack budgets of this path (int16 values): the widened rows and the widened filter. */
#define ROWS_MAX 320u
#define PAIRS_W_MAX 224u
#define PAIRS_MAX 32u

typedef struct {
    uint32_t row_len;          /* int16 values in one widened row (with a spare zero) */
    uint32_t n_pairs;          /* T: pairs per window */
} pairs_t;

static int pairs_fit(const ts_conv_layer_t *l, pairs_t *pp)
{
    const uint32_t c_in = l->in.c, kh = l->kh, kw = l->kw;
    const int32_t pad_l = ts_conv_pad(l->in.w, l->out.w, kw, l->stride_w);
    int32_t pad_r = ((int32_t)l->out.w - 1) * l->stride_w + (int32_t)kw - l->in.w - pad_l;
    pad_r = pad_r > 0 ? pad_r : 0;
    const uint32_t row_len = ((uint32_t)l->in.w + (uint32_t)pad_l + (uint32_t)pad_r) * c_in + 1u;
    const uint32_t per_row = (kw * c_in + 1u) / 2u;
    const uint32_t t_n = kh * per_row;
    if (c_in > 3u || t_n > PAIRS_MAX || (kh + 1u) * row_len > ROWS_MAX ||
        t_n * 2u * l->out.c > PAIRS_W_MAX) {
        return 0;
    }
    pp->row_len = row_len;
    pp->n_pairs = t_n;
    return 1;
}

/* One output row: for each pixel, its T window pairs are loaded once (into registers when
 * T is a constant the compiler unrolls for), then every channel is T multiply-accumulates of
 * pairs (SMLAD) and its requantization. */
__attribute__((always_inline)) static inline void pairs_row(const ts_conv_layer_t *l,
                                                            ts_fast_out_t *o,
                                                            const uint8_t *rows,
                                                            const uint16_t *off,
                                                            const int16_t *wp, int8_t *y_row,
                                                            const uint32_t t_n,
                                                            const int narrow)
{
    const int32_t out_w = l->out.w, c_out = l->out.c;
    const uint32_t step = 2u * l->stride_w * l->in.c; /* bytes from one pixel's rows to the next */
    const int32_t lo = o->act_min, hi = o->act_max, zp_y = o->zp_y;
    const int observe = o->observe;
    const int32_t *bias = l->p.bias;
    for (int32_t ox = 0; ox < out_w; ++ox) {
        const uint8_t *base = rows + (uint32_t)ox * step;
        uint32_t xv[PAIRS_MAX];
#pragma GCC unroll 8
        for (uint32_t t = 0; t < t_n; ++t) {
            xv[t] = ts_fast_ld32(base + off[t]);
        }
        const int16_t *w = wp;
        int8_t *yp = &y_row[(size_t)ox * (size_t)c_out];
        for (int32_t c = 0; c < c_out; ++c, w += 2u * t_n) {
            int32_t acc = bias[c];
#pragma GCC unroll 8
            for (uint32_t t = 0; t < t_n; ++t) {
#if TS_FAST_DSP
                acc = __smlad((int16x2_t)xv[t], (int16x2_t)ts_fast_ld32(&w[2u * t]), acc);
#else
                /* the pair's low and high halfwords (little-endian: the first value is low) */
                const int32_t x0 = (int32_t)(int16_t)(xv[t] & 0xffffu);
                const int32_t x1 = (int32_t)(int16_t)(xv[t] >> 16);
                acc = (int32_t)((uint32_t)acc + (uint32_t)(x0 * w[2u * t]) +
                                (uint32_t)(x1 * w[2u * t + 1u]));
#endif
            }
            ts_fast_chan_t *h = &o->ch[c];
            const int8_t v =
                (int8_t)ts_fast_out(acc, TS_FAST_CHAN_ARGS(h, narrow), lo, hi, zp_y, narrow);
            if (observe) {
                ts_fast_observe(h, acc, acc);
            }
            yp[c] = v;
        }
    }
}

__attribute__((noinline)) static void forward_pairs(const ts_conv_layer_t *l, const pairs_t *pp,
                                                    ts_fast_out_t *o, const int8_t *x,
                                                    int8_t *y)
{
    const int32_t in_h = l->in.h, in_w = l->in.w, c_in = l->in.c;
    const int32_t out_h = l->out.h, out_w = l->out.w, c_out = l->out.c;
    const int32_t kh = l->kh, kw = l->kw;
    const int32_t pad_t = ts_conv_pad(in_h, out_h, kh, l->stride_h);
    const int32_t pad_l = ts_conv_pad(in_w, out_w, kw, l->stride_w);
    const int32_t zp_x = l->p.in_q.zero_point;
    const uint32_t t_n = pp->n_pairs, row_len = pp->row_len;
    const uint32_t per_row = t_n / (uint32_t)kh, seg = (uint32_t)(kw * c_in);
    /* the filter as int16 pairs, channel by channel: [Cout][T][2] */
    int16_t wp[PAIRS_W_MAX] __attribute__((aligned(4)));
    for (int32_t c = 0; c < c_out; ++c) {
        for (int32_t ky = 0; ky < kh; ++ky) {
            const int8_t *src = &l->p.w[((size_t)c * (size_t)kh + (size_t)ky) * seg];
            int16_t *dst = &wp[((uint32_t)c * t_n + (uint32_t)ky * per_row) * 2u];
            for (uint32_t i = 0; i < 2u * per_row; ++i) {
                dst[i] = (int16_t)(i < seg ? src[i] : 0);
            }
        }
    }

    /* KH + 1 widened rows: input row iy lives in slot iy % KH while output rows need it (each
     * is widened once), slot KH stays zero for the rows above and below the image; the
     * padding columns are zero from the start and never written */
    int16_t rows[ROWS_MAX] __attribute__((aligned(4)));
    int32_t held[PAIRS_MAX]; /* the input row each slot holds, -1: none */
    uint16_t off[PAIRS_MAX];
    for (uint32_t j = 0; j < ((uint32_t)kh + 1u) * row_len; ++j) {
        rows[j] = 0;
    }
    for (int32_t ky = 0; ky < kh; ++ky) {
        held[ky] = -1;
    }
    const int32_t lead = pad_l * c_in, body = in_w * c_in;
    for (int32_t oy = 0; oy < out_h; ++oy) {
        for (int32_t ky = 0; ky < kh; ++ky) {
            const int32_t iy = oy * l->stride_h - pad_t + ky;
            int32_t slot = kh;
            if (iy >= 0 && iy < in_h) {
                slot = iy % kh;
                if (held[slot] != iy) {
                    int16_t *r = &rows[(uint32_t)slot * row_len + (uint32_t)lead];
                    const int8_t *src = &x[(size_t)iy * (size_t)body];
                    for (int32_t j = 0; j < body; ++j) {
                        r[j] = (int16_t)(src[j] - zp_x);
                    }
                    held[slot] = iy;
                }
            }
            for (uint32_t q = 0; q < per_row; ++q) {
                off[(uint32_t)ky * per_row + q] = (uint16_t)(2u * ((uint32_t)slot * row_len + 2u * q));
            }
        }
        int8_t *y_row = &y[(size_t)oy * (size_t)out_w * (size_t)c_out];
        const uint8_t *rb = (const uint8_t *)rows;
        /* unrolled for the most common first layer: 3x3 of one channel (T 6) */
        if (o->narrow && t_n == 6u) {
            pairs_row(l, o, rb, off, wp, y_row, 6u, 1);
        } else {
            pairs_row(l, o, rb, off, wp, y_row, t_n, o->narrow);
        }
    }
}

void ts_conv2d_forward_fast(const ts_conv_layer_t *l, const int8_t *x, int8_t *y, float *bmin,
                            float *bmax)
{
    const uint32_t k = (uint32_t)l->kh * l->kw * l->in.c;
    ts_fast_out_t o;
    pairs_t pp;
    if (k > TS_CONV_FAST_MAX_TAPS || !ts_fast_out_setup(&l->p, l->act, k, bmin != NULL, &o)) {
        ts_conv2d_forward(l, x, y, bmin, bmax);
        return;
    }
    if (pairs_fit(l, &pp)) {
        forward_pairs(l, &pp, &o, x, y);
    } else {
        forward_columns(l, &o, x, y);
    }
    ts_fast_out_finish(&l->p, l->act, &o, 0u, l->out.c, bmin, bmax);
}
