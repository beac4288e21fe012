/*
 * tinysplit's int8 kernels, forward and backward, and the on-device optimizer: the whole public
 * API of firmware/kernels/ (one public function per file, named after it). Scalars, status
 * codes and geometry helpers come from ts_support.h.
 *
 * Ops: fully connected, Conv2D (Conv1D is Conv2D with H = 1, as the TFLite converter emits it),
 * DepthwiseConv2D (depth multiplier 1), MaxPool2D and AveragePool2D. Reshape/Flatten/ExpandDims
 * need no kernel: NHWC int8 data keeps its bytes. Names: ts_<op>_<pass>, pass one of forward,
 * backward_weights, backward_input (or backward for a pool), check, get_buffer_size.
 *
 * The exact arithmetic is docs/int8-training.md and docs/int8-conv.md; core/golden/ mirrors it
 * bit for bit, and the forward kernels are bit-exact with TFLite Micro's reference
 * FullyConnectedPerChannel, ConvPerChannel, DepthwiseConvPerChannel, MaxPool and AveragePool.
 *
 * Layouts (TFLite, one sample, N = 1 dropped): activations [H][W][C] row-major (FC: [K]); FC
 * weights [C][K]; conv filter [Cout][KH][KW][Cin]; depthwise filter [1][KH][KW][C].
 * Nothing is allocated: scratch buffers are caller-owned and sized with the matching
 * *_get_buffer_size() (bytes, int32-aligned). Validate every op once at set-up with its
 * *_check(); the kernels themselves do not check (as CMSIS-NN and TFLM's Prepare/Eval).
 */
#ifndef TS_KERNELS_H
#define TS_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "ts_support.h"

/* ---- the training state of a trainable op --------------------------------------------------- */

/** How the C * K weights of a trainable op are laid out by output channel. */
typedef enum {
    TS_CHANNEL_FIRST = 0, /**< channel c owns the contiguous row [c * K, (c + 1) * K) (FC, conv) */
    TS_CHANNEL_LAST = 1   /**< channel c owns every C-th weight from c (depthwise) */
} ts_channel_layout_t;

/**
 * What every trainable op (FC, conv, depthwise) keeps: its int8 inference tensors, their
 * float32 master copy and gradient sums, and the running range of its output. Codegen emits
 * one per trainable op (model_data.c); the kernels read it; ts_sgd_step, ts_range_update and
 * ts_requantize write it, the same for every op.
 */
typedef struct {
    uint16_t channels;    /**< C: output channels, one scale, bias and multiplier each */
    uint8_t layout;       /**< ts_channel_layout_t of w, master_w and grad_w */
    uint32_t per_channel; /**< K: weights of one output channel */
    ts_quant_t in_q;      /**< input quantization (fixed for the first trainable op) */
    ts_quant_t out_q;     /**< output quantization; moves with the running range */
    int8_t *w;            /**< [C * K] int8 weights, per-channel symmetric in [-127, 127] */
    int32_t *bias;        /**< [C] int32 bias, scale in_q.scale * w_scale[c] */
    float *w_scale;       /**< [C] per-channel weight scales */
    int32_t *out_mult;    /**< [C] requantization multipliers (Q31) */
    int32_t *out_shift;   /**< [C] requantization shifts, TFLite sign: > 0 shifts left */
    float *master_w;      /**< [C * K] float32 master copy of the weights, layout of w */
    float *master_b;      /**< [C] float32 master copy of the bias */
    float *grad_w;        /**< [C * K] weight gradient summed over the minibatch, layout of w */
    float *grad_b;        /**< [C] bias gradient summed over the minibatch */
    float range_min;      /**< running (EMA) minimum of the real output */
    float range_max;      /**< running (EMA) maximum of the real output */
} ts_params_t;

/** Number of weights of p: C * K. */
static inline uint32_t ts_params_weights(const ts_params_t *p)
{
    return (uint32_t)p->channels * p->per_channel;
}

/**
 * Validates p once at set-up: C, K > 0, a known layout, non-NULL tensors. TS_ERR_ARG on the
 * first problem. The op checks call it and add that C and K match the op's geometry.
 */
ts_status_t ts_params_check(const ts_params_t *p);

/**
 * SGD on the float32 master copy, then zeroes the gradient sums. The host's loss is the mean
 * over the minibatch, so the summed per-sample gradients are already the minibatch gradient.
 */
void ts_sgd_step(ts_params_t *p, float lr);

/**
 * Running-range EMA (decay 0.99) of the output from one batch's observed range [bmin, bmax],
 * and the output scale / zero point that follow (docs/int8-training.md, "Activation range").
 * No-op when the batch observed nothing (bmin > bmax). Call before ts_requantize.
 */
