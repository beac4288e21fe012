/*
 * What every part of the firmware shares: status codes, per-tensor quantization, the scalar
 * rounding helpers and the geometry of a window over an NHWC tensor. No tensors, no state.
 * The kernels' API is ts_kernels.h, which includes this header.
 */
#ifndef TS_SUPPORT_H
#define TS_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

/* ---- status --------------------------------------------------------------------------------- */

/** Typed status codes returned by tinysplit's firmware functions. */
typedef enum {
    TS_OK = 0,          /**< success */
    TS_ERR_ARG = -1,    /**< an argument is out of range (shape, index, length) */
    TS_ERR_STATE = -2,  /**< the call is not valid in the current state */
    TS_ERR_FRAME = -3,  /**< a frame failed COBS, CRC or length checks */
    TS_ERR_TIMEOUT = -4 /**< nothing arrived in time */
} ts_status_t;

/* ---- quantization (docs/int8-training.md, "Rounding helpers") ------------------------------- */

/** Per-tensor affine quantization: real = scale * (q - zero_point). */
typedef struct {
    float scale;        /**< real value of one step */
    int32_t zero_point; /**< integer that represents real 0 */
} ts_quant_t;

/** Largest float32 below 2^31: every value in [-this, this] converts to int32 without UB. */
#define TS_INT32_FLOAT_LIMIT 2147483520.0f

/** float32 -> int32, rounding half away from zero; f must already be within int32 range. */
int32_t ts_round(float f);

/** TFLite's QuantizeMultiplier: m = mult * 2^(shift - 31), mult in [2^30, 2^31). */
void ts_quantize_multiplier(double m, int32_t *mult, int32_t *shift);

/** gemmlowp's double-rounding x * mult * 2^(shift-31), as TFLite Micro's reference kernels. */
int32_t ts_multiply_by_quantized_multiplier(int32_t x, int32_t mult, int32_t shift);

/* ---- activations ---------------------------------------------------------------------------- */

/** Activation fused after requantization (TFLite ActivationFunctionType subset). */
typedef enum {
    TS_ACT_NONE = 0,  /**< clamp to [-128, 127] */
    TS_ACT_RELU = 1,  /**< clamp to [max(-128, zp_y), 127] */
    TS_ACT_RELU6 = 2  /**< clamp to [max(-128, zp_y), min(127, zp_y + round(6 / s_y))] */
} ts_activation_t;

/* ---- geometry (TFLite's, dilation 1) -------------------------------------------------------- */

/** Shape of one sample's activation tensor, NHWC with N = 1. */
typedef struct {
    uint16_t h; /**< height (1 for Conv1D data and FC features) */
    uint16_t w; /**< width (1 for FC features) */
    uint16_t c; /**< channels (the feature count of FC data) */
} ts_dims_t;

/** Padding of a convolution or pooling window (TFLite Padding). */
typedef enum {
    TS_PADDING_VALID = 0, /**< no padding: out = (in - k + stride) / stride */
    TS_PADDING_SAME = 1   /**< out = ceil(in / stride); padding split top/left first */
} ts_padding_t;

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

#endif
