/*
 * Convolutional client layers: Conv2D (Conv1D is Conv2D with H = 1, as the TFLite converter
 * emits it), DepthwiseConv2D (depth multiplier 1), MaxPool2D and AveragePool2D, forward and
 * backward, int8. Reshape/Flatten/ExpandDims need no kernel: NHWC int8 data keeps its bytes.
 *
 * The exact arithmetic of every function is docs/int8-conv.md (which extends
 * docs/int8-training.md); core/golden/{conv,depthwise,pool}.py mirrors it bit for bit and
 * the forward kernels are bit-exact with TFLite Micro's reference ConvPerChannel,
 * DepthwiseConvPerChannel, MaxPool and AveragePool.
 *
 * Layouts (TFLite, one sample, N = 1 dropped): activations [H][W][C] row-major; conv filter
 * [Cout][KH][KW][Cin]; depthwise filter [1][KH][KW][C]. Nothing is allocated: scratch buffers
 * are caller-owned and sized with the matching *_get_buffer_size() (bytes, int32-aligned).
 * Run ts_conv_check / ts_pool_check once at set-up; the kernels themselves do not check.
 */
#ifndef TS_CONV_H
#define TS_CONV_H

#include <stddef.h>
#include <stdint.h>

#include "ts_quant.h"
#include "ts_status.h"

/** Padding of a convolution or pooling window (TFLite Padding). */
typedef enum {
    TS_PADDING_VALID = 0, /**< no padding: out = (in - k + stride) / stride */
    TS_PADDING_SAME = 1   /**< out = ceil(in / stride); padding split top/left first */
} ts_padding_t;

/** Activation fused after requantization (TFLite ActivationFunctionType subset). */
typedef enum {
    TS_ACT_NONE = 0,  /**< clamp to [-128, 127] */
    TS_ACT_RELU = 1,  /**< clamp to [max(-128, zp_y), 127] */
    TS_ACT_RELU6 = 2  /**< clamp to [max(-128, zp_y), min(127, zp_y + round(6 / s_y))] */
} ts_activation_t;

/** Shape of one sample's activation tensor, NHWC with N = 1. */
typedef struct {
    uint16_t h; /**< height (1 for Conv1D data) */
    uint16_t w; /**< width */
    uint16_t c; /**< channels */
} ts_dims_t;

/**
 * A trainable Conv2D or DepthwiseConv2D layer. Fields from in_q on mirror ts_fc_layer_t (same
 * meaning, same training state); C = out.c output channels, K = KH * KW * Cin weights per
 * channel for a conv, K = KH * KW for a depthwise conv.
 */
typedef struct {
    ts_dims_t in;          /**< input dims [H][W][Cin] */
    ts_dims_t out;         /**< output dims [OH][OW][Cout]; depthwise: Cout == Cin */
    uint16_t kh;           /**< filter height (1 for Conv1D) */
    uint16_t kw;           /**< filter width */
    uint8_t stride_h;      /**< vertical stride, >= 1 */
    uint8_t stride_w;      /**< horizontal stride, >= 1 */
    uint8_t padding;       /**< ts_padding_t; the pads follow from in, out, k, stride */
    uint8_t act;           /**< ts_activation_t */
    uint8_t depthwise;     /**< 0: filter [Cout][KH][KW][Cin]; 1: filter [1][KH][KW][C] */
    ts_quant_t in_q;       /**< input quantization (the previous layer's out_q) */
    ts_quant_t out_q;      /**< output quantization; moves with the running range */
    int8_t *w;             /**< filter, int8 per-channel symmetric in [-127, 127] */
    int32_t *bias;         /**< [C] int32 bias, scale in_q.scale * w_scale[c] */
    float *w_scale;        /**< [C] per-output-channel weight scales */
    int32_t *out_mult;     /**< [C] requantization multipliers (Q31) */
    int32_t *out_shift;    /**< [C] requantization shifts, TFLite sign: > 0 shifts left */
    float *master_w;       /**< float32 master copy of the filter, same layout as w */
    float *master_b;       /**< [C] float32 master copy of the bias */
    float *grad_w;         /**< filter gradient summed over the minibatch, layout of w */
    float *grad_b;         /**< [C] bias gradient summed over the minibatch */
    float range_min;       /**< running (EMA) minimum of the real output */
    float range_max;       /**< running (EMA) maximum of the real output */
} ts_conv_layer_t;

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

