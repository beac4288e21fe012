/**
 * @file range_update.c
 * @brief ts_range_update: running (EMA 0.99) output range and the new output quantization.
 *
 * Updates l->range_min, l->range_max and l->out_q (scale, zero point) from one batch's range
 * [bmin, bmax] (ts_fc_observe_range). The multipliers are not touched: ts_fc_requantize
 * derives them from the new out_q afterwards.
 *
 * docs/int8-training.md, "Activation range": a scale frozen at export saturates as the client
 * learns; an EMA of the batch range follows it and keeps batch-1 inference identical to
 * training. The range always contains 0 so that zp_y represents real 0 exactly.
 */
#include "ts_kernels.h"

void ts_range_update(ts_fc_layer_t *l, float bmin, float bmax)
{
    ts_running_range_update(&l->range_min, &l->range_max, &l->out_q, bmin, bmax);
}
