"""The client segment as a chain of ops (FC, conv, depthwise conv, pools, reshapes).

Three steps of the exporter live here: checking the Keras client layers (`check_layers`),
folding BatchNormalization and stand-alone ReLU layers into the conv or Dense before them
(`fold_client`), and turning the converted .tflite plus the Keras float weights into golden
ops (`golden_ops`), which emit_c writes and the tests run (`forward`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from tinysplit.codegen.tflite_reader import (
    ConvSpec,
    FCSpec,
    LayerSpec,
    PoolSpec,
    ReshapeSpec,
    read_io_quant,
    read_layers,
)
from tinysplit.core import golden
from tinysplit.core.errors import UnsupportedLayer
from tinysplit.core.golden import ConvLayer, FCLayer, PoolParams
from tinysplit.core.golden.ops import (
    ClientOp,
    PoolOp,
    ReshapeOp,
    in_quant,
    op_dims,
    op_kind,
    out_quant,
    size,
)

if TYPE_CHECKING:
    import keras

SUPPORTED = (
    "Dense (activation relu or linear), Conv1D, Conv2D, DepthwiseConv1D, DepthwiseConv2D "
    "(depth multiplier 1, no dilation; activation relu, relu6 or linear), MaxPooling1D/2D, "
    "AveragePooling1D/2D, GlobalAveragePooling1D/2D, Flatten, Reshape, BatchNormalization "
    "after a linear conv or Dense (folded into it), ReLU or ReLU6 after a linear conv or Dense "
    "(fused into it)"
)


# ---- Keras side ------------------------------------------------------------------------------


def _kinds() -> dict[str, tuple[type, ...]]:
    import keras

    L = keras.layers
    return {
        "dense": (L.Dense,),
        "conv": (L.Conv1D, L.Conv2D),
        "depthwise": (L.DepthwiseConv1D, L.DepthwiseConv2D),
        "pool": (L.MaxPooling1D, L.MaxPooling2D, L.AveragePooling1D, L.AveragePooling2D),
        "gap": (L.GlobalAveragePooling1D, L.GlobalAveragePooling2D),
        "reshape": (L.Flatten, L.Reshape),
        "bn": (L.BatchNormalization,),
        "act": (L.ReLU, L.Activation),
    }


def _kind(layer: keras.Layer) -> str | None:
    for name, classes in _kinds().items():
        if type(layer) in classes:
            return name
    return None


def trainable_layer(layer: keras.Layer) -> bool:
    """A Keras layer that becomes a trainable client op (Dense, conv, depthwise conv)."""
    return _kind(layer) in ("dense", "conv", "depthwise")


def reshape_layer(layer: keras.Layer) -> bool:
    """Flatten or Reshape: no kernel, the int8 bytes stay as they are."""
    return _kind(layer) == "reshape"


def _act_name(layer: keras.Layer) -> str:
    """relu | relu6 | linear | something else, for a conv/Dense activation or an act layer."""
    import keras

    if isinstance(layer, keras.layers.ReLU):
        ok = float(layer.negative_slope) == 0.0 and float(layer.threshold) == 0.0
        if ok and layer.max_value is None:
            return "relu"
        if ok and layer.max_value is not None and float(layer.max_value) == 6.0:
            return "relu6"
        return "leaky or thresholded relu"
    act = layer.activation
    return str(getattr(act, "__name__", repr(act)))


def _refuse(i: int, layer: keras.Layer, why: str) -> UnsupportedLayer:
    return UnsupportedLayer(
        f"client layer {i} {layer.name!r} ({type(layer).__name__}) {why}; supported on the "
        f"client: {SUPPORTED}. Move the cut before it or change the layer"
    )


def check_layers(layers: Sequence[keras.Layer]) -> None:
    """Every client layer is one the firmware runs (before folding), else UnsupportedLayer
    naming the layer and listing what is supported."""
    prev: str | None = None
    prev_act = ""
    for i, layer in enumerate(layers):
        kind = _kind(layer)
        if kind is None:
            raise _refuse(i, layer, "is not supported on the client")
        if layer.dtype_policy.compute_dtype != "float32":
            raise _refuse(i, layer, f"computes in {layer.dtype_policy.compute_dtype}")
        if kind in ("dense", "conv", "depthwise"):
            act = _act_name(layer)
            allowed = ("relu", "linear") if kind == "dense" else ("relu", "relu6", "linear")
            if act not in allowed:
                raise _refuse(i, layer, f"has activation {act!r}")
            if kind == "dense" and len(layer.kernel.shape) != 2:
                raise _refuse(i, layer, "has a kernel that is not [in, out]")
            if kind == "dense" and len(layer.input.shape) != 2:
                raise _refuse(i, layer, "gets a rank-2+ input: put a Flatten before it")
            if kind != "dense" and any(int(d) != 1 for d in layer.dilation_rate):
                raise _refuse(i, layer, f"has dilation {tuple(layer.dilation_rate)}")
            if kind == "conv" and int(layer.groups) != 1:
                raise _refuse(i, layer, f"has {layer.groups} groups")
            if kind == "depthwise" and int(layer.depth_multiplier) != 1:
                raise _refuse(i, layer, f"has depth multiplier {layer.depth_multiplier}")
            if not layer.use_bias and not (i + 1 < len(layers) and _kind(layers[i + 1]) == "bn"):
                raise _refuse(
                    i, layer, "has no bias; the firmware trains a bias in every client layer: "
                    "use use_bias=True"
                )  # fmt: skip
            prev, prev_act = kind, act
            continue
        if kind == "gap" and layer.data_format != "channels_last":
            raise _refuse(i, layer, "averages channels_first data")
        if kind == "bn":
            if prev not in ("dense", "conv", "depthwise") or prev_act != "linear":
                raise _refuse(i, layer, "does not follow a conv or Dense without activation")
            axis = layer.axis if isinstance(layer.axis, int) else layer.axis[0]
            if axis not in (-1, len(layer.input.shape) - 1):
                raise _refuse(i, layer, f"normalizes axis {axis}, not the channels (last)")
            continue
        if kind == "act":
            act = _act_name(layer)
            ok = ("relu",) if prev == "dense" else ("relu", "relu6")
            if prev not in ("dense", "conv", "depthwise") or prev_act != "linear":
                raise _refuse(i, layer, "does not follow a conv or Dense without activation")
            if act not in ok:
                raise _refuse(i, layer, f"is activation {act!r}")
            prev_act = act
            continue
        prev, prev_act = kind, ""


def _folded(layer: keras.Layer, kernel: npt.NDArray[np.float32], bias: npt.NDArray[np.float32],
            act: str) -> keras.Layer:  # fmt: skip
    """A copy of a conv/Dense layer with new weights and activation."""
    cfg = dict(layer.get_config())
    cfg["use_bias"] = True
    cfg["activation"] = act
    new = type(layer).from_config(cfg)
    new.build_from_config(layer.get_build_config())
    new.set_weights([kernel, bias])
    return new


def _global_average_as_pool(layer: keras.Layer) -> list[keras.Layer]:
    """GlobalAveragePooling1D/2D as the same function in layers the firmware runs: an
    AveragePooling over the whole sample (TFLite's AVERAGE_POOL_2D, forward and backward
    bit-exact like any pool), then a Flatten unless the layer keeps its dims."""
    import keras

    spatial = tuple(int(d) for d in layer.input.shape[1:-1])
    pool_cls = keras.layers.AveragePooling1D if len(spatial) == 1 else keras.layers.AveragePooling2D
    out: list[keras.Layer] = [pool_cls(pool_size=spatial, name=layer.name)]
    if not layer.keepdims:
        out.append(keras.layers.Flatten(name=f"{layer.name}_flat"))
    return out


def fold_client(layers: Sequence[keras.Layer], cut: int) -> tuple[list[keras.Layer], int]:
    """Client layers with every BatchNormalization folded into the conv/Dense before it (the
    inference-mode transform: w' = w * g / sqrt(var + eps), b' = (b - mean) * g / sqrt(var +
    eps) + beta), every ReLU/ReLU6 layer fused into it and every GlobalAveragePooling written
    as an AveragePooling over the sample; the server layers follow unchanged.
    Layers that fold nothing are the original objects. Returns (layers, new cut)."""
    out: list[keras.Layer] = []
    for i, layer in enumerate(layers[:cut]):
        kind = _kind(layer)
        if kind == "gap":
            out += _global_average_as_pool(layer)
            continue
        if kind not in ("bn", "act"):
            out.append(layer)
            continue
        prev = out[-1]
        kernel = np.asarray(prev.get_weights()[0], dtype=np.float32)
        c = kernel.shape[-2] if _kind(prev) == "depthwise" else kernel.shape[-1]
        bias = (
            np.asarray(prev.get_weights()[1], dtype=np.float32)
            if prev.use_bias
            else np.zeros(c, np.float32)
        )
        act = _act_name(prev)
        if kind == "bn":
            w = layer.get_weights()
            gamma = np.asarray(layer.gamma.numpy() if layer.scale else np.ones(c), np.float64)
            beta = np.asarray(layer.beta.numpy() if layer.center else np.zeros(c), np.float64)
            mean = np.asarray(layer.moving_mean.numpy(), np.float64)
            var = np.asarray(layer.moving_variance.numpy(), np.float64)
            del w
            k = gamma / np.sqrt(var + float(layer.epsilon))
            if _kind(prev) == "depthwise":  # [.., C, 1]
                kernel = (kernel * k[:, None]).astype(np.float32)
            else:
                kernel = (kernel * k).astype(np.float32)
            bias = ((bias - mean) * k + beta).astype(np.float32)
        else:
            act = _act_name(layer)
        if act == "relu6":
            import keras

            act_fn: object = keras.activations.relu6
        else:
            act_fn = act
        out[-1] = _folded(prev, kernel, bias, act_fn)  # type: ignore[arg-type]
        del i
    return [*out, *layers[cut:]], len(out)


# ---- .tflite + Keras -> golden ops ----------------------------------------------------------


def _master_kernel(layer: keras.Layer) -> npt.NDArray[np.float32]:
    """The Keras kernel in TFLite's filter layout."""
    k = np.asarray(layer.kernel.numpy(), dtype=np.float32)
    kind = _kind(layer)
    if kind == "dense":  # [K, C] -> [C, K]
        return np.ascontiguousarray(k.T)
    if kind == "conv":
        if k.ndim == 3:  # Conv1D [KW, Cin, Cout] -> [KH=1, KW, Cin, Cout]
            k = k[None]
        return np.ascontiguousarray(k.transpose(3, 0, 1, 2))  # [Cout, KH, KW, Cin]
    # depthwise [KH, KW, C, 1] or [KW, C, 1] -> [1, KH, KW, C]
    k = k[..., 0]
    if k.ndim == 2:
        k = k[None]
    return np.ascontiguousarray(k[None])


