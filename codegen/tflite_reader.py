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

from tinysplit.core.errors import BadInput, UnsupportedLayer

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


# ---- every client layer: FC, conv, depthwise conv, pooling, reshape (docs/int8-conv.md) -------

LAYER_OPS = (
    "FULLY_CONNECTED",
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "MAX_POOL_2D",
    "AVERAGE_POOL_2D",
    "RESHAPE",
    "EXPAND_DIMS",
    "SQUEEZE",
)
#: int32 shape arithmetic Keras' Flatten emits for a dynamic batch (SHAPE -> STRIDED_SLICE ->
#: PACK -> RESHAPE's shape input). It computes no data; the client uses the static shapes.
_SHAPE_OPS = ("SHAPE", "STRIDED_SLICE", "PACK", "CONCATENATION", "SLICE", "GATHER")
_ACT_RELU6 = 3
_PADDING_NAMES = {0: "same", 1: "valid"}  # schema Padding: SAME = 0, VALID = 1
_ACT_NAMES = {_ACT_NONE: "none", _ACT_RELU: "relu", _ACT_RELU6: "relu6"}


@dataclass(frozen=True)
class ConvSpec:
    """One CONV_2D or DEPTHWISE_CONV_2D (depth multiplier 1) layer, batch dim dropped.

    weights: [Cout, KH, KW, Cin] for a conv, [1, KH, KW, C] for a depthwise conv (TFLite
    layouts); one symmetric scale per output channel. A Keras Conv1D arrives as EXPAND_DIMS,
    this with H = KH = 1, and RESHAPE.
    """

    depthwise: bool
    in_shape: tuple[int, int, int]  # (H, W, Cin)
    out_shape: tuple[int, int, int]  # (OH, OW, Cout)
    kernel: tuple[int, int]  # (KH, KW)
    stride: tuple[int, int]  # (sh, sw)
    padding: str  # "same" | "valid"
    activation: str  # "none" | "relu" | "relu6"
    input_scale: float
    input_zp: int
    output_scale: float
    output_zp: int
    weights: npt.NDArray[np.int8]
    weight_scales: npt.NDArray[np.float32]  # [Cout]
    bias: npt.NDArray[np.int32]  # [Cout], scale input_scale * weight_scales[c]


@dataclass(frozen=True)
class PoolSpec:
    """One MAX_POOL_2D or AVERAGE_POOL_2D layer; input and output share scale and zero point."""

    kind: str  # "max" | "avg"
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    pool: tuple[int, int]  # (KH, KW)
    stride: tuple[int, int]
    padding: str
    scale: float
    zp: int


@dataclass(frozen=True)
class ReshapeSpec:
    """RESHAPE / EXPAND_DIMS / SQUEEZE (Keras Flatten, Reshape, the Conv1D wrapping): the NHWC
    int8 bytes stay as they are. Shapes without the batch dim."""

    op: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    scale: float
    zp: int


LayerSpec = FCSpec | ConvSpec | PoolSpec | ReshapeSpec


def _refuse(what: str) -> UnsupportedLayer:
    return UnsupportedLayer(f"{what} (supported: {', '.join(LAYER_OPS)})")


def _op_name(model: Any, op: Any) -> str:
    code = runtime.get_builtin_code_from_operator_code(model.operatorCodes[op.opcodeIndex])
    return _enum_name(schema.BuiltinOperator, int(code))


def _int8_io(sg: Any, op: Any, name: str) -> tuple[Any, Any]:
    x_t, y_t = sg.tensors[op.inputs[0]], sg.tensors[op.outputs[0]]
    for what, t in (("input", x_t), ("output", y_t)):
        if int(t.type) != _INT8:
            raise _refuse(f"{name} {what} is {_tensor_type(t)}; the client runs int8 only")
    return x_t, y_t


def _sample_shape(t: Any, name: str, rank: int | None = None) -> tuple[int, ...]:
    """The tensor's shape without its batch dim of 1."""
    shape = tuple(int(d) for d in t.shape)
    if not shape or shape[0] != 1 or (rank is not None and len(shape) != rank + 1):
        raise _refuse(f"{name} tensor of shape {list(shape)} (expected batch 1, NHWC)")
    return shape[1:]


def _hwc(t: Any, name: str) -> tuple[int, int, int]:
    h, w, c = _sample_shape(t, name, 3)
    return h, w, c


def _check_geometry(name: str, padding: str, in_hw: tuple[int, int], out_hw: tuple[int, int],
                    k: tuple[int, int], s: tuple[int, int]) -> None:  # fmt: skip
    for n_in, n_out, kk, ss in zip(in_hw, out_hw, k, s, strict=True):
        want = (n_in + ss - 1) // ss if padding == "same" else max(0, (n_in - kk + ss) // ss)
        if n_out != want or n_out < 1 or ss < 1:
            raise _refuse(f"{name} output size {n_out} is not TFLite's {want} for {padding}")


