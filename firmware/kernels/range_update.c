/**
 * @file range_update.c
 * @brief ts_range_update: the running (EMA 0.99) range of a trainable op's output and the
 *        output quantization that follows from it.
 *
 * docs/int8-training.md, "Activation range": a scale frozen at export saturates as the client
 * learns; an EMA of the batch range follows it and keeps batch-1 inference identical to
 * training. The range always contains 0 so that the zero point represents real 0 exactly.
 * The multipliers are not touched: ts_requantize derives them from the new out_q.
 */
#include <stdint.h>

#include "ts_kernels.h"

void ts_range_update(ts_params_t *p, float bmin, float bmax)
{
    /* A batch that observed nothing (bmin still +inf, bmax -inf) carries no information;
     * folding the infinities in would destroy the running range. */
    if (!(bmin <= bmax)) {
        return;
    }
    float rmin = p->range_min * 0.99f + bmin * 0.01f;
    float rmax = p->range_max * 0.99f + bmax * 0.01f;
    if (rmin > 0.0f) {
        rmin = 0.0f;
    }
    if (rmax < 0.0f) {
        rmax = 0.0f;
    }
    if (rmax - rmin < 1e-6f) {
        rmax = rmin + 1e-6f;
    }
    const float s_y = (rmax - rmin) / 255.0f;
    /* rmin <= 0 < rmax - rmin, so rmin / s_y is in [-255, 0]: ts_round's input is in range. */
    int32_t zp = -128 - ts_round(rmin / s_y);
    if (zp < -128) {
        zp = -128;
    } else if (zp > 127) {
        zp = 127;
    }
    p->range_min = rmin;
    p->range_max = rmax;
    p->out_q.scale = s_y;
    p->out_q.zero_point = zp;
}