def golden_ops(tflite: bytes, layers: Sequence[keras.Layer]) -> list[ClientOp]:
    """The converted client as golden ops, the trainable ones with the Keras float weights of
    `layers` (already folded) as master copy. Checks one trainable op per trainable Keras layer
    and that each op's input quantization is the previous op's output quantization."""
    specs = read_layers(tflite)
    (in_scale, in_zp), (out_scale, out_zp) = read_io_quant(tflite)
    keras_trainable = [x for x in layers if _kind(x) in ("dense", "conv", "depthwise")]
    spec_trainable = [s for s in specs if isinstance(s, FCSpec | ConvSpec)]
    if len(spec_trainable) != len(keras_trainable):
        raise UnsupportedLayer(
            f"the converter turned {len(keras_trainable)} trainable client layers into "
            f"{len(spec_trainable)} fully connected/conv ops; tinysplit needs one op per layer"
        )
    masters = iter(keras_trainable)
    ops = [_op(s, masters) for s in specs]
    first_in, last_out = in_quant(ops[0]), out_quant(ops[-1])
    if (float(first_in[0]), first_in[1]) != (in_scale, in_zp) or (
        float(last_out[0]),
        last_out[1],
    ) != (out_scale, out_zp):
        raise UnsupportedLayer("the client tflite's input/output are not its first/last op's")
    for i in range(1, len(ops)):
        if out_quant(ops[i - 1]) != in_quant(ops[i]):
            raise UnsupportedLayer(
                f"client op {i} ({op_kind(ops[i])}): its input quantization differs from op "
                f"{i - 1}'s output (the converter inserted a requantize op)"
            )
        if size(op_dims(ops[i - 1])[1]) != size(op_dims(ops[i])[0]):
            raise UnsupportedLayer(f"client op {i} does not read op {i - 1}'s output")
    return ops


