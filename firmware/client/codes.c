/*
 * Outputs kept for backward in a few bits (ts_model_op_t.rebuild; codegen/memory_plan.py
 * code_kind). Backward reads a trainable op's output y for two things only: its activation
 * mask (y above the floor max(-128, zp)) and, when a max pool follows, the argmax of every
 * window. So instead of y for the whole minibatch the board keeps, per sample:
 *
 * - TS_REBUILD_MASK: the mask, 1 bit per value (bit k % 8 of byte k / 8);
 * - TS_REBUILD_ARGMAX: per pooled value (windows that do not overlap, at most 8 values) the
 *   window's argmax, first maximum in row-major order as ts_max_pool2d_backward takes it, as
 *   (row - window row) * kw + (column - window column) in bits 0-2, and in bit 3 whether the
 *   mask passes it; two values a byte, the first in the low nibble.
 *
 * Before the sample's backward, ts_codes_rebuild writes a stand-in for y: -128 everywhere
 * except one value above the floor at each passing argmax. The pool routes every window's
 * gradient to the same position as from y, and the mask keeps or drops it as y's would: the
 * backward is the same, bit for bit (tests/e2e/test_conv_training.py). Nothing here is in the
 * golden model: it computes the same numbers from y itself.
 */
#include "client_internal.h"

#if TS_MODEL_CODE_BYTES > 0

static uint32_t next_op(uint32_t i)
{
    uint32_t j = i + 1u;
    while (j < TS_MODEL_N_OPS && !ts_op_defs[ts_model_ops[j].kind].forward) {
        ++j; /* a reshape: the output is the input's bytes */
    }
    return j;
}

static uint32_t dims_bytes(ts_dims_t d)
{
    return (uint32_t)d.h * (uint32_t)d.w * (uint32_t)d.c;
}

static uint32_t code_bytes(uint32_t i)
{
    const ts_model_op_t *op = &ts_model_ops[i];
    if (op->rebuild == TS_REBUILD_MASK) {
        return (dims_bytes(op->out) + 7u) / 8u;
    }
    if (op->rebuild == TS_REBUILD_ARGMAX) {
        return (dims_bytes(ts_model_ops[next_op(i)].out) + 1u) / 2u;
    }
    return 0u;
}

/* Op i's codes for minibatch position pos: ts_code_buf holds the coded ops in order, each
 * [MAX_BATCH][code bytes]. */
static uint8_t *codes_of(uint32_t i, uint32_t pos)
{
    uint32_t offset = 0;
    for (uint32_t k = 0; k < i; ++k) {
        offset += TS_MODEL_MAX_BATCH * code_bytes(k);
    }
    return &ts_code_buf[offset + pos * code_bytes(i)];
}

/* The activation mask's floor, or -129 for an op without one (everything passes). */
static int32_t mask_floor(uint32_t i)
{
    const ts_model_op_t *op = &ts_model_ops[i];
    const ts_op_def_t *def = &ts_op_defs[op->kind];
    const uint8_t act = def->act ? def->act(op) : (uint8_t)TS_ACT_NONE;
    if (act == TS_ACT_NONE) {
        return -129;
    }
    const int32_t zp = ts_op_params(i)->out_q.zero_point;
    return zp > -128 ? zp : -128; /* codegen codes no RELU6: no cap */
}

