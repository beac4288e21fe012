/*
 * The op registry: what the client does with each kind of op in the exported op table
 * (ts_model.h). One row per kind; train.c, the commit and the state image go through it and
 * never switch on a kind. A new op adds its kernels (ts_kernels.h), a kind (ts_model.h) and a
 * row here; its golden twin is one entry of core/golden/ops.py.
 */
#include "client_internal.h"

/* ---- fully connected ---- */

static ts_status_t fc_check(const ts_model_op_t *op)
{
    return ts_fully_connected_check(op->layer.fc);
}

static ts_params_t *fc_params(const ts_model_op_t *op)
{
    return &op->layer.fc->p;
}

static void fc_forward(const ts_model_op_t *op, const int8_t *x, int8_t *y, float *bmin,
                       float *bmax)
{
    /* The accumulators go to ts_scratch only when a range is observed. */
    TS_KERNEL(fully_connected_forward)(op->layer.fc, x, y, bmin ? ts_scratch : 0);
    if (bmin) {
        ts_fully_connected_observe_range(op->layer.fc, ts_scratch, bmin, bmax);
    }
}

static void fc_backward(const ts_model_op_t *op, const int8_t *x, const int8_t *y, int8_t *g,
                        float s_g, int8_t *gx, float *s_gx)
{
    ts_fc_layer_t *l = op->layer.fc;
    ts_act_backward(l->act, l->p.out_q, g, y, l->out_features);
    TS_KERNEL(fully_connected_backward_weights)(l, x, g, s_g);
    if (gx) {
        TS_KERNEL(fully_connected_backward_input)(l, g, s_g, ts_scratch, gx, s_gx);
    }
}

static uint8_t fc_act(const ts_model_op_t *op)
{
    return op->layer.fc->act;
}

/* ---- Conv2D and DepthwiseConv2D ---- */

static ts_status_t conv_check(const ts_model_op_t *op)
{
    const ts_conv_layer_t *l = op->layer.conv;
    if (l->depthwise != (op->kind == TS_OP_DEPTHWISE)) {
        return TS_ERR_ARG;
    }
    return ts_conv_check(l);
}

static ts_params_t *conv_params(const ts_model_op_t *op)
{
    return &op->layer.conv->p;
}

static void conv_forward(const ts_model_op_t *op, const int8_t *x, int8_t *y, float *bmin,
                         float *bmax)
{
    TS_KERNEL(conv2d_forward)(op->layer.conv, x, y, bmin, bmax);
}

static void conv_backward(const ts_model_op_t *op, const int8_t *x, const int8_t *y, int8_t *g,
                          float s_g, int8_t *gx, float *s_gx)
{
    ts_conv_layer_t *l = op->layer.conv;
    ts_act_backward(l->act, l->p.out_q, g, y, ts_op_out_bytes(op));
#ifdef TS_REFERENCE_KERNELS
    ts_conv2d_backward_weights(l, x, g, s_g);
#else
    /* ts_scratch is free until the input gradient: the plan sizes it for both */
    ts_conv2d_backward_weights_fast(l, x, g, s_g, ts_scratch);
#endif
    if (gx) {
        TS_KERNEL(conv2d_backward_input)(l, g, s_g, ts_scratch, gx, s_gx);
    }
}

static uint8_t conv_act(const ts_model_op_t *op)
{
    return op->layer.conv->act;
}

static void depthwise_forward(const ts_model_op_t *op, const int8_t *x, int8_t *y, float *bmin,
                              float *bmax)
{
    TS_KERNEL(depthwise_conv2d_forward)(op->layer.conv, x, y, bmin, bmax);
}

static void depthwise_backward(const ts_model_op_t *op, const int8_t *x, const int8_t *y,
                               int8_t *g, float s_g, int8_t *gx, float *s_gx)
{
    ts_conv_layer_t *l = op->layer.conv;
    ts_act_backward(l->act, l->p.out_q, g, y, ts_op_out_bytes(op));
    ts_depthwise_conv2d_backward_weights(l, x, g, s_g);
    if (gx) {
        ts_depthwise_conv2d_backward_input(l, g, s_g, ts_scratch, gx, s_gx);
    }
}

