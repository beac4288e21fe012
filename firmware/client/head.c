/*
 * The client's head (U-shaped split learning, export --labels client): the model's last Dense
 * layer and its loss, on the board, so that labels and logits never leave it.
 *
 * Per sample, from the server's last activations h (int8, zero point 0, scale s_h):
 *   logits  z[c] = float(sum_k w[c][k] * h[k]) * (s_h * w_scale[c]) + master_b[c]
 *   softmax p[c] = e[c] / S, e[c] = exp(z[c] - max z), S = e[0] + e[1] + ... (in order)
 *   loss    log(S) - (z[label] - max z)
 *   dz[c]   = (p[c] - [c == label]) / B (the mean loss of a B-sample minibatch), quantized
 *             int8 with one max-abs scale as the host quantizes a cut gradient
 * then the FC kernels' weight gradient (input quantization s_h, zero point 0) and input
 * gradient (what HEAD_OUT carries back). exp and log are this file's own, made of float32 +,
 * -, *, / only (-ffp-contract=off): the numpy golden model (core/golden/head.py) computes the
 * same operations in the same order and gets the same bits on every target, which a libm
 * would not promise.
 */
#include "client_internal.h"

#if TS_MODEL_HEAD

#include "ts_support.h"

/* float32 constants, written with the digits that round-trip (core/golden/head.py has the
 * same strings). */
#define LOG2E 1.442695022e+00f
#define LN2_HI 6.931457520e-01f /* ln 2 split in two: k * LN2_HI is exact for |k| < 2^11 */
#define LN2_LO 1.428606765e-06f
#define EXP_MIN -8.6e+01f /* below, exp gives 0; above, every result is a normal float */
#define SQRT2 1.414213538e+00f

static int32_t head_scratch[TS_MODEL_HEAD_SIZE];

/* 2^k as a float, for k in [-126, 127]. */
static float pow2i(int32_t k)
{
    union {
        uint32_t u;
        float f;
    } v;
    v.u = (uint32_t)(k + 127) << 23;
    return v.f;
}

float ts_head_exp(float x)
{
    if (!(x > EXP_MIN)) {
        return 0.0f;
    }
    if (x > 0.0f) {
        x = 0.0f; /* only called on z - max z <= 0 */
    }
    const int32_t k = ts_round(x * LOG2E);
    const float kf = (float)k;
    float r = x - kf * LN2_HI;
    r = r - kf * LN2_LO;
    float p = 1.388888923e-03f;
    p = p * r + 8.333333768e-03f;
    p = p * r + 4.166666791e-02f;
    p = p * r + 1.666666716e-01f;
    p = p * r + 5.000000000e-01f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    return p * pow2i(k);
}

float ts_head_log(float x)
{
    /* x >= 1 here (a softmax denominator): a normal float, positive. */
    union {
        uint32_t u;
        float f;
    } v;
    v.f = x;
    int32_t e = (int32_t)((v.u >> 23) & 0xFFu) - 127;
    v.u = (v.u & 0x007FFFFFu) | 0x3F800000u; /* mantissa in [1, 2) */
    float m = v.f;
    if (m > SQRT2) {
        m = m * 0.5f;
        e = e + 1;
    }
    const float f = m - 1.0f;
    const float s = f / (2.0f + f);
    const float s2 = s * s;
    float p = 2.222222239e-01f;
    p = p * s2 + 2.857142985e-01f;
    p = p * s2 + 4.000000060e-01f;
    p = p * s2 + 6.666666865e-01f;
    p = p * s2 + 2.0f;
    const float ef = (float)e;
    return ef * LN2_HI + (s * p + ef * LN2_LO);
}

int ts_head_sample(const int8_t *h, float s_h, uint8_t label, uint16_t batch, int8_t *dh,
                   float *s_dh, float *loss, int stage)
{
    ts_fc_layer_t *l = &ts_model_head;
    const uint32_t k_in = l->in_features;
    float z[TS_MODEL_N_CLASSES];
    for (uint32_t c = 0; c < TS_MODEL_N_CLASSES; ++c) {
        const int8_t *w = &l->p.w[c * k_in];
        int32_t acc = 0;
        for (uint32_t k = 0; k < k_in; ++k) {
            acc += (int32_t)w[k] * (int32_t)h[k];
        }
        z[c] = (float)acc * (s_h * l->p.w_scale[c]) + l->p.master_b[c];
    }
    uint32_t best = 0;
    for (uint32_t c = 1; c < TS_MODEL_N_CLASSES; ++c) {
        if (z[c] > z[best]) {
            best = c;
        }
    }
    const int correct = label < TS_MODEL_N_CLASSES && best == label;
    if (!dh) {
        return correct; /* evaluation: the prediction only */
    }
    const float zmax = z[best];
    float e[TS_MODEL_N_CLASSES];
    float sum = 0.0f;
    for (uint32_t c = 0; c < TS_MODEL_N_CLASSES; ++c) {
        e[c] = ts_head_exp(z[c] - zmax);
        sum = sum + e[c];
    }
    *loss = ts_head_log(sum) - (z[label] - zmax);
    /* dz, then int8 with its max-abs scale (core/golden/gradient.py's quantize_gradient). */
    const float b = (float)batch;
    float mag = 0.0f;
    for (uint32_t c = 0; c < TS_MODEL_N_CLASSES; ++c) {
        const float y = c == label ? 1.0f : 0.0f;
        e[c] = (e[c] / sum - y) / b;
        const float a = e[c] < 0.0f ? -e[c] : e[c];
        mag = a > mag ? a : mag;
    }
    int8_t g[TS_MODEL_N_CLASSES];
    const float s_g = mag / 127.0f;
    for (uint32_t c = 0; c < TS_MODEL_N_CLASSES; ++c) {
        int32_t q = s_g == 0.0f ? 0 : ts_round(e[c] / s_g);
        g[c] = (int8_t)(q > 127 ? 127 : (q < -127 ? -127 : q));
    }
    ts_fully_connected_backward_input(l, g, s_g, head_scratch, dh, s_dh);
    if (!stage) {
        return correct; /* a repeat of a staged sample: answered again, summed once */
    }
    /* The weight gradient of this sample's input quantization: a copy of the layer that
     * shares its arrays (the sums land in the head's own grad_w and grad_b). */
    ts_fc_layer_t at = *l;
    at.p.in_q.scale = s_h;
    at.p.in_q.zero_point = 0;
    ts_fully_connected_backward_weights(&at, h, g, s_g);
    return correct;
}

void ts_head_drop_staged(void)
{
    ts_params_t *p = &ts_model_head.p;
    const uint32_t n_w = ts_params_weights(p);
    for (uint32_t k = 0; k < n_w; ++k) {
        p->grad_w[k] = 0.0f;
    }
    for (uint32_t c = 0; c < p->channels; ++c) {
        p->grad_b[c] = 0.0f;
    }
}

#endif