void ts_codes_record(uint32_t i, uint32_t pos, const int8_t *y)
{
    const ts_model_op_t *op = &ts_model_ops[i];
    uint8_t *code = codes_of(i, pos);
    const int32_t floor_q = mask_floor(i);
    const uint32_t n = code_bytes(i);
    for (uint32_t b = 0; b < n; ++b) {
        code[b] = 0u;
    }
    if (op->rebuild == TS_REBUILD_MASK) {
        const uint32_t n_out = dims_bytes(op->out);
        for (uint32_t k = 0; k < n_out; ++k) {
            if ((int32_t)y[k] > floor_q) {
                code[k / 8u] = (uint8_t)(code[k / 8u] | (1u << (k % 8u)));
            }
        }
        return;
    }
    const ts_pool_params_t *p = ts_model_ops[next_op(i)].layer.pool;
    const int32_t in_h = p->in.h, in_w = p->in.w, c_n = p->in.c;
    const int32_t out_h = p->out.h, out_w = p->out.w;
    const int32_t pad_t = ts_conv_pad(in_h, out_h, p->kh, p->stride_h);
    const int32_t pad_l = ts_conv_pad(in_w, out_w, p->kw, p->stride_w);
    uint32_t k = 0; /* pooled value, [OH][OW][C] order */
    for (int32_t oy = 0; oy < out_h; ++oy) {
        const int32_t y0 = oy * p->stride_h - pad_t;
        const int32_t ya = y0 > 0 ? y0 : 0;
        const int32_t yb = y0 + p->kh < in_h ? y0 + p->kh : in_h;
        for (int32_t ox = 0; ox < out_w; ++ox) {
            const int32_t x0 = ox * p->stride_w - pad_l;
            const int32_t xa = x0 > 0 ? x0 : 0;
            const int32_t xb = x0 + p->kw < in_w ? x0 + p->kw : in_w;
            for (int32_t c = 0; c < c_n; ++c, ++k) {
                int32_t best_y = ya, best_x = xa;
                int8_t best = y[((size_t)ya * (size_t)in_w + (size_t)xa) * (size_t)c_n + (size_t)c];
                for (int32_t iy = ya; iy < yb; ++iy) {
                    for (int32_t ix = xa; ix < xb; ++ix) {
                        const int8_t v =
                            y[((size_t)iy * (size_t)in_w + (size_t)ix) * (size_t)c_n + (size_t)c];
                        if (v > best) { /* the first maximum: only a larger value moves it */
                            best = v;
                            best_y = iy;
                            best_x = ix;
                        }
                    }
                }
                const uint32_t nib = (uint32_t)((best_y - y0) * p->kw + (best_x - x0)) |
                                     ((int32_t)best > floor_q ? 8u : 0u);
                code[k / 2u] = (uint8_t)(code[k / 2u] | (nib << (4u * (k % 2u))));
            }
        }
    }
}

void ts_codes_rebuild(uint32_t i, uint32_t pos, int8_t *y)
{
    const ts_model_op_t *op = &ts_model_ops[i];
    const uint8_t *code = codes_of(i, pos);
    const int32_t floor_q = mask_floor(i);
    /* A value the mask passes (one above its floor; an unmasked op: -127 over -128), and one
     * it drops (-128 is at or below every floor). */
    const int8_t pass = (int8_t)(floor_q < -128 ? -127 : floor_q + 1);
    const uint32_t n_out = dims_bytes(op->out);
    if (op->rebuild == TS_REBUILD_MASK) {
        for (uint32_t k = 0; k < n_out; ++k) {
            y[k] = ((code[k / 8u] >> (k % 8u)) & 1u) ? pass : (int8_t)-128;
        }
        return;
    }
    for (uint32_t k = 0; k < n_out; ++k) {
        y[k] = -128;
    }
    const ts_pool_params_t *p = ts_model_ops[next_op(i)].layer.pool;
    const int32_t in_w = p->in.w, c_n = p->in.c;
    const int32_t out_h = p->out.h, out_w = p->out.w;
    const int32_t pad_t = ts_conv_pad(p->in.h, out_h, p->kh, p->stride_h);
    const int32_t pad_l = ts_conv_pad(in_w, out_w, p->kw, p->stride_w);
    uint32_t k = 0;
    for (int32_t oy = 0; oy < out_h; ++oy) {
        for (int32_t ox = 0; ox < out_w; ++ox) {
            for (int32_t c = 0; c < c_n; ++c, ++k) {
                const uint32_t nib = (code[k / 2u] >> (4u * (k % 2u))) & 0x0Fu;
                if (!(nib & 8u)) {
                    continue; /* the mask drops it: all -128, the pool routes it to be dropped */
                }
                const int32_t iy = oy * p->stride_h - pad_t + (int32_t)(nib & 7u) / p->kw;
                const int32_t ix = ox * p->stride_w - pad_l + (int32_t)(nib & 7u) % p->kw;
                y[((size_t)iy * (size_t)in_w + (size_t)ix) * (size_t)c_n + (size_t)c] = pass;
            }
        }
    }
}

#endif
