"""The golden model's trainable FC layer: the Python twin of ts_fc_layer_t (ts_kernels.h)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from .quant import quantize_multiplier

F32 = npt.NDArray[np.float32]
I8 = npt.NDArray[np.int8]
I32 = npt.NDArray[np.int32]


def _zeros_f32(shape: tuple[int, ...]) -> F32:
    return np.zeros(shape, dtype=np.float32)


@dataclass
class FCLayer:
    """Fully connected layer, TFLite layout: w [C, K] (C = out_features, K = in_features).

    Fields mirror ts_fc_layer_t: ``relu`` is its ``act`` (RELU or NONE); the rest is its
    training state ``p`` (ts_params_t), with ``in_scale``/``in_zp`` for ``p.in_q`` and
    ``out_scale``/``out_zp`` for ``p.out_q``. Arrays are coerced to the C dtypes on creation.
    """

    in_features: int
    out_features: int
    relu: bool
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
    grad_w: F32 = field(default_factory=lambda: _zeros_f32((0,)))
    grad_b: F32 = field(default_factory=lambda: _zeros_f32((0,)))
    range_min: np.float32 = field(default_factory=lambda: np.float32(0.0))
    range_max: np.float32 = field(default_factory=lambda: np.float32(0.0))

    def __post_init__(self) -> None:
        k, c = int(self.in_features), int(self.out_features)
        self.in_features, self.out_features = k, c
        self.relu = bool(self.relu)
        self.in_scale = np.float32(self.in_scale)
        self.out_scale = np.float32(self.out_scale)
        self.in_zp, self.out_zp = int(self.in_zp), int(self.out_zp)
        self.w = np.ascontiguousarray(self.w, dtype=np.int8).reshape(c, k)
        self.bias = np.ascontiguousarray(self.bias, dtype=np.int32).reshape(c)
        self.w_scale = np.ascontiguousarray(self.w_scale, dtype=np.float32).reshape(c)
        self.out_mult = np.ascontiguousarray(self.out_mult, dtype=np.int32).reshape(c)
        self.out_shift = np.ascontiguousarray(self.out_shift, dtype=np.int32).reshape(c)
        self.master_w = np.ascontiguousarray(self.master_w, dtype=np.float32).reshape(c, k)
        self.master_b = np.ascontiguousarray(self.master_b, dtype=np.float32).reshape(c)
        if self.grad_w.size == 0:
            self.grad_w = _zeros_f32((c, k))
        if self.grad_b.size == 0:
            self.grad_b = _zeros_f32((c,))
        self.grad_w = np.ascontiguousarray(self.grad_w, dtype=np.float32).reshape(c, k)
        self.grad_b = np.ascontiguousarray(self.grad_b, dtype=np.float32).reshape(c)
        self.range_min = np.float32(self.range_min)
        self.range_max = np.float32(self.range_max)

    @classmethod
    def from_quantized(
        cls,
        w: npt.ArrayLike,
        bias: npt.ArrayLike,
        w_scale: npt.ArrayLike,
        in_scale: float,
        in_zp: int,
        out_scale: float,
        out_zp: int,
        relu: bool,
        master_w: npt.ArrayLike,
        master_b: npt.ArrayLike,
    ) -> FCLayer:
        """A layer as exported: multipliers from the scales, the range from out_q, zero grads."""
        w8 = np.asarray(w, dtype=np.int8)
        c, k = w8.shape
        ws = np.asarray(w_scale, dtype=np.float32).reshape(c)
        s_x, s_y = np.float32(in_scale), np.float32(out_scale)
        mult = np.zeros(c, dtype=np.int32)
        shift = np.zeros(c, dtype=np.int32)
        for i in range(c):
            # TFLM's order, in double: (s_x * s_w[c]) / s_y.
            mult[i], shift[i] = quantize_multiplier(float(s_x) * float(ws[i]) / float(s_y))
        return cls(
            in_features=k,
            out_features=c,
            relu=relu,
            in_scale=s_x,
            in_zp=int(in_zp),
            out_scale=s_y,
            out_zp=int(out_zp),
            w=w8,
            bias=np.asarray(bias, dtype=np.int32),
            w_scale=ws,
            out_mult=mult,
            out_shift=shift,
            master_w=np.asarray(master_w, dtype=np.float32),
            master_b=np.asarray(master_b, dtype=np.float32),
            grad_w=_zeros_f32((c, k)),
            grad_b=_zeros_f32((c,)),
            range_min=s_y * np.float32(-128 - int(out_zp)),
            range_max=s_y * np.float32(127 - int(out_zp)),
        )

    def copy(self) -> FCLayer:
        """A deep copy (every array copied)."""
        return FCLayer(
            in_features=self.in_features,
            out_features=self.out_features,
            relu=self.relu,
            in_scale=self.in_scale,
            in_zp=self.in_zp,
            out_scale=self.out_scale,
            out_zp=self.out_zp,
            w=self.w.copy(),
            bias=self.bias.copy(),
            w_scale=self.w_scale.copy(),
            out_mult=self.out_mult.copy(),
            out_shift=self.out_shift.copy(),
            master_w=self.master_w.copy(),
            master_b=self.master_b.copy(),
            grad_w=self.grad_w.copy(),
            grad_b=self.grad_b.copy(),
            range_min=self.range_min,
            range_max=self.range_max,
        )


def act_min(layer: FCLayer) -> int:
    """Lowest int8 the layer's activation lets through (ts_act_range's act_min)."""
    if layer.relu and layer.out_zp > -128:
        return layer.out_zp
    return -128
