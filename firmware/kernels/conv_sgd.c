/**
 * @file conv_sgd.c
 * @brief ts_conv_sgd_step: one SGD step on a conv layer's float32 master copy.
 *
 * Layouts: master_w, grad_w [Cout][KH][KW][Cin] (conv) or [1][KH][KW][C] (depthwise) float32;
 * master_b, grad_b [C] float32.
 *
 * The same update as ts_sgd_step_fc (docs/int8-training.md, "Optimizer step"): the host's mean
 * loss already carries 1/B, so no division here; the gradient buffers are zeroed for the next
 * minibatch. Call ts_conv_range_update and ts_conv_requantize afterwards.
 */
#include <stddef.h>

#include "ts_conv.h"

void ts_conv_sgd_step(ts_conv_layer_t *l, float lr)
{
    const size_t c_n = l->out.c;
    const size_t per_tap = l->depthwise ? (size_t)l->out.c : (size_t)l->out.c * (size_t)l->in.c;
    const size_t n_w = per_tap * (size_t)l->kh * (size_t)l->kw;

    for (size_t i = 0; i < n_w; ++i) {
        l->master_w[i] = l->master_w[i] - lr * l->grad_w[i];
        l->grad_w[i] = 0.0f;
    }
    for (size_t c = 0; c < c_n; ++c) {
        l->master_b[c] = l->master_b[c] - lr * l->grad_b[c];
        l->grad_b[c] = 0.0f;
    }
}
