/**
 * @file relu_backward.c
 * @brief ts_relu_backward: activation mask of the output gradient, in place.
 *
 * Layouts: g [n] int8 (output gradient, modified), y [n] int8 (the forward output kept from
 * the forward pass). act_min is ts_fc_act_min() of the layer.
 *
 * An output clamped at act_min had no gradient path (ReLU off, or int8 floor); an output at
 * 127 passes its gradient straight through (docs/int8-training.md, "Backward" step 1).
 */
#include <stddef.h>
#include <stdint.h>

#include "ts_kernels.h"

void ts_relu_backward(int8_t *g, const int8_t *y, size_t n, int32_t act_min)
{
    for (size_t i = 0; i < n; ++i) {
        if ((int32_t)y[i] <= act_min) {
            g[i] = 0;
        }
    }
}