def _op(s: LayerSpec, masters: object) -> ClientOp:
    if isinstance(s, PoolSpec):
        p = PoolParams.make(s.in_shape, s.pool, s.stride, golden.PADDINGS[s.padding])
        return PoolOp(s.kind, p, np.float32(s.scale), int(s.zp))
    if isinstance(s, ReshapeSpec):
        return ReshapeOp(s.op, s.in_shape, s.out_shape, np.float32(s.scale), int(s.zp))
    layer = next(masters)  # type: ignore[call-overload]
    master_w = _master_kernel(layer)
    master_b = np.asarray(layer.bias.numpy(), dtype=np.float32)
    if isinstance(s, FCSpec):
        if master_w.shape != (s.out_features, s.in_features):
            raise UnsupportedLayer(
                f"client layer {layer.name!r}: the tflite has {s.in_features} -> "
                f"{s.out_features}, Keras {master_w.shape[1]} -> {master_w.shape[0]}"
            )
        if bool(s.relu) != (_act_name(layer) == "relu"):
            raise UnsupportedLayer(
                f"client layer {layer.name!r}: the converter did not keep the activation "
                "fused into the fully connected op"
            )
        return FCLayer.from_quantized(
            w=s.weights, bias=s.bias, w_scale=s.weight_scales, in_scale=s.input_scale,
            in_zp=s.input_zp, out_scale=s.output_scale, out_zp=s.output_zp, relu=bool(s.relu),
            master_w=master_w, master_b=master_b,
        )  # fmt: skip
    assert isinstance(s, ConvSpec)
    if master_w.shape != s.weights.shape:
        raise UnsupportedLayer(
            f"client layer {layer.name!r}: the tflite filter is {list(s.weights.shape)}, "
            f"Keras {list(master_w.shape)}"
        )
    want = {"relu": "relu", "relu6": "relu6"}.get(_act_name(layer), "none")
    if s.activation != want:
        raise UnsupportedLayer(
            f"client layer {layer.name!r}: the converter did not keep the activation fused "
            "into the conv op"
        )
    return ConvLayer.from_quantized(
        in_dims=s.in_shape, kernel=s.kernel, stride=s.stride,
        padding=golden.PADDINGS[s.padding], act=golden.ACTIVATIONS[s.activation],
        depthwise=s.depthwise, w=s.weights, bias=s.bias, w_scale=s.weight_scales,
        in_scale=s.input_scale, in_zp=s.input_zp, out_scale=s.output_scale,
        out_zp=s.output_zp, master_w=master_w, master_b=master_b,
    )  # fmt: skip
