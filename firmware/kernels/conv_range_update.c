/**
 * @file conv_range_update.c
 * @brief ts_conv_range_update: running (EMA 0.99) output range and output quantization of a
 *        conv layer.
 *
 * The arithmetic of ts_range_update (docs/int8-training.md, "Activation range") on a
 * ts_conv_layer_t: [bmin, bmax] is the batch range the forward kernel observed. The
 * multipliers and the RELU6 cap follow from the new out_q (ts_conv_requantize, ts_act_range).
 */
#include <stdint.h>

#include "ts_conv.h"

void ts_conv_range_update(ts_conv_layer_t *l, float bmin, float bmax)
{
    /* A batch that observed nothing (bmin still +inf, bmax -inf) carries no information. */
    if (!(bmin <= bmax)) {
        return;
    }
    float rmin = l->range_min * 0.99f + bmin * 0.01f;
    float rmax = l->range_max * 0.99f + bmax * 0.01f;
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
    l->range_min = rmin;
    l->range_max = rmax;
    l->out_q.scale = s_y;
    l->out_q.zero_point = zp;
}
