/**
 * @file sgd.c
 * @brief ts_sgd_step: one SGD step on a trainable op's float32 master copy (any op, any layout).
 *
 * Layouts: master_w, grad_w [C * K] float32 in the op's layout (the update is element-wise, so
 * the layout does not matter); master_b, grad_b [C] float32.
 *
 * The host's loss is the mean over the minibatch, so the summed per-sample gradients are
 * already the minibatch gradient: no division by B here (docs/int8-training.md, "Optimizer
 * step"). The gradient sums are zeroed for the next minibatch. Call ts_range_update and
 * ts_requantize afterwards to refresh the int8 tensors.
 */
#include <stddef.h>

#include "ts_kernels.h"

void ts_sgd_step(ts_params_t *p, float lr)
{
    const size_t n_w = ts_params_weights(p);
    const size_t c_n = p->channels;

    for (size_t i = 0; i < n_w; ++i) {
        p->master_w[i] = p->master_w[i] - lr * p->grad_w[i];
        p->grad_w[i] = 0.0f;
    }
    for (size_t c = 0; c < c_n; ++c) {
        p->master_b[c] = p->master_b[c] - lr * p->grad_b[c];
        p->grad_b[c] = 0.0f;
    }
}
