"""Reads the client part of an int8 .tflite model: a chain of FULLY_CONNECTED layers.

Uses TFLite Micro's flatbuffer object API (the same schema the interpreter reads), so the
scales, zero points, weights and biases are exactly the ones TFLM runs with. Anything the
client firmware cannot run raises UnsupportedLayer with one line naming the problem.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from tflite_micro.python.tflite_micro import runtime

from tinysplit.host.errors import BadInput, UnsupportedLayer

schema: Any = runtime.schema_fb

SUPPORTED_OPS = ("FULLY_CONNECTED",)
_FULLY_CONNECTED = 9
_ACT_NONE, _ACT_RELU = 0, 1
_INT8, _INT32 = 9, 2


@dataclass(frozen=True)
class FCSpec:
    """One FULLY_CONNECTED layer, TFLite layout: weights [C, K] (C = out, K = in features)."""

    in_features: int
    out_features: int
    relu: bool
    input_scale: float  # exact float32 values
    input_zp: int
    output_scale: float
    output_zp: int
    weights: npt.NDArray[np.int8]  # [C, K]
    weight_scales: npt.NDArray[np.float32]  # [C], per-channel symmetric (zero point 0)
    bias: npt.NDArray[np.int32]  # [C], scale input_scale * weight_scales[c]


def _enum_name(enum_cls: Any, value: int) -> str:
    for name, v in vars(enum_cls).items():
        if not name.startswith("_") and v == value:
            return str(name)
    return str(value)


def _load(b: bytes) -> Any:
    try:
        model = runtime.convert_bytearray_to_object(bytearray(b))
    except Exception as e:  # flatbuffers raises assorted errors on garbage
        raise BadInput(f"not a .tflite flatbuffer ({type(e).__name__}: {e})") from e
    if not model.subgraphs:
        raise BadInput("the .tflite model has no subgraph")
    return model


def _per_tensor_quant(tensor: Any, what: str) -> tuple[float, int]:
    q = tensor.quantization
    if q is None or q.scale is None or len(q.scale) != 1:
        raise UnsupportedLayer(f"{what} tensor is not per-tensor quantized int8")
    zp = 0 if q.zeroPoint is None else int(q.zeroPoint[0])
    return float(np.float32(q.scale[0])), zp


def _tensor_type(tensor: Any) -> str:
    return _enum_name(schema.TensorType, int(tensor.type))


def _buffer(b: bytes, model: Any, tensor: Any, dtype: type[np.generic]) -> npt.NDArray[Any]:
    buf = model.buffers[tensor.buffer]
    if buf.data is not None:
        raw = bytes(np.asarray(buf.data, dtype=np.uint8))
    elif buf.offset > 1:  # large models keep buffers after the flatbuffer
        raw = b[buf.offset : buf.offset + buf.size]
    else:
        raise UnsupportedLayer(f"tensor {tensor.name!r} is not a constant (weights must be)")
    return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype)


def read_io_quant(b: bytes) -> tuple[tuple[float, int], tuple[float, int]]:
    """((input scale, zero point), (output scale, zero point)) of the model's first input and
    output, which must be int8."""
    model = _load(b)
    sg = model.subgraphs[0]
    io = []
    for what, idx in (("model input", sg.inputs[0]), ("model output", sg.outputs[0])):
        t = sg.tensors[idx]
        if int(t.type) != _INT8:
            raise UnsupportedLayer(
                f"{what} is {_tensor_type(t)}; export with inference_input_type/"
                "inference_output_type tf.int8"
            )
        io.append(_per_tensor_quant(t, what))
    return io[0], io[1]


def _read_fc(b: bytes, model: Any, sg: Any, op: Any) -> FCSpec:
    opts = op.builtinOptions
    act = int(opts.fusedActivationFunction) if opts is not None else _ACT_NONE
    if act not in (_ACT_NONE, _ACT_RELU):
        name = _enum_name(schema.ActivationFunctionType, act)
        raise UnsupportedLayer(
            f"FULLY_CONNECTED with fused {name} is not supported (supported: NONE, RELU)"
        )
    if opts is not None and int(opts.weightsFormat) != 0:
        raise UnsupportedLayer("FULLY_CONNECTED with shuffled weights is not supported")

    x_t = sg.tensors[op.inputs[0]]
    w_t = sg.tensors[op.inputs[1]]
    y_t = sg.tensors[op.outputs[0]]
    for what, t in (("input", x_t), ("weights", w_t), ("output", y_t)):
        if int(t.type) != _INT8:
            raise UnsupportedLayer(
                f"FULLY_CONNECTED {what} is {_tensor_type(t)}; the client runs int8 only "
                "(supported: FULLY_CONNECTED int8 with int32 bias)"
            )
    in_scale, in_zp = _per_tensor_quant(x_t, "FULLY_CONNECTED input")
    out_scale, out_zp = _per_tensor_quant(y_t, "FULLY_CONNECTED output")

    shape = [int(d) for d in w_t.shape]
    if len(shape) != 2:
        raise UnsupportedLayer(f"FULLY_CONNECTED weights of shape {shape} (expected [C, K])")
    c, k = shape
    w = _buffer(b, model, w_t, np.int8).reshape(c, k)
    wq = w_t.quantization
    if wq is None or wq.scale is None or len(wq.scale) not in (1, c):
        raise UnsupportedLayer("FULLY_CONNECTED weights are not int8 per-channel quantized")
    if wq.zeroPoint is not None and np.any(np.asarray(wq.zeroPoint) != 0):
        raise UnsupportedLayer("FULLY_CONNECTED weights have a non-zero zero point")
    if len(wq.scale) == c and c > 1 and int(wq.quantizedDimension) != 0:
        raise UnsupportedLayer("FULLY_CONNECTED weights are quantized along the input axis")
    w_scales = np.broadcast_to(np.asarray(wq.scale, dtype=np.float32), (c,)).copy()

    bias = np.zeros(c, dtype=np.int32)
    if len(op.inputs) > 2 and int(op.inputs[2]) >= 0:
        b_t = sg.tensors[op.inputs[2]]
        if int(b_t.type) != _INT32:
            raise UnsupportedLayer(
                f"FULLY_CONNECTED bias is {_tensor_type(b_t)} (supported: int32 bias)"
            )
        bias = _buffer(b, model, b_t, np.int32).reshape(c)

    return FCSpec(
        in_features=k,
        out_features=c,
        relu=act == _ACT_RELU,
        input_scale=in_scale,
        input_zp=in_zp,
        output_scale=out_scale,
        output_zp=out_zp,
        weights=w,
        weight_scales=w_scales,
        bias=bias,
    )


def read_fc_layers(b: bytes) -> list[FCSpec]:
    """The FULLY_CONNECTED layers of the model's first subgraph, input to output.

    The graph must be a plain chain of int8 FULLY_CONNECTED ops (no QUANTIZE/DEQUANTIZE:
    export with int8 input and output types).
    """
    model = _load(b)
    sg = model.subgraphs[0]
    specs: list[FCSpec] = []
    prev_out = int(sg.inputs[0])
    for op in sg.operators or []:
        code = runtime.get_builtin_code_from_operator_code(model.operatorCodes[op.opcodeIndex])
        if int(code) != _FULLY_CONNECTED:
            name = _enum_name(schema.BuiltinOperator, int(code))
            raise UnsupportedLayer(
                f"operator {name} is not supported on the client "
                f"(supported: {', '.join(SUPPORTED_OPS)})"
            )
        if int(op.inputs[0]) != prev_out:
            raise UnsupportedLayer("the client layers are not a single chain from the input")
        specs.append(_read_fc(b, model, sg, op))
        prev_out = int(op.outputs[0])
    if not specs:
        raise UnsupportedLayer(
            f"the model has no layer to run (supported: {', '.join(SUPPORTED_OPS)})"
        )
    if prev_out != int(sg.outputs[0]):
        raise UnsupportedLayer("the model's output is not the last FULLY_CONNECTED layer")
    return specs