/* ---- pooling ---- */

static ts_status_t pool_check(const ts_model_op_t *op)
{
    return ts_pool_check(op->layer.pool);
}

static void max_pool_forward(const ts_model_op_t *op, const int8_t *x, int8_t *y, float *bmin,
                             float *bmax)
{
    (void)bmin; /* a pool keeps its input's quantization: nothing to observe */
    (void)bmax;
    ts_max_pool2d_forward(op->layer.pool, x, y);
}

static void max_pool_backward(const ts_model_op_t *op, const int8_t *x, const int8_t *y,
                              int8_t *g, float s_g, int8_t *gx, float *s_gx)
{
    (void)y;
    ts_max_pool2d_backward(op->layer.pool, x, g, s_g, ts_scratch, gx, s_gx);
}

static void avg_pool_forward(const ts_model_op_t *op, const int8_t *x, int8_t *y, float *bmin,
                             float *bmax)
{
    (void)bmin;
    (void)bmax;
    ts_avg_pool2d_forward(op->layer.pool, x, y);
}

static void avg_pool_backward(const ts_model_op_t *op, const int8_t *x, const int8_t *y,
                              int8_t *g, float s_g, int8_t *gx, float *s_gx)
{
    (void)x;
    (void)y;
    ts_avg_pool2d_backward(op->layer.pool, g, s_g, ts_scratch, gx, s_gx);
}

/* ---- the registry ---- */

const ts_op_def_t ts_op_defs[TS_OP_N_KINDS] = {
    [TS_OP_FC] = {"fully_connected", fc_check, fc_params, fc_forward, fc_backward, fc_act},
    [TS_OP_CONV] = {"conv2d", conv_check, conv_params, conv_forward, conv_backward, conv_act},
    [TS_OP_DEPTHWISE] = {"depthwise_conv2d", conv_check, conv_params, depthwise_forward,
                         depthwise_backward, conv_act},
    [TS_OP_MAX_POOL] = {"max_pool2d", pool_check, 0, max_pool_forward, max_pool_backward, 0},
    [TS_OP_AVG_POOL] = {"avg_pool2d", pool_check, 0, avg_pool_forward, avg_pool_backward, 0},
    [TS_OP_RESHAPE] = {"reshape", 0, 0, 0, 0, 0},
};

/* ---- the exported model through the registry ---- */

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

ts_params_t *ts_op_params(uint32_t i)
{
    const ts_model_op_t *op = &ts_model_ops[i];
    if (op->kind >= TS_OP_N_KINDS) {
        return 0; /* refused by ts_model_check at boot */
    }
    ts_op_params_fn params = ts_op_defs[op->kind].params;
    return params ? params(op) : 0;
}

ts_status_t ts_model_check(void)
{
    if (ts_cut_params() == 0) {
        return TS_ERR_ARG; /* nothing to train */
    }
#if TS_MODEL_HEAD
    if (ts_fully_connected_check(&ts_model_head) != TS_OK ||
        ts_model_head.in_features != TS_MODEL_HEAD_SIZE ||
        ts_model_head.out_features != TS_MODEL_N_CLASSES) {
        return TS_ERR_ARG;
    }
#endif
    for (uint32_t i = 0; i < TS_MODEL_N_OPS; ++i) {
        const ts_model_op_t *op = &ts_model_ops[i];
        if (op->kind >= TS_OP_N_KINDS) {
            return TS_ERR_ARG;
        }
        const ts_op_def_t *def = &ts_op_defs[op->kind];
        if (def->check && def->check(op) != TS_OK) {
            return TS_ERR_ARG;
        }
    }
    return TS_OK;
}

const ts_params_t *ts_cut_params(void)
{
    /* Pools and reshapes keep their input's quantization: the cut's is the last trainable op's. */
    for (uint32_t i = TS_MODEL_N_OPS; i-- > 0;) {
        const ts_params_t *p = ts_op_params(i);
        if (p) {
            return p;
        }
    }
    return 0;
}
