/*
 * A trainable client layer: its int8 inference tensors, its float32 training state and its
 * running output range. Codegen emits one per client layer (model_data.c); the kernels read it;
 * the optimizer writes it. Nothing here is allocated at run time.
 */
#ifndef TS_LAYER_H
#define TS_LAYER_H

#include <stdint.h>

#include "ts_quant.h"

/** Fully connected layer, TFLite layout. K = in_features, C = out_features. */
typedef struct {
    uint16_t in_features;  /**< K */
    uint16_t out_features; /**< C */
    uint8_t relu;          /**< 1: ReLU fused after requantization (act_min = max(-128, zp_y)) */
    ts_quant_t in_q;       /**< input quantization (fixed for the first layer) */
    ts_quant_t out_q;      /**< output quantization; moves with the running range */
    int8_t *w;             /**< [C][K] int8 weights, per-channel symmetric in [-127, 127] */
    int32_t *bias;         /**< [C] int32 bias, scale in_q.scale * w_scale[c] */
    float *w_scale;        /**< [C] per-channel weight scales */
    int32_t *out_mult;     /**< [C] requantization multipliers (Q31) */
    int32_t *out_shift;    /**< [C] requantization shifts, TFLite sign: > 0 shifts left */
    float *master_w;       /**< [C][K] float32 master copy of the weights */
    float *master_b;       /**< [C] float32 master copy of the bias */
    float *grad_w;         /**< [C][K] weight gradient summed over the minibatch */
    float *grad_b;         /**< [C] bias gradient summed over the minibatch */
    float range_min;       /**< running (EMA) minimum of the real output */
    float range_max;       /**< running (EMA) maximum of the real output */
} ts_fc_layer_t;

/** Lowest int8 the layer's activation lets through. */
static inline int32_t ts_fc_act_min(const ts_fc_layer_t *l)
{
    if (l->relu && l->out_q.zero_point > -128) {
        return l->out_q.zero_point;
    }
    return -128;
}

#endif
