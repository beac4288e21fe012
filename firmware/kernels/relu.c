/**
 * @file relu.c
 * @brief ts_relu_forward: standalone int8 ReLU.
 *
 * Layouts: x [n] int8, y [n] int8 (may alias x). A real 0 is the integer zero_point, so ReLU
 * is max(x, zero_point) with no requantization.
 */
#include <stddef.h>
#include <stdint.h>

#include "ts_kernels.h"

void ts_relu_forward(const int8_t *x, int8_t *y, size_t n, int8_t zero_point)
{
    for (size_t i = 0; i < n; ++i) {
        y[i] = x[i] > zero_point ? x[i] : zero_point;
    }
}
