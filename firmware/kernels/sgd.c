/**
 * @file sgd.c
 * @brief ts_sgd_step_fc: one SGD step on the layer's float32 master copy.
 *
 * Layouts: master_w, grad_w [C][K] float32 row-major; master_b, grad_b [C] float32.
 *
 * The host's loss is the mean over the minibatch, so the summed per-sample gradients are
 * already the minibatch gradient: no division by B here (docs/int8-training.md, "Optimizer
 * step"). The gradient buffers are zeroed for the next minibatch. Call ts_range_update and
 * ts_fc_requantize afterwards to refresh the int8 tensors.
 */
#include <stddef.h>

#include "ts_kernels.h"

void ts_sgd_step_fc(ts_fc_layer_t *l, float lr)
{
    const size_t n_w = (size_t)l->out_features * (size_t)l->in_features;
    const size_t c_n = l->out_features;

    for (size_t i = 0; i < n_w; ++i) {
        l->master_w[i] = l->master_w[i] - lr * l->grad_w[i];
        l->grad_w[i] = 0.0f;
    }
    for (size_t c = 0; c < c_n; ++c) {
        l->master_b[c] = l->master_b[c] - lr * l->grad_b[c];
        l->grad_b[c] = 0.0f;
    }
}
