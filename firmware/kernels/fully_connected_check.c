/**
 * @file fully_connected_check.c
 * @brief ts_fully_connected_check: validates a fully connected layer once, at set-up.
 *
 * The kernels rely on K = in_features and C = out_features being the training state's
 * per_channel and channels with weights [C][K], on an activation the golden model and the
 * range observer know (NONE or RELU), and on K <= 65535 (docs/int8-training.md, "Forward":
 * the int32 sum cannot wrap).
 */
#include <stddef.h>

#include "ts_kernels.h"

ts_status_t ts_fully_connected_check(const ts_fc_layer_t *l)
{
    if (l == NULL || l->in_features == 0u || l->out_features == 0u) {
        return TS_ERR_ARG;
    }
    if (l->act != TS_ACT_NONE && l->act != TS_ACT_RELU) {
        return TS_ERR_ARG;
    }
    if (l->p.channels != l->out_features || l->p.per_channel != l->in_features ||
        l->p.layout != TS_CHANNEL_FIRST) {
        return TS_ERR_ARG;
    }
    return ts_params_check(&l->p);
}
