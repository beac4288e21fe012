"""Numpy golden model of the client's int8 kernels, bit-exact with firmware/kernels/*.c.

Written from docs/int8-training.md independently of the C; tests/firmware checks the two
against each other (and the forward against TFLite Micro).
"""

from .backward import fc_backward_input, fc_backward_weights
from .fully_connected import fc_forward
from .gradient import quantize_gradient
from .layer import FCLayer, act_min
from .optimizer import fc_requantize, sgd_step_fc
from .output_range import fc_observe_range, range_update
from .quant import multiply_by_quantized_multiplier, quantize_multiplier, ts_round
from .relu import relu_backward, relu_forward
from .train import client_forward, client_train_step

__all__ = [
    "FCLayer",
    "act_min",
    "client_forward",
    "client_train_step",
    "fc_backward_input",
    "fc_backward_weights",
    "fc_forward",
    "fc_observe_range",
    "fc_requantize",
    "multiply_by_quantized_multiplier",
    "quantize_gradient",
    "quantize_multiplier",
    "range_update",
    "relu_backward",
    "relu_forward",
    "sgd_step_fc",
    "ts_round",
]

# Convolutional client layers (docs/int8-conv.md).
from .conv import (
    conv2d_backward_input,
    conv2d_backward_weights,
    conv2d_forward,
    conv_observe_range,
)
from .conv_layer import (
    ACT_NONE,
    ACT_RELU,
    ACT_RELU6,
    ACTIVATIONS,
    PADDING_SAME,
    PADDING_VALID,
    PADDINGS,
    ConvLayer,
    PoolParams,
    act_backward,
    act_range,
    grad_requantize,
    out_size,
    pad_before,
)
from .conv_optimizer import conv_range_update, conv_requantize, conv_sgd_step
from .depthwise import (
    depthwise_conv2d_backward_input,
    depthwise_conv2d_backward_weights,
    depthwise_conv2d_forward,
)
from .pool import (
    avg_pool2d_backward,
    avg_pool2d_forward,
    max_pool2d_backward,
    max_pool2d_forward,
)

__all__ += [
    "ACTIVATIONS",
    "ACT_NONE",
    "ACT_RELU",
    "ACT_RELU6",
    "PADDINGS",
    "PADDING_SAME",
    "PADDING_VALID",
    "ConvLayer",
    "PoolParams",
    "act_backward",
    "act_range",
    "avg_pool2d_backward",
    "avg_pool2d_forward",
    "conv2d_backward_input",
    "conv2d_backward_weights",
    "conv2d_forward",
    "conv_observe_range",
    "conv_range_update",
    "conv_requantize",
    "conv_sgd_step",
    "depthwise_conv2d_backward_input",
    "depthwise_conv2d_backward_weights",
    "depthwise_conv2d_forward",
    "grad_requantize",
    "max_pool2d_backward",
    "max_pool2d_forward",
    "out_size",
    "pad_before",
]