void ts_range_update(ts_params_t *p, float bmin, float bmax);

/**
 * Re-quantizes the int8 weights, int32 bias and multipliers from the master copy and out_q:
 * per-channel symmetric max-abs, as TFLite's converter does, so TFLite Micro runs the result
 * unchanged (docs/int8-training.md, "Optimizer step").
 */
void ts_requantize(ts_params_t *p);

/* ---- activations ---------------------------------------------------------------------------- */

/** Forward clamp of a fused activation on an output quantized with q (TFLM's
 *  CalculateActivationRangeQuantized for int8). */
void ts_act_range(uint8_t act, ts_quant_t q, int32_t *act_min, int32_t *act_max);

/**
 * Activation backward, in place on the output gradient g [n] from the kept forward output
 * y [n] (quantized with q): RELU and RELU6 zero g where y <= act_min; RELU6 also where
 * y >= zp + round(6 / s) (the 6 cap, when it lies inside int8). Saturation at 127 that is not
 * the 6 cap passes the gradient straight through. NONE leaves g alone.
 */
void ts_act_backward(uint8_t act, ts_quant_t q, int8_t *g, const int8_t *y, size_t n);

/**
 * int32 gradient -> int8 in [-127, 127] with one max-abs scale: m = max |acc|,
 * gx = sign(acc) * ((|acc| * 127 + m / 2) / m). Returns m (0: gx is all zero); the caller
 * multiplies its scale by m / 127.
 */
uint32_t ts_grad_requantize(const int32_t *acc, size_t n, int8_t *gx);

/* ---- fully connected ------------------------------------------------------------------------ */

/** A fully connected layer: K = in_features = p.per_channel, C = out_features = p.channels. */
typedef struct {
    uint16_t in_features;  /**< K */
    uint16_t out_features; /**< C */
    uint8_t act;           /**< ts_activation_t: NONE or RELU */
    ts_params_t p;         /**< weights [C][K] (TS_CHANNEL_FIRST) and training state */
} ts_fc_layer_t;

/** Validates a layer once at set-up: K, C in [1, 65535] and equal to p's, act NONE or RELU,
 *  ts_params_check. */
ts_status_t ts_fully_connected_check(const ts_fc_layer_t *l);

/**
 * Forward: y = act(requant(bias + W (x - zp_x))), bit-exact with TFLite Micro's reference
 * FullyConnectedPerChannel. x: [K] int8, y: [C] int8. acc_out: [C] int32 accumulators before
 * requantization (for ts_fully_connected_observe_range), or NULL.
 */
void ts_fully_connected_forward(const ts_fc_layer_t *l, const int8_t *x, int8_t *y,
                                int32_t *acc_out);

/**
 * Folds one sample's accumulators into a batch range: v = act(acc[c] * (s_x * w_scale[c])),
 * *bmin = min(*bmin, v), *bmax = max(*bmax, v).
 */
void ts_fully_connected_observe_range(const ts_fc_layer_t *l, const int32_t *acc, float *bmin,
                                      float *bmax);

/**
 * Adds one sample's weight and bias gradient to p.grad_w / p.grad_b.
 * x: [K] the layer's int8 input; g: [C] int8 output gradient (already through ts_act_backward),
 * real = s_g * g.
 */
void ts_fully_connected_backward_weights(ts_fc_layer_t *l, const int8_t *x, const int8_t *g,
                                         float s_g);

/**
 * Gradient of the layer input for one sample. g: [C] int8 (masked), scratch: [K] int32,
 * gx: [K] int8 out, *s_gx: its scale (0 when the gradient is all zero).
 */
void ts_fully_connected_backward_input(const ts_fc_layer_t *l, const int8_t *g, float s_g,
                                       int32_t *scratch, int8_t *gx, float *s_gx);

/* ---- Conv2D and DepthwiseConv2D ------------------------------------------------------------- */

/**
 * A trainable Conv2D or DepthwiseConv2D layer. C = out.c output channels; K = KH * KW * Cin
 * weights per channel for a conv (TS_CHANNEL_FIRST), K = KH * KW for a depthwise conv
 * (TS_CHANNEL_LAST).
 */
typedef struct {
    ts_dims_t in;      /**< input dims [H][W][Cin] */
    ts_dims_t out;     /**< output dims [OH][OW][Cout]; depthwise: Cout == Cin */
    uint16_t kh;       /**< filter height (1 for Conv1D) */
    uint16_t kw;       /**< filter width */
    uint8_t stride_h;  /**< vertical stride, >= 1 */
    uint8_t stride_w;  /**< horizontal stride, >= 1 */
    uint8_t padding;   /**< ts_padding_t; the pads follow from in, out, k, stride */
    uint8_t act;       /**< ts_activation_t */
    uint8_t depthwise; /**< 0: filter [Cout][KH][KW][Cin]; 1: filter [1][KH][KW][C] */
    ts_params_t p;     /**< filter, bias and training state */
} ts_conv_layer_t;

