/* Quantization helpers shared by the kernels and the optimizer (docs/int8-training.md). */
#ifndef TS_QUANT_H
#define TS_QUANT_H

#include <stdint.h>

/** Per-tensor affine quantization: real = scale * (q - zero_point). */
typedef struct {
    float scale;        /**< real value of one step */
    int32_t zero_point; /**< integer that represents real 0 */
} ts_quant_t;

/** float32 -> int32, rounding half away from zero; f must already be within int32 range. */
int32_t ts_round(float f);

/** TFLite's QuantizeMultiplier: m = mult * 2^(shift - 31), mult in [2^30, 2^31). */
void ts_quantize_multiplier(double m, int32_t *mult, int32_t *shift);

/** gemmlowp's double-rounding x * mult * 2^(shift-31), as TFLite Micro's reference kernels. */
int32_t ts_multiply_by_quantized_multiplier(int32_t x, int32_t mult, int32_t shift);

/**
 * Running (EMA 0.99) output range from one batch's observed range [bmin, bmax], and the
 * output scale / zero point that follow from it (docs/int8-training.md). No-op when the batch
 * observed nothing (bmin > bmax).
 */
void ts_running_range_update(float *range_min, float *range_max, ts_quant_t *out_q, float bmin,
                             float bmax);

#endif
