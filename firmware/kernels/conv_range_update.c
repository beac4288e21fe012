/**
 * @file conv_range_update.c
 * @brief ts_conv_range_update: running (EMA 0.99) output range and output quantization of a
 *        conv layer.
 *
 * The arithmetic of ts_range_update (docs/int8-training.md, "Activation range") on a
 * ts_conv_layer_t: [bmin, bmax] is the batch range the forward kernel observed. The
 * multipliers and the RELU6 cap follow from the new out_q (ts_conv_requantize, ts_act_range).
 */
#include "ts_conv.h"

void ts_conv_range_update(ts_conv_layer_t *l, float bmin, float bmax)
{
    ts_running_range_update(&l->range_min, &l->range_max, &l->out_q, bmin, bmax);
}
