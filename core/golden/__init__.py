"""Numpy golden model of the client's int8 kernels, bit-exact with firmware/kernels/*.c.

Written from docs/int8-training.md and docs/int8-conv.md independently of the C; tests/firmware
checks the two against each other (and the forward against TFLite Micro). One module per op,
forward and backward together (fully_connected, conv, depthwise, pool); params is the training
state every trainable op shares (SGD, running range, re-quantization); ops is the op registry
and step the whole client training step over it.
"""

from .fully_connected import fc_backward_input, fc_backward_weights, fc_forward, fc_observe_range
from .gradient import quantize_gradient, quantize_gradient_packed
from .layer import FCLayer, act_min
from .quant import multiply_by_quantized_multiplier, quantize_multiplier, ts_round

__all__ = [
    "FCLayer",
    "act_min",
    "fc_backward_input",
    "fc_backward_weights",
    "fc_forward",
    "fc_observe_range",
    "multiply_by_quantized_multiplier",
    "quantize_gradient",
    "quantize_gradient_packed",
    "quantize_multiplier",
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
from .depthwise import (
    depthwise_conv2d_backward_input,
    depthwise_conv2d_backward_weights,
    depthwise_conv2d_forward,
)
from .params import range_update, requantize, sgd_step
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
    "depthwise_conv2d_backward_input",
    "depthwise_conv2d_backward_weights",
    "depthwise_conv2d_forward",
    "grad_requantize",
    "max_pool2d_backward",
    "max_pool2d_forward",
    "out_size",
    "pad_before",
    "range_update",
    "requantize",
    "sgd_step",
]