/* ---- geometry and set-up checks ------------------------------------------------------------ */

/**
 * Leading (top or left) padding, TFLite's ComputePadding:
 * max(0, ((out - 1) * stride + k - in) / 2). 0 for VALID geometry.
 */
static inline int32_t ts_conv_pad(int32_t in, int32_t out, int32_t k, int32_t stride)
{
    const int32_t p = ((out - 1) * stride + k - in) / 2;
    return p > 0 ? p : 0;
}

/** Output size TFLite gives for one spatial dimension (ComputeOutSize, dilation 1). */
static inline int32_t ts_conv_out_size(uint8_t padding, int32_t in, int32_t k, int32_t stride)
{
    if (padding == TS_PADDING_SAME) {
        return (in + stride - 1) / stride;
    }
    return in >= k ? (in - k + stride) / stride : 0;
}

/**
 * Validates a layer once at set-up: non-zero dims, windows and strides; out dims as
 * ts_conv_out_size gives them; depthwise Cout == Cin; known padding and act; non-NULL tensors;
 * KH * KW * Cin <= 65535 and OH * OW <= 65535 (no int32 sum can wrap). TS_ERR_ARG on the first
 * problem, TS_OK otherwise.
 */
ts_status_t ts_conv_check(const ts_conv_layer_t *l);

/** Validates pooling parameters the same way (out.c == in.c, out dims from the geometry, at most
 *  511 windows over one input). */
ts_status_t ts_pool_check(const ts_pool_params_t *p);

/**
 * Extra right shift e of the input-gradient kernels (docs/int8-conv.md, "Input gradient"): the
 * smallest e in [0, 15] with n_terms * 127 * 2^(15 - e) <= INT32_MAX, so that a sum of n_terms
 * products t * w (|t| <= 2^(15 - e), |w| <= 127) cannot leave int32.
 */
static inline int32_t ts_grad_shift(uint64_t n_terms)
{
    for (int32_t e = 0; e < 15; ++e) {
        if (n_terms * 127u * ((uint64_t)1u << (15 - e)) <= (uint64_t)INT32_MAX) {
            return e;
        }
    }
    return 15;
}

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

/* ---- Conv2D --------------------------------------------------------------------------------- */

/**
 * Forward: y = act(requant(bias + sum w * (x - zp_x))), bit-exact with TFLM's
 * ConvPerChannel. x [H][W][Cin] int8, y [OH][OW][Cout] int8. bmin/bmax: when non-NULL, the
 * batch range folded in from every output (docs/int8-conv.md, "Activation range"); both or
 * neither. Start a batch with *bmin = +inf, *bmax = -inf.
 */
void ts_conv2d_forward(const ts_conv_layer_t *l, const int8_t *x, int8_t *y, float *bmin,
                       float *bmax);

/**
 * Adds one sample's filter and bias gradient to l->grad_w / l->grad_b (int32 sums over the
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

/* ---- DepthwiseConv2D (depth multiplier 1) --------------------------------------------------- */

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

/* ---- training state of a conv layer (either filter layout) ---------------------------------- */

/** SGD on the float32 master copy (as ts_sgd_step_fc), then zeroes the gradient buffers. */
void ts_conv_sgd_step(ts_conv_layer_t *l, float lr);

/** Running-range EMA (decay 0.99) and the new out_q, exactly as ts_range_update. */
void ts_conv_range_update(ts_conv_layer_t *l, float bmin, float bmax);

/** Re-quantizes filter, bias and multipliers from the master copy and out_q (per output
 *  channel, as ts_fc_requantize; the channel is the last filter axis for a depthwise conv). */
void ts_conv_requantize(ts_conv_layer_t *l);

/* ---- pooling -------------------------------------------------------------------------------- */

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

#endif
