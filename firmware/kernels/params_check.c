/**
 * @file params_check.c
 * @brief ts_params_check: validates a trainable op's training state once, at set-up.
 *
 * What ts_sgd_step, ts_range_update and ts_requantize rely on: at least one channel and one
 * weight per channel, a known channel layout and every tensor present. The op checks
 * (ts_fully_connected_check, ts_conv_check) call it and match C and K to their geometry.
 */
#include <stddef.h>

#include "ts_kernels.h"

ts_status_t ts_params_check(const ts_params_t *p)
{
    if (p->channels == 0u || p->per_channel == 0u || p->layout > TS_CHANNEL_LAST) {
        return TS_ERR_ARG;
    }
    if (p->w == NULL || p->bias == NULL || p->w_scale == NULL || p->out_mult == NULL ||
        p->out_shift == NULL || p->master_w == NULL || p->master_b == NULL ||
        p->grad_w == NULL || p->grad_b == NULL) {
        return TS_ERR_ARG;
    }
    return TS_OK;
}