def _read_conv(b: bytes, model: Any, sg: Any, op: Any, name: str) -> ConvSpec:
    depthwise = name == "DEPTHWISE_CONV_2D"
    opts = op.builtinOptions
    act = int(opts.fusedActivationFunction)
    if act not in _ACT_NAMES:
        act_name = _enum_name(schema.ActivationFunctionType, act)
        raise _refuse(f"{name} with fused {act_name} (supported activations: NONE, RELU, RELU6)")
    if int(opts.dilationHFactor) != 1 or int(opts.dilationWFactor) != 1:
        raise _refuse(f"{name} with dilation {opts.dilationHFactor}x{opts.dilationWFactor}")
    x_t, y_t = _int8_io(sg, op, name)
    w_t = sg.tensors[op.inputs[1]]
    if int(w_t.type) != _INT8:
        raise _refuse(f"{name} filter is {_tensor_type(w_t)}; the client runs int8 only")
    in_shape, out_shape = _hwc(x_t, f"{name} input"), _hwc(y_t, f"{name} output")
    wshape = tuple(int(d) for d in w_t.shape)
    if len(wshape) != 4:
        raise _refuse(f"{name} filter of shape {list(wshape)}")
    c = out_shape[2]
    if depthwise and (wshape[0] != 1 or wshape[3] != c or c != in_shape[2]):
        raise _refuse(f"{name} with depth multiplier != 1 (filter {list(wshape)})")
    if not depthwise and (wshape[0] != c or wshape[3] != in_shape[2]):
        raise _refuse(f"grouped {name} (filter {list(wshape)}, input {list(in_shape)})")
    kernel, stride = (wshape[1], wshape[2]), (int(opts.strideH), int(opts.strideW))
    padding = _PADDING_NAMES.get(int(opts.padding), "?")
    _check_geometry(name, padding, in_shape[:2], out_shape[:2], kernel, stride)

    wq = w_t.quantization
    ch_axis = 3 if depthwise else 0
    if wq is None or wq.scale is None or len(wq.scale) not in (1, c):
        raise _refuse(f"{name} filter is not int8 per-channel quantized")
    if wq.zeroPoint is not None and np.any(np.asarray(wq.zeroPoint) != 0):
        raise _refuse(f"{name} filter has a non-zero zero point")
    if len(wq.scale) == c and c > 1 and int(wq.quantizedDimension) != ch_axis:
        raise _refuse(f"{name} filter is quantized along axis {wq.quantizedDimension}")
    bias = np.zeros(c, dtype=np.int32)
    if len(op.inputs) > 2 and int(op.inputs[2]) >= 0:
        b_t = sg.tensors[op.inputs[2]]
        if int(b_t.type) != _INT32:
            raise _refuse(f"{name} bias is {_tensor_type(b_t)} (the client needs int32 bias)")
        bias = _buffer(b, model, b_t, np.int32).reshape(c)
    in_scale, in_zp = _per_tensor_quant(x_t, f"{name} input")
    out_scale, out_zp = _per_tensor_quant(y_t, f"{name} output")
    return ConvSpec(
        depthwise=depthwise, in_shape=in_shape, out_shape=out_shape, kernel=kernel,
        stride=stride, padding=padding, activation=_ACT_NAMES[act], input_scale=in_scale,
        input_zp=in_zp, output_scale=out_scale, output_zp=out_zp,
        weights=_buffer(b, model, w_t, np.int8).reshape(wshape),
        weight_scales=np.broadcast_to(np.asarray(wq.scale, dtype=np.float32), (c,)).copy(),
        bias=bias,
    )  # fmt: skip


def _same_quant(x_t: Any, y_t: Any, name: str) -> tuple[float, int]:
    q_in = _per_tensor_quant(x_t, f"{name} input")
    if _per_tensor_quant(y_t, f"{name} output") != q_in:
        raise _refuse(f"{name} with different input and output quantization")
    return q_in


def _read_pool(sg: Any, op: Any, name: str) -> PoolSpec:
    opts = op.builtinOptions
    if int(opts.fusedActivationFunction) != _ACT_NONE:
        act_name = _enum_name(schema.ActivationFunctionType, int(opts.fusedActivationFunction))
        raise _refuse(
            f"{name} with fused {act_name} (pools run without an activation: put it on the "
            "layer before the pool)"
        )
    x_t, y_t = _int8_io(sg, op, name)
    in_shape, out_shape = _hwc(x_t, f"{name} input"), _hwc(y_t, f"{name} output")
    if in_shape[2] != out_shape[2]:
        raise _refuse(f"{name} changes the channel count")
    pool = (int(opts.filterHeight), int(opts.filterWidth))
    stride = (int(opts.strideH), int(opts.strideW))
    padding = _PADDING_NAMES.get(int(opts.padding), "?")
    _check_geometry(name, padding, in_shape[:2], out_shape[:2], pool, stride)
    scale, zp = _same_quant(x_t, y_t, name)
    return PoolSpec(
        kind="max" if name == "MAX_POOL_2D" else "avg", in_shape=in_shape, out_shape=out_shape,
        pool=pool, stride=stride, padding=padding, scale=scale, zp=zp,
    )  # fmt: skip


