/**
 * @file grad_requantize.c
 * @brief ts_grad_requantize: an int32 gradient to int8 with one max-abs scale.
 *
 * Layouts: acc [n] int32, gx [n] int8 in [-127, 127].
 *
 * m = max |acc| (as uint32: |INT32_MIN| fits), gx = sign(acc) * ((|acc| * 127 + m / 2) / m)
 * in int64 with an exact integer division; gx = 0 when m = 0. The caller's gradient scale is
 * multiplied by (float)m / 127.0f (docs/int8-conv.md, "Gradient re-quantization"), as
 * ts_fully_connected_backward_input does inline.
 */
#include <stddef.h>
#include <stdint.h>

#include "ts_kernels.h"

uint32_t ts_grad_requantize(const int32_t *acc, size_t n, int8_t *gx)
{
    uint32_t m = 0;
    for (size_t i = 0; i < n; ++i) {
        const uint32_t a = acc[i] < 0 ? 0u - (uint32_t)acc[i] : (uint32_t)acc[i];
        m = a > m ? a : m;
    }
    if (m == 0) {
        for (size_t i = 0; i < n; ++i) {
            gx[i] = 0;
        }
        return 0;
    }
    const int64_t mm = (int64_t)m;
    for (size_t i = 0; i < n; ++i) {
        const int64_t v = acc[i];
        const int64_t a = v < 0 ? -v : v;
        /* Rounds |v| * 127 / m to nearest; <= 127 because |v| <= m. */
        const int64_t q = (a * 127 + mm / 2) / mm;
        gx[i] = (int8_t)(v < 0 ? -q : q);
    }
    return m;
}
