"""The golden model's conv layer and pooling parameters: the Python twins of ts_conv_layer_t and
ts_pool_params_t (firmware/include/ts_kernels.h), with the shared geometry, activation and
gradient re-quantization helpers of docs/int8-conv.md."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

import numpy as np
import numpy.typing as npt

from .quant import INT32_FLOAT_LIMIT, quantize_multiplier, ts_round

F32 = npt.NDArray[np.float32]
I8 = npt.NDArray[np.int8]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]

PADDING_VALID, PADDING_SAME = 0, 1
ACT_NONE, ACT_RELU, ACT_RELU6 = 0, 1, 2
#: Names as the reader and docs spell them.
PADDINGS = {"valid": PADDING_VALID, "same": PADDING_SAME}
ACTIVATIONS = {"none": ACT_NONE, "relu": ACT_RELU, "relu6": ACT_RELU6}


def out_size(padding: int, n_in: int, k: int, stride: int) -> int:
    """TFLite's ComputeOutSize (dilation 1) for one spatial dimension."""
    if padding == PADDING_SAME:
        return (n_in + stride - 1) // stride
    return (n_in - k + stride) // stride if n_in >= k else 0


def pad_before(n_in: int, n_out: int, k: int, stride: int) -> int:
    """TFLite's ComputePadding: the top/left padding, max(0, ((out-1)*s + k - in) / 2)."""
    p = (n_out - 1) * stride + k - n_in
    return max(0, p // 2) if p > 0 else 0


@dataclass
class ConvLayer:
    """Conv2D (filter [Cout, KH, KW, Cin]) or depthwise conv (filter [1, KH, KW, C]).

    Fields mirror ts_conv_layer_t one for one; dims are (h, w, c) tuples. Arrays are coerced to
    the C dtypes and filter shape on creation.
    """

    in_dims: tuple[int, int, int]
    out_dims: tuple[int, int, int]
    kh: int
    kw: int
    stride_h: int
    stride_w: int
    padding: int
    act: int
    depthwise: bool
    in_scale: np.float32
    in_zp: int
    out_scale: np.float32
    out_zp: int
    w: I8
    bias: I32
    w_scale: F32
    out_mult: I32
    out_shift: I32
    master_w: F32
    master_b: F32
    grad_w: F32 = field(default_factory=lambda: np.zeros(0, np.float32))
    grad_b: F32 = field(default_factory=lambda: np.zeros(0, np.float32))
    range_min: np.float32 = field(default_factory=lambda: np.float32(0.0))
    range_max: np.float32 = field(default_factory=lambda: np.float32(0.0))

    @property
    def w_shape(self) -> tuple[int, int, int, int]:
        c_in, c_out = self.in_dims[2], self.out_dims[2]
        if self.depthwise:
            return (1, self.kh, self.kw, c_out)
        return (c_out, self.kh, self.kw, c_in)

    def __post_init__(self) -> None:
        self.in_dims = tuple(int(d) for d in self.in_dims)  # type: ignore[assignment]
        self.out_dims = tuple(int(d) for d in self.out_dims)  # type: ignore[assignment]
        for name in ("kh", "kw", "stride_h", "stride_w", "padding", "act", "in_zp", "out_zp"):
            setattr(self, name, int(getattr(self, name)))
        self.depthwise = bool(self.depthwise)
        self.in_scale, self.out_scale = np.float32(self.in_scale), np.float32(self.out_scale)
        c, ws = self.out_dims[2], self.w_shape
        self.w = np.ascontiguousarray(self.w, dtype=np.int8).reshape(ws)
        self.master_w = np.ascontiguousarray(self.master_w, dtype=np.float32).reshape(ws)
        for name, dt in (("bias", np.int32), ("w_scale", np.float32), ("out_mult", np.int32),
                         ("out_shift", np.int32), ("master_b", np.float32)):  # fmt: skip
            setattr(self, name, np.ascontiguousarray(getattr(self, name), dtype=dt).reshape(c))
        if self.grad_w.size == 0:
            self.grad_w = np.zeros(ws, np.float32)
        if self.grad_b.size == 0:
            self.grad_b = np.zeros(c, np.float32)
        self.grad_w = np.ascontiguousarray(self.grad_w, dtype=np.float32).reshape(ws)
        self.grad_b = np.ascontiguousarray(self.grad_b, dtype=np.float32).reshape(c)
        self.range_min, self.range_max = np.float32(self.range_min), np.float32(self.range_max)

    @property
    def pads(self) -> tuple[int, int]:
        """(top, left) padding."""
        return (
            pad_before(self.in_dims[0], self.out_dims[0], self.kh, self.stride_h),
            pad_before(self.in_dims[1], self.out_dims[1], self.kw, self.stride_w),
        )

    @classmethod
    def from_quantized(
        cls,
        *,
        in_dims: tuple[int, int, int],
        kernel: tuple[int, int],
        stride: tuple[int, int],
        padding: int,
        act: int,
        depthwise: bool,
        w: npt.ArrayLike,
        bias: npt.ArrayLike,
        w_scale: npt.ArrayLike,
        in_scale: float | np.float32,
        in_zp: int,
        out_scale: float | np.float32,
        out_zp: int,
        master_w: npt.ArrayLike,
        master_b: npt.ArrayLike,
    ) -> ConvLayer:
        """A layer as exported: out dims from the geometry, multipliers from the scales, the
        running range from out_q, zero gradients."""
        w8 = np.asarray(w, dtype=np.int8)
        c = int(w8.shape[3] if depthwise else w8.shape[0])
        ws = np.asarray(w_scale, dtype=np.float32).reshape(c)
        s_x, s_y = np.float32(in_scale), np.float32(out_scale)
        mult, shift = multipliers(s_x, ws, s_y)
        oh = out_size(padding, in_dims[0], kernel[0], stride[0])
        ow = out_size(padding, in_dims[1], kernel[1], stride[1])
        return cls(
            in_dims=in_dims, out_dims=(oh, ow, c), kh=kernel[0], kw=kernel[1],
            stride_h=stride[0], stride_w=stride[1], padding=padding, act=act,
            depthwise=depthwise, in_scale=s_x, in_zp=in_zp, out_scale=s_y, out_zp=out_zp,
            w=w8, bias=np.asarray(bias, np.int32), w_scale=ws, out_mult=mult, out_shift=shift,
            master_w=np.asarray(master_w, np.float32), master_b=np.asarray(master_b, np.float32),
            range_min=s_y * np.float32(-128 - int(out_zp)),
            range_max=s_y * np.float32(127 - int(out_zp)),
        )  # fmt: skip

    def copy(self) -> ConvLayer:
        """A deep copy (every array copied)."""
        return replace(
            self, **{f.name: getattr(self, f.name).copy() for f in fields(self)
                     if isinstance(getattr(self, f.name), np.ndarray)},
        )  # fmt: skip


def multipliers(s_x: np.float32, w_scale: F32, s_y: np.float32) -> tuple[I32, I32]:
    """Per-channel (mult, shift) of (double)s_x * (double)s_w[c] / (double)s_y (TFLM's order)."""
    c = w_scale.shape[0]
    mult = np.zeros(c, dtype=np.int32)
    shift = np.zeros(c, dtype=np.int32)
    for i in range(c):
        mult[i], shift[i] = quantize_multiplier(float(s_x) * float(w_scale[i]) / float(s_y))
    return mult, shift


@dataclass(frozen=True)
class PoolParams:
    """MaxPool2D / AveragePool2D window: the twin of ts_pool_params_t. dims are (h, w, c)."""

    in_dims: tuple[int, int, int]
    out_dims: tuple[int, int, int]
    kh: int
    kw: int
    stride_h: int
    stride_w: int
    padding: int

    @classmethod
    def make(
        cls, in_dims: tuple[int, int, int], pool: tuple[int, int], stride: tuple[int, int],
        padding: int,
    ) -> PoolParams:  # fmt: skip
        """Out dims from the geometry, as TFLite computes them."""
        oh = out_size(padding, in_dims[0], pool[0], stride[0])
        ow = out_size(padding, in_dims[1], pool[1], stride[1])
        return cls(in_dims, (oh, ow, in_dims[2]), pool[0], pool[1], stride[0], stride[1], padding)

    @property
    def pads(self) -> tuple[int, int]:
        return (
            pad_before(self.in_dims[0], self.out_dims[0], self.kh, self.stride_h),
            pad_before(self.in_dims[1], self.out_dims[1], self.kw, self.stride_w),
        )

    @property
    def overlapping(self) -> bool:
        """True when an input can lie in more than one window (the backward needs scratch)."""
        return self.stride_h < self.kh or self.stride_w < self.kw

    def window(self, oy: int, ox: int) -> tuple[int, int, int, int]:
        """(y0, y1, x0, x1): the window of output (oy, ox) clipped to the image."""
        pt, pl = self.pads
        y0, x0 = oy * self.stride_h - pt, ox * self.stride_w - pl
        return (
            max(y0, 0), min(y0 + self.kh, self.in_dims[0]),
            max(x0, 0), min(x0 + self.kw, self.in_dims[1]),
        )  # fmt: skip


def _q6(scale: np.float32, zp: int) -> int:
    """zp + round(6 / s) as an unbounded int (the ReLU6 cap, maybe outside int8)."""
    with np.errstate(divide="ignore", over="ignore"):
        f = np.float32(6.0) / np.float32(scale)
    f = np.float32(min(f, INT32_FLOAT_LIMIT))
    return int(zp) + int(ts_round(f))


def act_range(act: int, scale: np.float32 | float, zp: int) -> tuple[int, int]:
    """(act_min, act_max) of a fused activation on an int8 output (ts_act_range)."""
    if act == ACT_NONE:
        return -128, 127
    lo = max(-128, int(zp))
    if act == ACT_RELU:
        return lo, 127
    return lo, min(127, _q6(np.float32(scale), int(zp)))


def act_backward(act: int, scale: np.float32 | float, zp: int, g: npt.ArrayLike,
                 y: npt.ArrayLike) -> I8:  # fmt: skip
    """ts_act_backward, returning a new array: g masked where the activation clamped y."""
    g8 = np.asarray(g, dtype=np.int8)
    if act == ACT_NONE:
        return g8.copy()
    yi = np.asarray(y, dtype=np.int8).astype(np.int64)
    keep = yi > max(-128, int(zp))
    if act == ACT_RELU6:
        keep &= yi < _q6(np.float32(scale), int(zp))
    return np.where(keep, g8, np.int8(0)).astype(np.int8)


def grad_requantize(acc: npt.ArrayLike) -> tuple[I8, int]:
    """ts_grad_requantize: (gx int8 in [-127, 127], m = max |acc|) of an int32 gradient."""
    a = np.asarray(acc, dtype=np.int64)
    mag = np.abs(a)
    m = int(mag.max()) if a.size else 0
    if m == 0:
        return np.zeros(a.shape, np.int8), 0
    q = (mag * 127 + m // 2) // m  # non-negative operands: floor == C's truncation
    return np.where(a < 0, -q, q).astype(np.int8), m


def observe(act: int, v: F32, bmin: np.float32, bmax: np.float32) -> tuple[np.float32, np.float32]:
    """Folds real pre-activation outputs v into (bmin, bmax) after the activation in float."""
    if v.size == 0:
        return bmin, bmax
    if act != ACT_NONE:
        v = np.where(v > 0, v, np.float32(0.0)).astype(np.float32)
    if act == ACT_RELU6:
        v = np.where(v < np.float32(6.0), v, np.float32(6.0)).astype(np.float32)
    return np.float32(min(bmin, v.min())), np.float32(max(bmax, v.max()))


def requant_output(layer: ConvLayer, acc: I32) -> I8:
    """acc [..., C] -> y: per-channel gemmlowp multiply, + zp_y, activation clamp."""
    from .quant import multiply_by_quantized_multiplier

    out = multiply_by_quantized_multiplier(acc, layer.out_mult, layer.out_shift).astype(np.int64)
    lo, hi = act_range(layer.act, layer.out_scale, layer.out_zp)
    return np.clip(out + layer.out_zp, lo, hi).astype(np.int8)


def input_grad_shift(n_terms: int) -> int:
    """e of docs/int8-conv.md: the smallest e in [0, 15] with n * 127 * 2^(15 - e) < 2^31."""
    for e in range(16):
        if n_terms * 127 * (1 << (15 - e)) <= 2**31 - 1:
            return e
    return 15


def weight_ratios(w_scale: F32) -> tuple[np.float32, I64]:
    """(s_wmax, r[c] = round(s_w[c] / s_wmax * 32768)); r = 0 when no scale is positive."""
    s_wmax = np.float32(0.0)
    if w_scale.size:  # the C's running max from 0: max(0, max_c s_w[c])
        s_wmax = max(s_wmax, np.float32(w_scale.max()))
    if not s_wmax > 0:
        return s_wmax, np.zeros(w_scale.shape, np.int64)
    return s_wmax, ts_round((w_scale / s_wmax) * np.float32(32768.0)).astype(np.int64)
