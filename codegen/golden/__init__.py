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