/**
 * Validates a layer once at set-up: non-zero dims, windows and strides; out dims as
 * ts_conv_out_size gives them; depthwise Cout == Cin; known padding and act; p matching the
 * filter (ts_params_check); KH * KW * Cin <= 65535 and OH * OW <= 65535 (no int32 sum can
 * wrap). TS_ERR_ARG on the first problem, TS_OK otherwise.
 */
ts_status_t ts_conv_check(const ts_conv_layer_t *l);

/**
 * Forward: y = act(requant(bias + sum w * (x - zp_x))), bit-exact with TFLM's
 * ConvPerChannel. x [H][W][Cin] int8, y [OH][OW][Cout] int8. bmin/bmax: when non-NULL, the
 * batch range folded in from every output (docs/int8-conv.md, "Activation range"); both or
 * neither. Start a batch with *bmin = +inf, *bmax = -inf.
 */
void ts_conv2d_forward(const ts_conv_layer_t *l, const int8_t *x, int8_t *y, float *bmin,
                       float *bmax);

/**
 * Adds one sample's filter and bias gradient to p.grad_w / p.grad_b (int32 sums over the
 * output positions, then float32). x: the layer input; g [OH][OW][Cout]: output gradient
 * (already through ts_act_backward), real = s_g * g.
 */
void ts_conv2d_backward_weights(ts_conv_layer_t *l, const int8_t *x, const int8_t *g, float s_g);

/** Scratch bytes of ts_conv2d_backward_input: (H * W * Cin + Cout) int32. */
size_t ts_conv2d_backward_input_get_buffer_size(const ts_conv_layer_t *l);

/**
 * Input gradient of one sample. g [OH][OW][Cout] int8 (masked); gx [H][W][Cin] int8 in
 * [-127, 127], real ≈ *s_gx * gx (*s_gx = 0 when all zero). scratch: get_buffer_size bytes.
 */
void ts_conv2d_backward_input(const ts_conv_layer_t *l, const int8_t *g, float s_g,
                              int32_t *scratch, int8_t *gx, float *s_gx);

/** Forward, bit-exact with TFLM's DepthwiseConvPerChannel; arguments as ts_conv2d_forward. */
void ts_depthwise_conv2d_forward(const ts_conv_layer_t *l, const int8_t *x, int8_t *y,
                                 float *bmin, float *bmax);

/** Filter [1][KH][KW][C] and bias gradient of one sample; as ts_conv2d_backward_weights. */
void ts_depthwise_conv2d_backward_weights(ts_conv_layer_t *l, const int8_t *x, const int8_t *g,
                                          float s_g);

/** Scratch bytes of ts_depthwise_conv2d_backward_input: (H * W * C + C) int32. */
size_t ts_depthwise_conv2d_backward_input_get_buffer_size(const ts_conv_layer_t *l);

/** Input gradient of one sample; as ts_conv2d_backward_input. */
void ts_depthwise_conv2d_backward_input(const ts_conv_layer_t *l, const int8_t *g, float s_g,
                                        int32_t *scratch, int8_t *gx, float *s_gx);

/* ---- pooling -------------------------------------------------------------------------------- */

/** A MaxPool2D or AveragePool2D window. Input and output share one quantization. */
typedef struct {
    ts_dims_t in;     /**< input dims [H][W][C] */
    ts_dims_t out;    /**< output dims [OH][OW][C] */
    uint16_t kh;      /**< window height */
    uint16_t kw;      /**< window width */
    uint8_t stride_h; /**< vertical stride, >= 1 */
    uint8_t stride_w; /**< horizontal stride, >= 1 */
    uint8_t padding;  /**< ts_padding_t; windows are clipped to the image, never padded */
} ts_pool_params_t;

/** Validates pooling parameters once at set-up (out.c == in.c, out dims from the geometry, at
 *  most 511 windows over one input). */
ts_status_t ts_pool_check(const ts_pool_params_t *p);

/** MaxPool2D forward, bit-exact with TFLM's MaxPool. x [H][W][C], y [OH][OW][C]. */
void ts_max_pool2d_forward(const ts_pool_params_t *p, const int8_t *x, int8_t *y);

/** Scratch bytes of ts_max_pool2d_backward: 0 when windows do not overlap
 *  (stride >= window in both axes), else H * W * C int32. */
size_t ts_max_pool2d_backward_get_buffer_size(const ts_pool_params_t *p);

