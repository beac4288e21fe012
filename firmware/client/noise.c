/* Noise on the smashed data before it leaves the board (core/golden/noise.py has the rule and
 * the golden model): q' = clamp(q + table[hash(key, step, position, element) >> (32 - bits)]).
 * The table and the key come from the export (model_data.c); integer arithmetic only. */
#include "client_internal.h"

#if TS_MODEL_NOISE

/* A 32-bit integer finalizer (xorshift-multiply): every input bit reaches every output bit. */
static uint32_t mix32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

void ts_noise_apply(int8_t *dst, const int8_t *src, uint32_t n, uint32_t step, uint32_t position)
{
    const uint32_t h = mix32(mix32(ts_noise_key ^ step) ^ position);
    for (uint32_t k = 0; k < n; ++k) {
        const uint32_t r = mix32(h ^ k) >> (32u - TS_MODEL_NOISE_TABLE_BITS);
        const int32_t v = (int32_t)src[k] + ts_noise_table[r];
        dst[k] = (int8_t)(v < -128 ? -128 : (v > 127 ? 127 : v));
    }
}

#endif
