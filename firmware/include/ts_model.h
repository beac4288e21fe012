/*
 * The exported client model as the firmware reads it (docs/model-format.md): an op table,
 * input to cut, that codegen emits into model_data.c. The kinds are the firmware's op registry
 * (firmware/client/ops.c has one row per kind); codegen's twin is core/golden/ops.py.
 */
#ifndef TS_MODEL_H
#define TS_MODEL_H

#include <stdint.h>

#include "ts_kernels.h"

/** Kind of a client op (ts_model_op_t.kind): the index of its row in the op registry. */
typedef enum {
    TS_OP_FC = 0,        /**< ts_fc_layer_t, input [1][1][K] */
    TS_OP_CONV = 1,      /**< ts_conv_layer_t, depthwise == 0 */
    TS_OP_DEPTHWISE = 2, /**< ts_conv_layer_t, depthwise == 1 */
    TS_OP_MAX_POOL = 3,  /**< ts_pool_params_t */
    TS_OP_AVG_POOL = 4,  /**< ts_pool_params_t */
    TS_OP_RESHAPE = 5,   /**< no kernel: the output is the input's bytes */
    TS_OP_N_KINDS = 6
} ts_op_kind_t;

/** Where an op's output lives (ts_model_op_t.out_buf). */
typedef enum {
    TS_BUF_INPUT = 0, /**< the sample itself (a reshape of the input): ts_train_x / ts_test_x */
    TS_BUF_KEPT = 1,  /**< ts_kept_acts + out_offset: [MAX_BATCH][out bytes], for backward */
    TS_BUF_ACT = 2    /**< ts_act_buf + out_offset: one sample's output */
} ts_buf_t;

/** How backward gets an output it reads but the minibatch does not keep
 *  (ts_model_op_t.rebuild; firmware/client/train.c). */
typedef enum {
    TS_REBUILD_NONE = 0,    /**< kept for the minibatch, or not read by backward */
    TS_REBUILD_FORWARD = 1, /**< re-run the forward of the sample from its input up to here */
    TS_REBUILD_MASK = 2,    /**< its ReLU mask, 1 bit per value, is kept (ts_code_buf): the
                                 mask is the output's only reader */
    TS_REBUILD_ARGMAX = 3   /**< the max pool after it: per pooled value the window's argmax
                                 (bits 0-2) and whether the ReLU passes it (bit 3), 4 bits */
} ts_rebuild_t;

/** One client op, input to cut. */
typedef struct {
    uint8_t kind;           /**< ts_op_kind_t */
    uint8_t out_buf;        /**< ts_buf_t; a reshape shares its input's buffer and offset */
    uint8_t rebuild;        /**< ts_rebuild_t: how backward gets an output it reads but the
                                 minibatch does not keep (TS_REBUILD_NONE: kept, or unread) */
    uint8_t input_grad;     /**< 1: backward computes the gradient at this op's input */
    ts_dims_t in;           /**< input dims [H][W][C] (FC: [1][1][K]) */
    ts_dims_t out;          /**< output dims */
    uint32_t out_offset;    /**< bytes into the out_buf buffer */
    uint32_t scratch_bytes; /**< ts_scratch bytes this op's backward needs (get_buffer_size) */
    union {
        ts_fc_layer_t *fc;
        ts_conv_layer_t *conv;
        const ts_pool_params_t *pool;
    } layer; /**< by kind; all NULL for a reshape */
} ts_model_op_t;

#endif
