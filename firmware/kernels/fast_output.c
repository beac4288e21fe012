/**
 * @file fast_output.c
 * @brief The optimized kernels' output stage set-up and range fold (ts_fast.h): requantization
 *        constants once per call, the observed range from each channel's extreme sums.
 */
#include <stdint.h>

#include "ts_fast.h"
#include "ts_kernels.h"

int ts_fast_out_setup(const ts_params_t *p, uint8_t act, uint32_t k_taps, int observe,
                      ts_fast_out_t *o)
{
    if (p->channels > TS_FAST_CHANNELS_MAX) {
        return 0;
    }
    return ts_fast_out_setup_block(p, act, k_taps, observe, 0u, p->channels, o);
}

int ts_fast_out_setup_block(const ts_params_t *p, uint8_t act, uint32_t k_taps, int observe,
                            uint32_t c_first, uint32_t c_n, ts_fast_out_t *o)
{
    ts_act_range(act, p->out_q, &o->act_min, &o->act_max);
    o->zp_y = p->out_q.zero_point;
    o->observe = observe;
    o->narrow = 1;
    const uint64_t products = (uint64_t)k_taps * 128u * 255u;
    for (uint32_t i = 0; i < c_n; ++i) {
        const uint32_t c = c_first + i;
        ts_fast_chan_t *ch = &o->ch[i];
        int32_t left, right;
        ts_fast_shifts(p->out_shift[c], &left, &right);
        ch->mult = p->out_mult[c];
        ch->left = (uint8_t)left;
        ch->right = (uint8_t)right;
        ch->mask = (int32_t)((1u << right) - 1u);
        ch->rnd = right > 0 ? (int32_t)(1u << (right - 1)) : 0;
        ch->acc_min = INT32_MAX;
        ch->acc_max = INT32_MIN;
        const float scale = p->in_q.scale * p->w_scale[c];
        if (ch->mult == INT32_MIN || (observe && !(scale > 0.0f && scale <= 3.4028235e38f))) {
            return 0;
        }
        const int64_t b = p->bias[c];
        const uint64_t bound = (uint64_t)(b < 0 ? -b : b) + products;
        if (right < 1 || right > 30 || left > 29 || (bound << (left + 1)) >= (1ull << 31)) {
            o->narrow = 0;
        }
    }
    return 1;
}

/* The observer's real value of a sum: the reference kernels' expression. */
static float real_value(const ts_params_t *p, uint8_t act, uint32_t c, int32_t acc)
{
    float v = (float)acc * (p->in_q.scale * p->w_scale[c]);
    if (act != TS_ACT_NONE) {
        v = v > 0.0f ? v : 0.0f;
    }
    if (act == TS_ACT_RELU6) {
        v = v < 6.0f ? v : 6.0f;
    }
    return v;
}

void ts_fast_out_finish(const ts_params_t *p, uint8_t act, const ts_fast_out_t *o,
                        uint32_t c_first, uint32_t c_n, float *bmin, float *bmax)
{
    if (!o->observe) {
        return;
    }
    float lo = *bmin, hi = *bmax;
    for (uint32_t i = 0; i < c_n; ++i) {
        if (o->ch[i].acc_min > o->ch[i].acc_max) {
            continue; /* no output of this channel */
        }
        const float v_lo = real_value(p, act, c_first + i, o->ch[i].acc_min);
        const float v_hi = real_value(p, act, c_first + i, o->ch[i].acc_max);
        lo = v_lo < lo ? v_lo : lo;
        hi = v_hi > hi ? v_hi : hi;
    }
    *bmin = lo;
    *bmax = hi;
}