def _read_reshape(sg: Any, op: Any, name: str) -> ReshapeSpec:
    x_t, y_t = _int8_io(sg, op, name)
    in_shape, out_shape = _sample_shape(x_t, f"{name} input"), _sample_shape(y_t, f"{name} output")
    if int(np.prod(in_shape)) != int(np.prod(out_shape)):
        raise _refuse(f"{name} from {list(in_shape)} to {list(out_shape)} changes the size")
    scale, zp = _same_quant(x_t, y_t, name)
    return ReshapeSpec(op=name, in_shape=in_shape, out_shape=out_shape, scale=scale, zp=zp)


def _layer_ops(model: Any, sg: Any) -> list[tuple[str, Any]]:
    """The data-carrying ops of the first subgraph from the model input to its output, in order.

    The chain is traced back from the output through each op's data input (input 0). Off the
    chain only shape bookkeeping may remain: int32 shape arithmetic (_SHAPE_OPS) feeding RESHAPE
    shape inputs, and reshapes whose outputs only such arithmetic reads (the converter leaves
    one behind when it folds Keras' Flatten).
    """
    ops = list(sg.operators or [])
    names = [_op_name(model, op) for op in ops]
    producer = {int(o): i for i, op in enumerate(ops) for o in op.outputs}
    consumers: dict[int, list[tuple[int, int]]] = {}
    for i, op in enumerate(ops):
        for pos, t in enumerate(int(t) for t in op.inputs):
            consumers.setdefault(t, []).append((i, pos))

    chain: list[int] = []
    t, first = int(sg.outputs[0]), int(sg.inputs[0])
    while t != first:
        if t not in producer or len(chain) > len(ops):
            raise UnsupportedLayer("the client layers are not a single chain from the input")
        chain.append(producer[t])
        t = int(ops[producer[t]].inputs[0])
    chain.reverse()

    on_chain = set(chain)
    shape_ops = {
        i for i, op in enumerate(ops)
        if names[i] in _SHAPE_OPS and all(int(sg.tensors[o].type) == _INT32 for o in op.outputs)
    }  # fmt: skip
    for i in chain:
        if names[i] not in LAYER_OPS:
            raise _refuse(f"operator {names[i]} is not supported on the client")
        # Other inputs of a chain op must be constants or (for RESHAPE) shape tensors.
        for pos, t_in in enumerate(int(t) for t in ops[i].inputs):
            if pos > 0 and t_in in producer and producer[t_in] not in shape_ops:
                raise UnsupportedLayer(f"{names[i]} reads a computed tensor besides its input")
    for i, op in enumerate(ops):
        if i in on_chain or i in shape_ops:
            continue
        reads = [consumers.get(int(o), []) for o in op.outputs]
        dead_reshape = names[i] in ("RESHAPE", "EXPAND_DIMS", "SQUEEZE") and all(
            j in shape_ops for r in reads for j, _ in r
        )
        if not dead_reshape:
            if names[i] not in LAYER_OPS:
                raise _refuse(f"operator {names[i]} is not supported on the client")
            raise UnsupportedLayer(f"{names[i]} is off the single chain of client layers")
    if not chain:
        raise _refuse("the model has no layer to run")
    return [(names[i], ops[i]) for i in chain]


def read_layers(b: bytes) -> list[LayerSpec]:
    """Every client layer of the model's first subgraph, input to output.

    FULLY_CONNECTED -> FCSpec, CONV_2D / DEPTHWISE_CONV_2D -> ConvSpec, MAX_POOL_2D /
    AVERAGE_POOL_2D -> PoolSpec, RESHAPE / EXPAND_DIMS / SQUEEZE -> ReshapeSpec. Anything else
    (or an option the kernels do not implement) raises UnsupportedLayer naming it.
    """
    model = _load(b)
    sg = model.subgraphs[0]
    specs: list[LayerSpec] = []
    for name, op in _layer_ops(model, sg):
        if name == "FULLY_CONNECTED":
            fc = _read_fc(b, model, sg, op)
            n_in = int(np.prod([int(d) for d in sg.tensors[op.inputs[0]].shape]))
            if n_in != fc.in_features:
                raise _refuse(f"FULLY_CONNECTED over {n_in} inputs of {fc.in_features} (batched)")
            specs.append(fc)
        elif name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            specs.append(_read_conv(b, model, sg, op, name))
        elif name in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
            specs.append(_read_pool(sg, op, name))
        else:
            specs.append(_read_reshape(sg, op, name))
    return specs


def layer_tensors(b: bytes) -> list[tuple[int, int]]:
    """(input, output) tensor index of each layer read_layers returns, in the same order (to
    look the layers up in an interpreter, e.g. TFLM's preserve-all-tensors mode)."""
    model = _load(b)
    sg = model.subgraphs[0]
    return [(int(op.inputs[0]), int(op.outputs[0])) for _, op in _layer_ops(model, sg)]