/**
 * MaxPool2D backward: each output's gradient goes to the first maximum of its window (row-major
 * scan), found again from the kept input x. g [OH][OW][C], gx [H][W][C]. The sums are exact
 * (*s_gx = s_g) when they fit int8, else re-quantized to [-127, 127] (*s_gx = s_g * m / 127).
 */
void ts_max_pool2d_backward(const ts_pool_params_t *p, const int8_t *x, const int8_t *g,
                            float s_g, int32_t *scratch, int8_t *gx, float *s_gx);

/** AveragePool2D forward, bit-exact with TFLM's AveragePool (in-image taps only). */
void ts_avg_pool2d_forward(const ts_pool_params_t *p, const int8_t *x, int8_t *y);

/** Scratch bytes of ts_avg_pool2d_backward: 0 without overlap, else H * W * C int32. */
size_t ts_avg_pool2d_backward_get_buffer_size(const ts_pool_params_t *p);

/**
 * AveragePool2D backward: each output's gradient is shared by the in-image taps of its window
 * (weight round(2^15 / count) per tap), summed, and re-quantized to [-127, 127]:
 * *s_gx = (s_g * 2^-15) * (m / 127). g [OH][OW][C], gx [H][W][C].
 */
void ts_avg_pool2d_backward(const ts_pool_params_t *p, const int8_t *g, float s_g,
                            int32_t *scratch, int8_t *gx, float *s_gx);

/* ---- optimized kernels ---------------------------------------------------------------------- */

/*
 * Each *_fast kernel has the contract of the reference kernel of the same name without the
 * suffix and gives the same outputs bit for bit (firmware/kernels/ts_fast.h says how: a DSP
 * path on cores with the DSP extension, a portable one elsewhere). The reference kernels stay
 * the plain oracle they are tested against. The client calls TS_KERNEL(name): the optimized
 * kernel, or the reference one in a build with -DTS_REFERENCE_KERNELS (make KERNELS=reference).
 */
#ifdef TS_REFERENCE_KERNELS
#define TS_KERNEL(name) ts_##name
#else
#define TS_KERNEL(name) ts_##name##_fast
#endif

/** Largest window (KH * KW * Cin) ts_conv2d_forward_fast takes apart on the stack (two int16
 *  columns); a larger one runs the reference kernel. */
#define TS_CONV_FAST_MAX_TAPS 192u

/** ts_fully_connected_forward, bit for bit (fully_connected_fast.c). */
void ts_fully_connected_forward_fast(const ts_fc_layer_t *l, const int8_t *x, int8_t *y,
                                     int32_t *acc_out);

/** ts_conv2d_forward, bit for bit (conv2d_fast.c). */
void ts_conv2d_forward_fast(const ts_conv_layer_t *l, const int8_t *x, int8_t *y, float *bmin,
                            float *bmax);

/** ts_depthwise_conv2d_forward, bit for bit (depthwise_conv2d_fast.c). */
void ts_depthwise_conv2d_forward_fast(const ts_conv_layer_t *l, const int8_t *x, int8_t *y,
                                      float *bmin, float *bmax);

/** ts_grad_requantize, bit for bit (grad_requantize_fast.c). */
uint32_t ts_grad_requantize_fast(const int32_t *acc, size_t n, int8_t *gx);

/** ts_fully_connected_backward_weights, bit for bit for gradient sums without -0.0 or
 *  signalling NaNs (which the kernels never produce; fully_connected_backward_weights_fast.c). */
void ts_fully_connected_backward_weights_fast(ts_fc_layer_t *l, const int8_t *x, const int8_t *g,
                                              float s_g);

/** ts_fully_connected_backward_input, bit for bit (fully_connected_backward_input_fast.c). */
void ts_fully_connected_backward_input_fast(const ts_fc_layer_t *l, const int8_t *g, float s_g,
                                            int32_t *scratch, int8_t *gx, float *s_gx);

/** Scratch bytes of ts_conv2d_backward_weights_fast: int32 [Cout][K] + int16 [K][4]. */
size_t ts_conv2d_backward_weights_fast_get_buffer_size(const ts_conv_layer_t *l);

/** ts_conv2d_backward_weights, bit for bit; scratch: get_buffer_size bytes, int32-aligned
 *  (conv2d_backward_weights_fast.c). */
void ts_conv2d_backward_weights_fast(ts_conv_layer_t *l, const int8_t *x, const int8_t *g,
                                     float s_g, int32_t *scratch);

/** ts_conv2d_backward_input, bit for bit, same scratch (conv2d_backward_input_fast.c). */
void ts_conv2d_backward_input_fast(const ts_conv_layer_t *l, const int8_t *g, float s_g,
                                   int32_t *scratch, int8_t *gx, float *s_gx);

#endif
