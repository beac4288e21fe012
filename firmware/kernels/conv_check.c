/**
 * @file conv_check.c
 * @brief ts_conv_check: validates a conv layer once, at set-up (the kernels do not check).
 *
 * Checks what the kernels rely on (docs/int8-conv.md, "Limits"): non-zero dims and strides,
 * out dims as TFLite computes them from the padding, depthwise Cout == Cin, a known activation,
 * the training state matching the filter (ts_params_check), and the sizes for which no int32
 * sum can wrap: KH * KW * Cin <= 65535 products per output (forward) and OH * OW <= 65535
 * positions per weight (weight gradient).
 */
#include <stddef.h>
#include <stdint.h>

#include "ts_kernels.h"

ts_status_t ts_conv_check(const ts_conv_layer_t *l)
{
    if (l == NULL || l->in.h == 0 || l->in.w == 0 || l->in.c == 0 || l->out.c == 0 ||
        l->kh == 0 || l->kw == 0 || l->stride_h == 0 || l->stride_w == 0) {
        return TS_ERR_ARG;
    }
    if (l->padding > TS_PADDING_SAME || l->act > TS_ACT_RELU6 || l->depthwise > 1) {
        return TS_ERR_ARG;
    }
    if (l->out.h != ts_conv_out_size(l->padding, l->in.h, l->kh, l->stride_h) ||
        l->out.w != ts_conv_out_size(l->padding, l->in.w, l->kw, l->stride_w) || l->out.h == 0 ||
        l->out.w == 0) {
        return TS_ERR_ARG;
    }
    if (l->depthwise && l->out.c != l->in.c) {
        return TS_ERR_ARG;
    }
    const uint32_t k_sum = (uint32_t)l->kh * l->kw * (l->depthwise ? 1u : l->in.c);
    if (k_sum > 65535u || (uint32_t)l->out.h * l->out.w > 65535u) {
        return TS_ERR_ARG;
    }
    const uint32_t k_per_channel = (uint32_t)l->kh * l->kw * (l->depthwise ? 1u : l->in.c);
    const uint8_t layout = l->depthwise ? TS_CHANNEL_LAST : TS_CHANNEL_FIRST;
    if (l->p.channels != l->out.c || l->p.per_channel != k_per_channel ||
        l->p.layout != layout) {
        return TS_ERR_ARG;
    }
    return ts_params_check(&l->p);
}
