/*
 * On-device training of the client layers: forward with kept activations and range observation,
 * backward per sample from the int8 cut gradient, and the minibatch commit. The kernel calls and
 * their order are the ones the numpy golden model's client_train_step makes
 * (docs/int8-training.md); change one, change both.
 */
#include <math.h>

#include "client_internal.h"
#include "ts_kernels.h"

/* Output of layer l for the sample at minibatch position pos, kept for the backward pass. */
static int8_t *kept(uint32_t layer, uint32_t pos)
{
    uint32_t offset = 0;
    for (uint32_t l = 0; l < layer; ++l) {
        offset += (uint32_t)TS_MODEL_MAX_BATCH * ts_model_layers[l].out_features;
    }
    return &ts_kept_acts[offset + pos * ts_model_layers[layer].out_features];
}

const int8_t *ts_train_kept_output(uint16_t pos)
{
    return kept(TS_MODEL_N_LAYERS - 1u, pos);
}

void ts_train_drop_staged(void)
{
    for (uint32_t l = 0; l < TS_MODEL_N_LAYERS; ++l) {
        ts_fc_layer_t *layer = &ts_model_layers[l];
        const uint32_t c_n = layer->out_features;
        const uint32_t ck = c_n * layer->in_features;
        for (uint32_t i = 0; i < ck; ++i) {
            layer->grad_w[i] = 0.0f;
        }
        for (uint32_t c = 0; c < c_n; ++c) {
            layer->grad_b[c] = 0.0f;
        }
    }
}

void ts_train_begin_batch(void)
{
    for (uint32_t l = 0; l < TS_MODEL_N_LAYERS; ++l) {
        ts_client.batch_min[l] = INFINITY;
        ts_client.batch_max[l] = -INFINITY;
    }
}

const int8_t *ts_train_forward(const int8_t *x, int keep_pos)
{
    /* Evaluation runs only when no minibatch is in flight, so position 0 is free to use. */
    uint32_t pos = keep_pos >= 0 ? (uint32_t)keep_pos : 0u;
    const int8_t *in = x;
    for (uint32_t l = 0; l < TS_MODEL_N_LAYERS; ++l) {
        ts_fc_layer_t *layer = &ts_model_layers[l];
        int8_t *out = kept(l, pos);
        ts_fc_forward(layer, in, out, ts_scratch);
        if (keep_pos >= 0) {
            ts_fc_observe_range(layer, ts_scratch, &ts_client.batch_min[l],
                                &ts_client.batch_max[l]);
        }
        in = out;
    }
    return in;
}

void ts_train_backward(uint16_t pos, const int8_t *grad, float grad_scale)
{
    uint32_t cur = 0;
    int8_t *g = ts_grad_buf[cur];
    for (uint32_t k = 0; k < TS_MODEL_CUT_SIZE; ++k) {
        g[k] = grad[k];
    }
    float s = grad_scale;
    for (uint32_t i = TS_MODEL_N_LAYERS; i-- > 0;) {
        ts_fc_layer_t *layer = &ts_model_layers[i];
        if (layer->relu) {
            ts_relu_backward(g, kept(i, pos), layer->out_features, ts_fc_act_min(layer));
        }
        const int8_t *x = i == 0 ? &ts_train_x[(uint32_t)ts_client.index[pos] * TS_MODEL_INPUT_SIZE]
                                 : kept(i - 1u, pos);
        ts_fc_backward_weights(layer, x, g, s);
        if (i > 0) {
            int8_t *gx = ts_grad_buf[cur ^ 1u];
            ts_fc_backward_input(layer, g, s, ts_scratch, gx, &s);
            g = gx;
            cur ^= 1u;
        }
    }
}

int ts_train_commit_ok(float lr)
{
    for (uint32_t l = 0; l < TS_MODEL_N_LAYERS; ++l) {
        const ts_fc_layer_t *layer = &ts_model_layers[l];
        /* An observed range folds into the running range: it must be finite (an unobserved
         * one, min > max, is skipped by ts_range_update). */
        const float bmin = ts_client.batch_min[l];
        const float bmax = ts_client.batch_max[l];
        if (bmin <= bmax && !(bmin >= -TS_RANGE_LIMIT && bmax <= TS_RANGE_LIMIT)) {
            return 0;
        }
        const uint32_t c_n = layer->out_features;
        const uint32_t ck = c_n * layer->in_features;
        /* The very expression ts_sgd_step_fc evaluates (-ffp-contract=off: same rounding). */
        for (uint32_t i = 0; i < ck; ++i) {
            const float v = layer->master_w[i] - lr * layer->grad_w[i];
            if (!(v >= -TS_WEIGHT_LIMIT && v <= TS_WEIGHT_LIMIT)) {
                return 0;
            }
        }
        for (uint32_t c = 0; c < c_n; ++c) {
            const float v = layer->master_b[c] - lr * layer->grad_b[c];
            if (!(v >= -TS_WEIGHT_LIMIT && v <= TS_WEIGHT_LIMIT)) {
                return 0;
            }
        }
    }
    return 1;
}

void ts_train_commit(float lr)
{
    for (uint32_t l = 0; l < TS_MODEL_N_LAYERS; ++l) {
        ts_sgd_step_fc(&ts_model_layers[l], lr);
        ts_range_update(&ts_model_layers[l], ts_client.batch_min[l], ts_client.batch_max[l]);
    }
    /* A layer's input quantization is its predecessor's output quantization. */
    for (uint32_t l = 1; l < TS_MODEL_N_LAYERS; ++l) {
        ts_model_layers[l].in_q = ts_model_layers[l - 1u].out_q;
    }
    for (uint32_t l = 0; l < TS_MODEL_N_LAYERS; ++l) {
        ts_fc_requantize(&ts_model_layers[l]);
    }
}
