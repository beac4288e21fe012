/*
 * int8 kernels, forward and backward. One public function per file in firmware/kernels/.
 * The exact arithmetic of each is specified in docs/int8-training.md and mirrored bit for bit
 * by the numpy golden model in core/golden/.
 */
#ifndef TS_KERNELS_H
#define TS_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "ts_layer.h"

/**
 * Forward: y = act(requant(bias + W (x - zp_x))), bit-exact with TFLite Micro's reference
 * FullyConnectedPerChannel. x: [K] int8, y: [C] int8. acc_out: [C] int32 accumulators before
 * requantization (for the range observer), or NULL.
 */
void ts_fc_forward(const ts_fc_layer_t *l, const int8_t *x, int8_t *y, int32_t *acc_out);

/** Standalone ReLU on int8: y[i] = max(x[i], zero_point). */
void ts_relu_forward(const int8_t *x, int8_t *y, size_t n, int8_t zero_point);

/** ReLU backward, in place: g[i] = y[i] > act_min ? g[i] : 0. y is the kept forward output. */
void ts_relu_backward(int8_t *g, const int8_t *y, size_t n, int32_t act_min);

/**
 * Adds one sample's weight and bias gradient to l->grad_w / l->grad_b.
 * x: [K] the layer's int8 input; g: [C] int8 output gradient (already masked), real = s_g * g.
 */
void ts_fc_backward_weights(ts_fc_layer_t *l, const int8_t *x, const int8_t *g, float s_g);

/**
 * Gradient of the layer input for one sample. g: [C] int8 (masked), scratch: [K] int32,
 * gx: [K] int8 out, *s_gx: its scale (0 when the gradient is all zero).
 */
void ts_fc_backward_input(const ts_fc_layer_t *l, const int8_t *g, float s_g, int32_t *scratch,
                          int8_t *gx, float *s_gx);

/**
 * Folds one sample's accumulators into a batch range: v = act(acc[c] * (s_x * w_scale[c])),
 * *bmin = min(*bmin, v), *bmax = max(*bmax, v).
 */
void ts_fc_observe_range(const ts_fc_layer_t *l, const int32_t *acc, float *bmin, float *bmax);

/** Running-range EMA (decay 0.99) and the new output scale / zero point. */
void ts_range_update(ts_fc_layer_t *l, float bmin, float bmax);

/** SGD on the float32 master copy, then zeroes the gradient buffers. */
void ts_sgd_step_fc(ts_fc_layer_t *l, float lr);

/** Re-quantizes the int8 weights, int32 bias and multipliers from the master copy and out_q. */
void ts_fc_requantize(ts_fc_layer_t *l);

#endif
