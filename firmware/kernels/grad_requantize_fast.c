/**
 * @file grad_requantize_fast.c
 * @brief ts_grad_requantize_fast: ts_grad_requantize (grad_requantize.c) bit for bit, without
 *        a 64-bit division per element.
 *
 * Each element is q = floor((|v| * 127 + floor(m / 2)) / m) with 0 <= q <= 127, m the largest
 * |v|. The numerator n has up to 39 bits, but m is the same for the whole call: n and m are
 * both shifted right by the same s (the least with m >> s below 2^24; 0 for a small m, where
 * n < 2^31 and the quotient is exact), the 32-bit quotient of those is within one of q (their
 * ratio differs from n / m by less than 2^-16 when q <= 127), and one exact 64-bit product on
 * each side settles it. Every element takes nearly the same steps whatever m is, so the kernel's
 * instruction count depends on the sizes only (the cost model's premise).
 */
#include <stddef.h>
#include <stdint.h>

#include "ts_kernels.h"

uint32_t ts_grad_requantize_fast(const int32_t *acc, size_t n, int8_t *gx)
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
    const uint32_t half = m / 2u;
    uint32_t s = 0;
    while ((m >> s) >= (1u << 24)) {
        ++s;
    }
    const uint32_t m_s = m >> s;
    for (size_t i = 0; i < n; ++i) {
        const int32_t v = acc[i];
        const uint32_t a = v < 0 ? 0u - (uint32_t)v : (uint32_t)v;
        const uint64_t num = (uint64_t)a * 127u + half;
        uint32_t q = (uint32_t)(num >> s) / m_s;
        q = q > 127u ? 127u : q;
        if ((uint64_t)q * m > num) {
            --q;
        } else if ((uint64_t)(q + 1u) * m <= num) {
            ++q;
        }
        gx[i] = (int8_t)(v < 0 ? -(int32_t)q : (int32_t)q);
    }
    return m;
}
