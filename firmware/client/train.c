/*
 * On-device training of the client over the op table (docs/model-format.md): forward with kept
 * activations and range observation, backward per sample from the int8 cut gradient (outputs
 * that are not kept are recomputed from the sample first, or rebuilt from their codes), and
 * the minibatch commit. The kernel
 * calls and their order are the ones the numpy golden model's ops_train_step makes
 * (core/golden/step.py; docs/int8-conv.md "A training step"); change one, change both.
 * Every op goes through its row of the op registry (ops.c): nothing here knows an op kind.
 */
#include <math.h>

#include "client_internal.h"

/* ---- instruction-count markers ---------------------------------------------------------------
 * Every sample's forward (TRAIN_STEP) and backward pass runs between ts_bench_begin() and
 * ts_bench_end(): a QEMU instruction-count plugin given their addresses counts exactly what one
 * sample costs on the device (host/costmodel/count.py). Two empty calls otherwise. */
static volatile uint32_t s_marker;

TS_NOIPA void ts_bench_begin(void)
{
    s_marker = 1u;
}

TS_NOIPA void ts_bench_end(void)
{
    s_marker = 2u;
}

static const int8_t *train_sample(uint32_t pos)
{
    return &ts_train_x[(uint32_t)ts_client.index[pos] * TS_MODEL_INPUT_SIZE];
}

/* Forward of ops 0..last on sample x at minibatch position pos; observe: fold each trainable
 * op's outputs into the minibatch range. Returns the output of op `last`. */
static const int8_t *forward(const int8_t *x, uint32_t pos, int observe, uint32_t last)
{
    const int8_t *in = x;
    for (uint32_t i = 0; i <= last; ++i) {
        const ts_model_op_t *op = &ts_model_ops[i];
        const ts_op_def_t *def = &ts_op_defs[op->kind];
        if (!def->forward) {
            continue; /* NHWC int8 keeps its bytes: the output is the input */
        }
        int8_t *out = ts_op_output(i, pos, x);
        const int observed = observe && def->params;
        def->forward(op, in, out, observed ? &ts_client.batch_min[i] : 0,
                     observed ? &ts_client.batch_max[i] : 0);
#if TS_MODEL_CODE_BYTES > 0
        if (observe && op->rebuild >= TS_REBUILD_MASK) {
            ts_codes_record(i, pos, out); /* a training forward: what backward will read */
        }
#endif
        in = out;
    }
    return in;
}

/* Index of the last op whose output backward reads but the minibatch does not keep; -1: none. */
static int32_t last_recomputed(void)
{
    for (uint32_t i = TS_MODEL_N_OPS; i-- > 0;) {
        if (ts_model_ops[i].rebuild == TS_REBUILD_FORWARD) {
            return (int32_t)i;
        }
    }
    return -1;
}

const int8_t *ts_train_cut_output(uint16_t pos)
{
    const uint32_t last = TS_MODEL_N_OPS - 1u;
    uint32_t i = last;
    while (i > 0 && !ts_op_defs[ts_model_ops[i].kind].forward) {
        --i;
    }
    if (ts_model_ops[i].out_buf == TS_BUF_KEPT) {
        return ts_op_output(i, pos, train_sample(pos));
    }
    /* Not kept (a pool at the cut, say): the same weights give the same output again. */
    return forward(train_sample(pos), pos, 0, last);
}

void ts_train_drop_staged(void)
{
    for (uint32_t i = 0; i < TS_MODEL_N_OPS; ++i) {
        ts_params_t *p = ts_op_params(i);
        if (!p) {
            continue;
        }
        const uint32_t n_w = ts_params_weights(p);
        for (uint32_t k = 0; k < n_w; ++k) {
            p->grad_w[k] = 0.0f;
        }
        for (uint32_t c = 0; c < p->channels; ++c) {
            p->grad_b[c] = 0.0f;
        }
    }
}

void ts_train_begin_batch(void)
{
    for (uint32_t i = 0; i < TS_MODEL_N_OPS; ++i) {
        ts_client.batch_min[i] = INFINITY;
        ts_client.batch_max[i] = -INFINITY;
    }
}

const int8_t *ts_train_forward(const int8_t *x, int keep_pos)
{
    /* Evaluation runs only when no minibatch is in flight, so position 0 is free to use. */
    const uint32_t pos = keep_pos >= 0 ? (uint32_t)keep_pos : 0u;
    if (keep_pos >= 0) {
        ts_bench_begin();
    }
    const int8_t *y = forward(x, pos, keep_pos >= 0, TS_MODEL_N_OPS - 1u);
    if (keep_pos >= 0) {
        ts_bench_end();
    }
    return y;
}

