/**
 * @file pool_check.c
 * @brief ts_pool_check: validates pooling parameters once, at set-up.
 *
 * Non-zero dims, window and strides; out.c == in.c; out dims as TFLite computes them from the
 * padding; at most 511 windows over one input (ceil(KH/sh) * ceil(KW/sw)), so the average
 * pool's backward sums (terms up to 2^22) stay inside int32 (docs/int8-conv.md, "Limits").
 */
#include <stddef.h>
#include <stdint.h>

#include "ts_kernels.h"

ts_status_t ts_pool_check(const ts_pool_params_t *p)
{
    if (p == NULL || p->in.h == 0 || p->in.w == 0 || p->in.c == 0 || p->kh == 0 || p->kw == 0 ||
        p->stride_h == 0 || p->stride_w == 0 || p->padding > TS_PADDING_SAME) {
        return TS_ERR_ARG;
    }
    if (p->out.c != p->in.c || p->out.h == 0 || p->out.w == 0 ||
        p->out.h != ts_conv_out_size(p->padding, p->in.h, p->kh, p->stride_h) ||
        p->out.w != ts_conv_out_size(p->padding, p->in.w, p->kw, p->stride_w)) {
        return TS_ERR_ARG;
    }
    const uint32_t ny = ((uint32_t)p->kh + p->stride_h - 1u) / p->stride_h;
    const uint32_t nx = ((uint32_t)p->kw + p->stride_w - 1u) / p->stride_w;
    if (ny * nx > 511u) {
        return TS_ERR_ARG;
    }
    return TS_OK;
}
