"""Random conv layers, pooling windows and gradients for the conv/pool kernel tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from ckernels import CConvKernels, CKernels
from kernel_utils import assert_bitexact, log_uniform

from tinysplit.codegen.tflite_reader import ConvSpec, PoolSpec
from tinysplit.core import golden
from tinysplit.core.golden import ConvLayer, PoolParams
from tinysplit.core.golden.conv_layer import multipliers

I8 = npt.NDArray[np.int8]


@pytest.fixture(scope="module")
def cck(ck: CKernels) -> CConvKernels:
    """The conv kernels of the freshly built host library."""
    return CConvKernels(ck.lib)


def random_geometry(
    rng: np.random.Generator, i: int, depthwise: bool = False, max_hw: int = 12, max_c: int = 9
) -> dict[str, Any]:
    """Shapes, window, stride and padding of a layer with at least one output, corner cases first.

    About one in five is a Conv1D (H = KH = 1); strides 1 and 2, sometimes 3.
    """
    corners: list[tuple[int, int, int, int, int, int, int, int]] = [
        # (h, w, c_in, c_out, kh, kw, stride, same)
        (1, 1, 1, 1, 1, 1, 1, 0),
        (1, 7, 3, 4, 1, 3, 1, 0),  # Conv1D valid
        (1, 8, 2, 3, 1, 5, 2, 1),  # Conv1D same, stride 2
        (5, 5, 1, 1, 5, 5, 1, 0),  # window == image
        (3, 3, 2, 2, 5, 5, 1, 1),  # window larger than the image (same)
        (6, 7, 3, 5, 3, 3, 2, 1),
        (7, 6, 4, 2, 2, 2, 2, 0),
    ]
    if i < len(corners):
        h, w, c_in, c_out, kh, kw, s, same = corners[i]
        stride = (1 if h == 1 else s, s)
    else:
        conv1d = rng.random() < 0.2
        h = 1 if conv1d else int(rng.integers(1, max_hw + 1))
        w = int(rng.integers(1, max_hw + 1))
        c_in, c_out = int(rng.integers(1, max_c + 1)), int(rng.integers(1, max_c + 1))
        kh = 1 if conv1d else int(rng.integers(1, 6))
        kw = int(rng.integers(1, 6))
        same = int(rng.integers(0, 2))
        if not same:  # a valid window must fit
            kh, kw = min(kh, h), min(kw, w)
        sh = 1 if conv1d else int(rng.choice([1, 2, 2, 3]))
        stride = (sh, int(rng.choice([1, 2, 2, 3])))
    if depthwise:
        c_out = c_in
    padding = golden.PADDING_SAME if same else golden.PADDING_VALID
    return dict(in_dims=(h, w, c_in), c_out=c_out, kernel=(kh, kw), stride=stride,
                padding=padding)  # fmt: skip


def random_conv_layer(
    rng: np.random.Generator, geo: dict[str, Any], depthwise: bool, act: int | None = None,
    well_scaled: bool = False,
) -> ConvLayer:  # fmt: skip
    """An exported-looking conv layer with scales over decades and random zero points.

    well_scaled picks the output range from the accumulators (few saturated outputs, the RELU6
    cap inside int8 half of the time); otherwise scales are random, so saturation, multipliers
    > 1 and tiny ones all occur.
    """
    (h, w, c_in), c_out = geo["in_dims"], geo["c_out"]
    kh, kw = geo["kernel"]
    if act is None:
        act = int(rng.integers(0, 3))
    w_shape = (1, kh, kw, c_out) if depthwise else (c_out, kh, kw, c_in)
    s_x = np.float32(log_uniform(rng, -4, 0))
    zp_x = int(rng.integers(-128, 128))
    w_scale = np.asarray(log_uniform(rng, -4, -1, c_out), dtype=np.float32)
    wq = rng.integers(-127, 128, size=w_shape).astype(np.int8)
    if rng.random() < 0.2:
        wq[...] = rng.choice(np.array([-127, 127], np.int8), size=w_shape)
    bias_mag = int(rng.choice([0, 1 << 8, 1 << 16, 1 << 22]))
    bias = rng.integers(-bias_mag, bias_mag + 1, size=c_out).astype(np.int32)
    noise = rng.uniform(-0.5, 0.5, size=w_shape).astype(np.float32)
    ws_b = w_scale if depthwise else w_scale[:, None, None, None]
    master_w = (wq.astype(np.float32) + noise) * ws_b
    master_b = bias.astype(np.float32) * (s_x * w_scale)
    layer = ConvLayer.from_quantized(
        in_dims=(h, w, c_in), kernel=(kh, kw), stride=geo["stride"], padding=geo["padding"],
        act=act, depthwise=depthwise, w=wq, bias=bias, w_scale=w_scale, in_scale=s_x,
        in_zp=zp_x, out_scale=np.float32(1.0), out_zp=0, master_w=master_w, master_b=master_b,
    )  # fmt: skip
    if well_scaled:
        x = rng.integers(-128, 128, size=(h, w, c_in)).astype(np.int8)
        fwd = golden.depthwise_conv2d_forward if depthwise else golden.conv2d_forward
        _, acc = fwd(layer, x)
        real = acc.astype(np.float64) * (float(s_x) * w_scale.astype(np.float64))
        spread = max(float(np.std(real)), 1e-12)
        s_y = np.float32(spread / 40.0)
        zp_y = int(rng.integers(-40, 40)) if act == golden.ACT_NONE else -128
        if act == golden.ACT_RELU6 and rng.random() < 0.5:
            s_y = np.float32(6.0 / float(rng.integers(20, 250)))  # cap inside int8
    else:
        s_y = np.float32(log_uniform(rng, -5, 1))
        zp_y = int(rng.integers(-128, 128))
    layer.out_scale, layer.out_zp = s_y, zp_y
    layer.out_mult, layer.out_shift = multipliers(s_x, w_scale, s_y)
    layer.range_min = s_y * np.float32(-128 - zp_y)
    layer.range_max = s_y * np.float32(127 - zp_y)
    return layer


def random_pool(rng: np.random.Generator, i: int, overlap: bool | None = None) -> PoolParams:
    """Pooling windows: 2x2/2 and friends, 1-D ones, SAME and VALID, overlapping or not."""
    corners = [
        ((4, 4, 1), (2, 2), (2, 2), 0),
        ((1, 9, 3), (1, 2), (1, 2), 1),
        ((5, 5, 2), (3, 3), (2, 2), 1),
        ((3, 3, 2), (3, 3), (1, 1), 1),
        ((7, 5, 3), (2, 3), (3, 3), 0),
        ((1, 1, 4), (1, 1), (1, 1), 0),
    ]
    if overlap is None and i < len(corners):
        dims, k, s, same = corners[i]
        return PoolParams.make(dims, k, s, golden.PADDING_SAME if same else golden.PADDING_VALID)
    while True:
        one_d = rng.random() < 0.2
        h = 1 if one_d else int(rng.integers(1, 13))
        w = int(rng.integers(1, 13))
        c = int(rng.integers(1, 9))
        kh = 1 if one_d else int(rng.integers(1, 5))
        kw = int(rng.integers(1, 5))
        same = bool(rng.integers(0, 2))
        if not same:
            kh, kw = min(kh, h), min(kw, w)
        sh = 1 if one_d else int(rng.integers(1, 4))
        sw = int(rng.integers(1, 4))
        p = PoolParams.make(
            (h, w, c), (kh, kw), (sh, sw), golden.PADDING_SAME if same else golden.PADDING_VALID
        )
        if overlap is None or p.overlapping == overlap:
            return p


def random_grad(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[I8, np.float32]:
    """An int8 gradient as the host sends it (max-abs), or zeros, or extremes incl. -128."""
    kind = int(rng.integers(0, 6))
    if kind == 0:
        return np.zeros(shape, np.int8), np.float32(0.0)
    if kind == 1:
        q = rng.choice(np.array([-127, 127, -128, 0], np.int8), size=shape)
        return q, np.float32(log_uniform(rng, -7, -1))
    g = rng.normal(size=shape).astype(np.float32) * np.float32(log_uniform(rng, -8, 0))
    if kind == 2:  # sparse, as after a ReLU mask
        g[rng.random(shape) < 0.7] = 0.0
    return golden.quantize_gradient(g)


def assert_conv_layers_equal(c: ConvLayer, g: ConvLayer, ctx: str = "") -> None:
    """Every field of two conv layers, bit for bit."""
    for f in (
        "in_dims", "out_dims", "kh", "kw", "stride_h", "stride_w", "padding", "act", "depthwise",
        "in_scale", "in_zp", "out_scale", "out_zp", "w", "bias", "w_scale", "out_mult",
        "out_shift", "master_w", "master_b", "grad_w", "grad_b", "range_min", "range_max",
    ):  # fmt: skip
        cv, gv = getattr(c, f), getattr(g, f)
        if isinstance(gv, np.ndarray | np.floating):
            assert_bitexact(f, np.asarray(cv), np.asarray(gv), ctx)
        else:
            assert cv == gv, f"{f}: C={cv!r} golden={gv!r} {ctx}"


def describe(layer: ConvLayer) -> str:
    """One line naming a layer's geometry and quantization, for failure messages."""
    kind = "depthwise" if layer.depthwise else "conv"
    return (
        f"{kind} in={layer.in_dims} out={layer.out_dims} k=({layer.kh},{layer.kw}) "
        f"s=({layer.stride_h},{layer.stride_w}) pad={'same' if layer.padding else 'valid'} "
        f"act={layer.act} s_x={layer.in_scale!r} zp_x={layer.in_zp} s_y={layer.out_scale!r} "
        f"zp_y={layer.out_zp}"
    )


def conv_layer_from_spec(s: ConvSpec) -> ConvLayer:
    """The golden layer of a converted CONV_2D / DEPTHWISE_CONV_2D (master = dequantized)."""
    ws = s.weight_scales if s.depthwise else s.weight_scales[:, None, None, None]
    return ConvLayer.from_quantized(
        in_dims=s.in_shape, kernel=s.kernel, stride=s.stride,
        padding=golden.PADDINGS[s.padding], act=golden.ACTIVATIONS[s.activation],
        depthwise=s.depthwise, w=s.weights, bias=s.bias, w_scale=s.weight_scales,
        in_scale=s.input_scale, in_zp=s.input_zp, out_scale=s.output_scale,
        out_zp=s.output_zp, master_w=s.weights.astype(np.float32) * ws,
        master_b=np.zeros(s.out_shape[2], np.float32),
    )  # fmt: skip


def pool_from_spec(s: PoolSpec) -> PoolParams:
    """The golden pooling parameters of a converted MAX_POOL_2D / AVERAGE_POOL_2D."""
    return PoolParams.make(s.in_shape, s.pool, s.stride, golden.PADDINGS[s.padding])