void ts_train_backward(uint16_t pos, const int8_t *grad, float grad_scale)
{
    ts_bench_begin();
    const int8_t *x = train_sample(pos);
    const int32_t recompute = last_recomputed();
    if (recompute >= 0) {
        (void)forward(x, pos, 0, (uint32_t)recompute);
    }
#if TS_MODEL_CODE_BYTES > 0
    for (uint32_t i = (uint32_t)(recompute + 1); i < TS_MODEL_N_OPS; ++i) {
        if (ts_model_ops[i].rebuild >= TS_REBUILD_MASK) {
            ts_codes_rebuild(i, pos, ts_op_output(i, pos, x));
        }
    }
#endif
    uint32_t cur = 0;
    int8_t *g = ts_grad_buf[cur];
    for (uint32_t k = 0; k < TS_MODEL_CUT_SIZE; ++k) {
        g[k] = grad[k];
    }
    float s = grad_scale;
    for (uint32_t i = TS_MODEL_N_OPS; i-- > 0;) {
        const ts_model_op_t *op = &ts_model_ops[i];
        const ts_op_def_t *def = &ts_op_defs[op->kind];
        if (!def->backward) {
            continue; /* a reshape: the gradient keeps its bytes */
        }
        if (!def->params && !op->input_grad) {
            break; /* a pool in front of the first trainable op: nothing left to train */
        }
        const int8_t *in = i == 0 ? x : ts_op_output(i - 1u, pos, x);
        const int8_t *y = ts_op_output(i, pos, x);
        int8_t *gx = op->input_grad ? ts_grad_buf[cur ^ 1u] : 0;
        def->backward(op, in, y, g, s, gx, &s);
        if (!op->input_grad) {
            break; /* the first trainable op: its input is the sample */
        }
        g = gx;
        cur ^= 1u;
    }
    ts_bench_end();
}

/* 1 if ts_sgd_step(p, lr) keeps every master weight and bias within TS_WEIGHT_LIMIT: the very
 * expression it evaluates (-ffp-contract=off: same rounding). */
static int sgd_ok(const ts_params_t *p, float lr)
{
    const uint32_t n_w = ts_params_weights(p);
    for (uint32_t k = 0; k < n_w; ++k) {
        const float v = p->master_w[k] - lr * p->grad_w[k];
        if (!(v >= -TS_WEIGHT_LIMIT && v <= TS_WEIGHT_LIMIT)) {
            return 0;
        }
    }
    for (uint32_t c = 0; c < p->channels; ++c) {
        const float v = p->master_b[c] - lr * p->grad_b[c];
        if (!(v >= -TS_WEIGHT_LIMIT && v <= TS_WEIGHT_LIMIT)) {
            return 0;
        }
    }
    return 1;
}

int ts_train_commit_ok(float lr)
{
    for (uint32_t i = 0; i < TS_MODEL_N_OPS; ++i) {
        const ts_params_t *p = ts_op_params(i);
        if (!p) {
            continue;
        }
        /* An observed range folds into the running range: it must be finite (an unobserved
         * one, min > max, is skipped by the range update). */
        const float bmin = ts_client.batch_min[i];
        const float bmax = ts_client.batch_max[i];
        if (bmin <= bmax && !(bmin >= -TS_RANGE_LIMIT && bmax <= TS_RANGE_LIMIT)) {
            return 0;
        }
        if (!sgd_ok(p, lr)) {
            return 0;
        }
    }
#if TS_MODEL_HEAD
    if (!sgd_ok(&ts_model_head.p, lr)) {
        return 0;
    }
#endif
    return 1;
}

void ts_train_commit(float lr)
{
    for (uint32_t i = 0; i < TS_MODEL_N_OPS; ++i) {
        ts_params_t *p = ts_op_params(i);
        if (p) {
            ts_sgd_step(p, lr);
            ts_range_update(p, ts_client.batch_min[i], ts_client.batch_max[i]);
        }
    }
    /* A trainable op's input quantization is the previous trainable op's output quantization
     * (pools and reshapes pass it through unchanged); the first one's input stays fixed. */
    const ts_params_t *prev = 0;
    for (uint32_t i = 0; i < TS_MODEL_N_OPS; ++i) {
        ts_params_t *p = ts_op_params(i);
        if (p) {
            if (prev) {
                p->in_q = prev->out_q;
            }
            prev = p;
        }
    }
    for (uint32_t i = 0; i < TS_MODEL_N_OPS; ++i) {
        ts_params_t *p = ts_op_params(i);
        if (p) {
            ts_requantize(p);
        }
    }
#if TS_MODEL_HEAD
    /* The head: its logits are float (no output range), its input quantization comes with
     * each sample (HEAD_IN), so SGD and the int8 weights are all it takes. */
    ts_sgd_step(&ts_model_head.p, lr);
    ts_requantize(&ts_model_head.p);
#endif
}
