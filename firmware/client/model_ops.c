/*
 * The exported client as the firmware sees it: the op table of model_data.h (docs/model-format.md),
 * where each op's output lives, and one view of a trainable op's training state whatever its
 * kind (FC or conv), for the optimizer, the commit guard and the state image.
 */
#include "client_internal.h"

uint32_t ts_op_out_bytes(const ts_model_op_t *op)
{
    return (uint32_t)op->out.h * op->out.w * op->out.c;
}

int8_t *ts_op_output(uint32_t i, uint32_t pos, const int8_t *x)
{
    const ts_model_op_t *op = &ts_model_ops[i];
    (void)pos; /* unused when nothing is kept for the minibatch */
    switch (op->out_buf) {
#if TS_MODEL_KEPT_ACT_BYTES > 0
    case TS_BUF_KEPT:
        return &ts_kept_acts[op->out_offset + pos * ts_op_out_bytes(op)];
#endif
#if TS_MODEL_ACT_BYTES > 0
    case TS_BUF_ACT:
        return &ts_act_buf[op->out_offset];
#endif
    default:
        /* TS_BUF_INPUT: a reshape of the sample, which the kernels only read. */
        return (int8_t *)(uintptr_t)x;
    }
}

int ts_op_trainable(uint32_t i, ts_trainable_t *t)
{
    const ts_model_op_t *op = &ts_model_ops[i];
    if (op->kind == TS_OP_FC) {
        ts_fc_layer_t *l = op->layer.fc;
        t->n_w = (uint32_t)l->out_features * l->in_features;
        t->n_c = l->out_features;
        t->w = l->w;
        t->bias = l->bias;
        t->w_scale = l->w_scale;
        t->out_mult = l->out_mult;
        t->out_shift = l->out_shift;
        t->master_w = l->master_w;
        t->master_b = l->master_b;
        t->grad_w = l->grad_w;
        t->grad_b = l->grad_b;
        t->range_min = &l->range_min;
        t->range_max = &l->range_max;
        t->in_q = &l->in_q;
        t->out_q = &l->out_q;
        return 1;
    }
    if (op->kind == TS_OP_CONV || op->kind == TS_OP_DEPTHWISE) {
        ts_conv_layer_t *l = op->layer.conv;
        const uint32_t per_tap = l->depthwise ? l->out.c : (uint32_t)l->out.c * l->in.c;
        t->n_w = per_tap * l->kh * l->kw;
        t->n_c = l->out.c;
        t->w = l->w;
        t->bias = l->bias;
        t->w_scale = l->w_scale;
        t->out_mult = l->out_mult;
        t->out_shift = l->out_shift;
        t->master_w = l->master_w;
        t->master_b = l->master_b;
        t->grad_w = l->grad_w;
        t->grad_b = l->grad_b;
        t->range_min = &l->range_min;
        t->range_max = &l->range_max;
        t->in_q = &l->in_q;
        t->out_q = &l->out_q;
        return 1;
    }
    return 0;
}

void ts_cut_quant(ts_quant_t *q, float *range_min, float *range_max)
{
    /* Pools and reshapes keep their input's quantization: the cut's is the last trainable op's. */
    for (uint32_t i = TS_MODEL_N_OPS; i-- > 0;) {
        ts_trainable_t t;
        if (ts_op_trainable(i, &t)) {
            *q = *t.out_q;
            *range_min = *t.range_min;
            *range_max = *t.range_max;
            return;
        }
    }
}
