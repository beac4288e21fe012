"""ctypes binding to the C kernels in build/hostlib/libtinysplit.so (`make hostlib`).

``CLayer`` and ``CConvLayer`` mirror ts_fc_layer_t and ts_conv_layer_t
(firmware/include/ts_kernels.h) field for field and own the numpy arrays their pointers point
at, so a golden layer can be copied in, run through the C kernels and read back for a
field-by-field comparison.
"""

from __future__ import annotations

import ctypes
from ctypes import POINTER, c_double, c_float, c_int8, c_int32, c_size_t, c_uint8, c_uint16
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tinysplit.core.golden import FCLayer

REPO = Path(__file__).resolve().parents[2]
LIB_PATH = REPO / "build" / "hostlib" / "libtinysplit.so"

I8 = npt.NDArray[np.int8]
I32 = npt.NDArray[np.int32]
F32 = npt.NDArray[np.float32]


class QuantT(ctypes.Structure):
    """ts_quant_t."""

    _fields_ = [("scale", c_float), ("zero_point", c_int32)]


class ParamsT(ctypes.Structure):
    """ts_params_t, same field order (ctypes applies the C ABI's padding)."""

    _fields_ = [
        ("channels", c_uint16),
        ("layout", c_uint8),
        ("per_channel", ctypes.c_uint32),
        ("in_q", QuantT),
        ("out_q", QuantT),
        ("w", POINTER(c_int8)),
        ("bias", POINTER(c_int32)),
        ("w_scale", POINTER(c_float)),
        ("out_mult", POINTER(c_int32)),
        ("out_shift", POINTER(c_int32)),
        ("master_w", POINTER(c_float)),
        ("master_b", POINTER(c_float)),
        ("grad_w", POINTER(c_float)),
        ("grad_b", POINTER(c_float)),
        ("range_min", c_float),
        ("range_max", c_float),
    ]


class FcLayerT(ctypes.Structure):
    """ts_fc_layer_t."""

    _fields_ = [
        ("in_features", c_uint16),
        ("out_features", c_uint16),
        ("act", c_uint8),
        ("p", ParamsT),
    ]


def _ptr(a: npt.NDArray[Any], ctype: Any) -> Any:
    assert a.flags.c_contiguous
    return a.ctypes.data_as(POINTER(ctype))


_ARRAYS = (
    ("w", np.int8, c_int8),
    ("bias", np.int32, c_int32),
    ("w_scale", np.float32, c_float),
    ("out_mult", np.int32, c_int32),
    ("out_shift", np.int32, c_int32),
    ("master_w", np.float32, c_float),
    ("master_b", np.float32, c_float),
    ("grad_w", np.float32, c_float),
    ("grad_b", np.float32, c_float),
)


class _Trainable:
    """The ts_params_t of a golden layer (FCLayer or ConvLayer) and the arrays it points at."""

    arrays: dict[str, npt.NDArray[Any]]

    def _params(self, g: Any, layout: int) -> ParamsT:
        self.arrays = {}
        ptrs = {}
        for name, dt, ct in _ARRAYS:
            a = np.ascontiguousarray(getattr(g, name), dtype=dt).copy()
            self.arrays[name] = a
            ptrs[name] = _ptr(a, ct)
        c = int(g.w_scale.size)
        return ParamsT(
            channels=c,
            layout=layout,
            per_channel=int(g.w.size) // c,
            in_q=QuantT(float(g.in_scale), g.in_zp),
            out_q=QuantT(float(g.out_scale), g.out_zp),
            range_min=float(g.range_min),
            range_max=float(g.range_max),
            **ptrs,
        )

    def _golden_params(self, p: ParamsT) -> dict[str, Any]:
        return {
            "in_scale": np.float32(p.in_q.scale),
            "in_zp": p.in_q.zero_point,
            "out_scale": np.float32(p.out_q.scale),
            "out_zp": p.out_q.zero_point,
            "range_min": np.float32(p.range_min),
            "range_max": np.float32(p.range_max),
            **{k: v.copy() for k, v in self.arrays.items()},
        }


class CLayer(_Trainable):
    """A ts_fc_layer_t built from a golden FCLayer; the arrays are private copies."""

    def __init__(self, g: FCLayer) -> None:
        self.s = FcLayerT(
            in_features=g.in_features,
            out_features=g.out_features,
            act=1 if g.relu else 0,
            p=self._params(g, 0),
        )

    @property
    def ref(self) -> Any:
        return ctypes.byref(self.s)

    @property
    def params(self) -> Any:
        return ctypes.byref(self.s.p)

    def to_golden(self) -> FCLayer:
        """The C layer's current state as an FCLayer (arrays copied)."""
        s = self.s
        return FCLayer(
            in_features=s.in_features,
            out_features=s.out_features,
            relu=bool(s.act),
            **self._golden_params(s.p),
        )


def _i8(a: npt.ArrayLike) -> I8:
    return np.ascontiguousarray(a, dtype=np.int8)


class _TrainingState:
    """ts_params_check, ts_sgd_step, ts_range_update and ts_requantize: one function each for
    every trainable op, so both kernel wrappers offer them."""

    lib: Any

    def _bind_params(self, lib: Any) -> None:
        pp = POINTER(ParamsT)
        for name, res, args in (
            ("ts_params_check", ctypes.c_int, [pp]),
            ("ts_range_update", None, [pp, c_float, c_float]),
            ("ts_sgd_step", None, [pp, c_float]),
            ("ts_requantize", None, [pp]),
        ):
            fn = getattr(lib, name)
            fn.restype = res
            fn.argtypes = args

    def params_check(self, layer: CLayer | CConvLayer) -> int:
        return int(self.lib.ts_params_check(layer.params))

    def range_update(
        self, layer: CLayer | CConvLayer, bmin: float | np.float32, bmax: float | np.float32
    ) -> None:
        self.lib.ts_range_update(layer.params, float(bmin), float(bmax))

    def sgd_step(self, layer: CLayer | CConvLayer, lr: float | np.float32) -> None:
        self.lib.ts_sgd_step(layer.params, float(np.float32(lr)))

    def requantize(self, layer: CLayer | CConvLayer) -> None:
        self.lib.ts_requantize(layer.params)


class CKernels(_TrainingState):
    """The scalar helpers of ts_support.h and the FC kernels and training-state functions of
    ts_kernels.h, called with numpy arrays."""

    def __init__(self, path: Path = LIB_PATH) -> None:
        lib = ctypes.CDLL(str(path))
        lp = POINTER(FcLayerT)
        sig: dict[str, tuple[Any, list[Any]]] = {
            "ts_round": (c_int32, [c_float]),
            "ts_quantize_multiplier": (None, [c_double, POINTER(c_int32), POINTER(c_int32)]),
            "ts_multiply_by_quantized_multiplier": (c_int32, [c_int32, c_int32, c_int32]),
            "ts_fully_connected_check": (ctypes.c_int, [lp]),
            "ts_fully_connected_forward": (
                None,
                [lp, POINTER(c_int8), POINTER(c_int8), POINTER(c_int32)],
            ),
            "ts_act_backward": (
                None,
                [c_uint8, QuantT, POINTER(c_int8), POINTER(c_int8), c_size_t],
            ),
            "ts_fully_connected_backward_weights": (
                None,
                [lp, POINTER(c_int8), POINTER(c_int8), c_float],
            ),
            "ts_fully_connected_backward_input": (
                None,
                [lp, POINTER(c_int8), c_float, POINTER(c_int32), POINTER(c_int8), POINTER(c_float)],
            ),
            "ts_fully_connected_observe_range": (
                None,
                [lp, POINTER(c_int32), POINTER(c_float), POINTER(c_float)],
            ),
        }
        for name, (res, args) in sig.items():
            fn = getattr(lib, name)
            fn.restype = res
            fn.argtypes = args
        self.lib = lib
        self._bind_params(lib)

    # ---- ts_quant.h --------------------------------------------------------------------------

    def ts_round(self, f: float | np.float32) -> int:
        return int(self.lib.ts_round(float(np.float32(f))))

    def quantize_multiplier(self, m: float) -> tuple[int, int]:
        mult, shift = c_int32(), c_int32()
        self.lib.ts_quantize_multiplier(float(m), ctypes.byref(mult), ctypes.byref(shift))
        return int(mult.value), int(shift.value)

    def mbqm(self, x: int, mult: int, shift: int) -> int:
        return int(self.lib.ts_multiply_by_quantized_multiplier(x, mult, shift))

    # ---- ts_kernels.h: fully connected and the training state ---------------------------------

    def fc_forward(self, layer: CLayer, x: npt.ArrayLike) -> tuple[I8, I32]:
        x8 = _i8(x)
        assert x8.shape == (layer.s.in_features,)
        y = np.zeros(layer.s.out_features, dtype=np.int8)
        acc = np.zeros(layer.s.out_features, dtype=np.int32)
        self.lib.ts_fully_connected_forward(
            layer.ref, _ptr(x8, c_int8), _ptr(y, c_int8), _ptr(acc, c_int32)
        )
        return y, acc

    def fc_forward_no_acc(self, layer: CLayer, x: npt.ArrayLike) -> I8:
        x8 = _i8(x)
        y = np.zeros(layer.s.out_features, dtype=np.int8)
        self.lib.ts_fully_connected_forward(layer.ref, _ptr(x8, c_int8), _ptr(y, c_int8), None)
        return y

    def fc_check(self, layer: CLayer) -> int:
        return int(self.lib.ts_fully_connected_check(layer.ref))

    def fc_act_backward(self, layer: CLayer, g: npt.ArrayLike, y: npt.ArrayLike) -> I8:
        """ts_act_backward with the layer's activation and out_q; returns the masked copy of g
        (the kernel works in place on it)."""
        g8 = _i8(g).copy()
        y8 = _i8(y)
        self.lib.ts_act_backward(
            layer.s.act, layer.s.p.out_q, _ptr(g8, c_int8), _ptr(y8, c_int8), g8.size
        )
        return g8

    def fc_backward_weights(
        self, layer: CLayer, x: npt.ArrayLike, g: npt.ArrayLike, s_g: float | np.float32
    ) -> None:
        x8, g8 = _i8(x), _i8(g)
        self.lib.ts_fully_connected_backward_weights(
            layer.ref, _ptr(x8, c_int8), _ptr(g8, c_int8), float(np.float32(s_g))
        )

    def fc_backward_input(
        self, layer: CLayer, g: npt.ArrayLike, s_g: float | np.float32
    ) -> tuple[I8, np.float32]:
        g8 = _i8(g)
        k = layer.s.in_features
        scratch = np.zeros(k, dtype=np.int32)
        gx = np.zeros(k, dtype=np.int8)
        s_gx = c_float()
        self.lib.ts_fully_connected_backward_input(
            layer.ref,
            _ptr(g8, c_int8),
            float(np.float32(s_g)),
            _ptr(scratch, c_int32),
            _ptr(gx, c_int8),
            ctypes.byref(s_gx),
        )
        return gx, np.float32(s_gx.value)

    def fc_observe_range(
        self,
        layer: CLayer,
        acc: npt.ArrayLike,
        bmin: float | np.float32,
        bmax: float | np.float32,
    ) -> tuple[np.float32, np.float32]:
        a = np.ascontiguousarray(acc, dtype=np.int32)
        lo, hi = c_float(float(bmin)), c_float(float(bmax))
        self.lib.ts_fully_connected_observe_range(
            layer.ref, _ptr(a, c_int32), ctypes.byref(lo), ctypes.byref(hi)
        )
        return np.float32(lo.value), np.float32(hi.value)

    def client_train_step(
        self,
        layer: CLayer,
        xs: npt.ArrayLike,
        grads: npt.ArrayLike,
        grad_scales: npt.ArrayLike,
        lr: float | np.float32,
    ) -> I8:
        """One minibatch with the C kernels, in the order firmware/client/train.c calls them."""
        x8 = _i8(xs)
        g8 = _i8(grads)
        sg = np.asarray(grad_scales, dtype=np.float32)
        bmin, bmax = np.float32(np.inf), np.float32(-np.inf)
        ys = np.zeros((x8.shape[0], layer.s.out_features), dtype=np.int8)
        for b in range(x8.shape[0]):
            ys[b], acc = self.fc_forward(layer, x8[b])
            bmin, bmax = self.fc_observe_range(layer, acc, bmin, bmax)
        for b in range(x8.shape[0]):
            g = self.fc_act_backward(layer, g8[b], ys[b])
            self.fc_backward_weights(layer, x8[b], g, sg[b])
        self.sgd_step(layer, lr)
        self.range_update(layer, bmin, bmax)
        self.requantize(layer)
        return ys


# ---- convolutional layers and pools (firmware/include/ts_kernels.h) --------------------------

from tinysplit.core.golden import ConvLayer, PoolParams  # noqa: E402


class DimsT(ctypes.Structure):
    """ts_dims_t."""

    _fields_ = [("h", c_uint16), ("w", c_uint16), ("c", c_uint16)]


class ConvLayerT(ctypes.Structure):
    """ts_conv_layer_t, same field order."""

    _fields_ = [
        ("in_", DimsT),
        ("out", DimsT),
        ("kh", c_uint16),
        ("kw", c_uint16),
        ("stride_h", c_uint8),
        ("stride_w", c_uint8),
        ("padding", c_uint8),
        ("act", c_uint8),
        ("depthwise", c_uint8),
        ("p", ParamsT),
    ]


class PoolParamsT(ctypes.Structure):
    """ts_pool_params_t."""

    _fields_ = [
        ("in_", DimsT),
        ("out", DimsT),
        ("kh", c_uint16),
        ("kw", c_uint16),
        ("stride_h", c_uint8),
        ("stride_w", c_uint8),
        ("padding", c_uint8),
    ]


class CConvLayer(_Trainable):
    """A ts_conv_layer_t built from a golden ConvLayer; the arrays are private copies."""

    def __init__(self, g: ConvLayer) -> None:
        self.w_shape = g.w_shape
        self.s = ConvLayerT(
            in_=DimsT(*g.in_dims),
            out=DimsT(*g.out_dims),
            kh=g.kh,
            kw=g.kw,
            stride_h=g.stride_h,
            stride_w=g.stride_w,
            padding=g.padding,
            act=g.act,
            depthwise=1 if g.depthwise else 0,
            p=self._params(g, 1 if g.depthwise else 0),
        )

    @property
    def ref(self) -> Any:
        return ctypes.byref(self.s)

    @property
    def params(self) -> Any:
        return ctypes.byref(self.s.p)

    def to_golden(self) -> ConvLayer:
        """The C layer's current state as a ConvLayer (arrays copied)."""
        s = self.s
        return ConvLayer(
            in_dims=(s.in_.h, s.in_.w, s.in_.c),
            out_dims=(s.out.h, s.out.w, s.out.c),
            kh=s.kh,
            kw=s.kw,
            stride_h=s.stride_h,
            stride_w=s.stride_w,
            padding=s.padding,
            act=s.act,
            depthwise=bool(s.depthwise),
            **self._golden_params(s.p),
        )


def pool_params(p: PoolParams) -> PoolParamsT:
    return PoolParamsT(
        in_=DimsT(*p.in_dims),
        out=DimsT(*p.out_dims),
        kh=p.kh,
        kw=p.kw,
        stride_h=p.stride_h,
        stride_w=p.stride_w,
        padding=p.padding,
    )


class CConvKernels(_TrainingState):
    """The conv, depthwise and pool kernels of ts_kernels.h, called with numpy arrays (shares
    CKernels' library)."""

    def __init__(self, lib: Any) -> None:
        lp, pp = POINTER(ConvLayerT), POINTER(PoolParamsT)
        i8p, i32p, f32p = POINTER(c_int8), POINTER(c_int32), POINTER(c_float)
        fwd = (None, [lp, i8p, i8p, f32p, f32p])
        bw = (None, [lp, i8p, i8p, c_float])
        bi = (None, [lp, i8p, c_float, i32p, i8p, f32p])
        sig: dict[str, tuple[Any, list[Any]]] = {
            "ts_conv_check": (ctypes.c_int, [lp]),
            "ts_pool_check": (ctypes.c_int, [pp]),
            "ts_act_range": (None, [c_uint8, QuantT, i32p, i32p]),
            "ts_act_backward": (None, [c_uint8, QuantT, i8p, i8p, c_size_t]),
            "ts_grad_requantize": (ctypes.c_uint32, [i32p, c_size_t, i8p]),
            "ts_conv2d_forward": fwd,
            "ts_conv2d_backward_weights": bw,
            "ts_conv2d_backward_input_get_buffer_size": (c_size_t, [lp]),
            "ts_conv2d_backward_input": bi,
            "ts_depthwise_conv2d_forward": fwd,
            "ts_depthwise_conv2d_backward_weights": bw,
            "ts_depthwise_conv2d_backward_input_get_buffer_size": (c_size_t, [lp]),
            "ts_depthwise_conv2d_backward_input": bi,
            "ts_max_pool2d_forward": (None, [pp, i8p, i8p]),
            "ts_max_pool2d_backward_get_buffer_size": (c_size_t, [pp]),
            "ts_max_pool2d_backward": (None, [pp, i8p, i8p, c_float, i32p, i8p, f32p]),
            "ts_avg_pool2d_forward": (None, [pp, i8p, i8p]),
            "ts_avg_pool2d_backward_get_buffer_size": (c_size_t, [pp]),
            "ts_avg_pool2d_backward": (None, [pp, i8p, c_float, i32p, i8p, f32p]),
        }
        for name, (res, args) in sig.items():
            fn = getattr(lib, name)
            fn.restype = res
            fn.argtypes = args
        self.lib = lib
        self._bind_params(lib)

    def conv_check(self, layer: CConvLayer) -> int:
        return int(self.lib.ts_conv_check(layer.ref))

    def pool_check(self, p: PoolParams) -> int:
        return int(self.lib.ts_pool_check(ctypes.byref(pool_params(p))))

    def act_range(self, act: int, scale: float | np.float32, zp: int) -> tuple[int, int]:
        lo, hi = c_int32(), c_int32()
        self.lib.ts_act_range(act, QuantT(float(scale), zp), ctypes.byref(lo), ctypes.byref(hi))
        return int(lo.value), int(hi.value)

    def act_backward(
        self, act: int, scale: float | np.float32, zp: int, g: npt.ArrayLike, y: npt.ArrayLike
    ) -> I8:
        """Returns the masked copy of g (the kernel works in place)."""
        g8 = _i8(g).copy()
        y8 = _i8(y)
        self.lib.ts_act_backward(
            act, QuantT(float(scale), zp), _ptr(g8, c_int8), _ptr(y8, c_int8), g8.size
        )
        return g8

    def grad_requantize(self, acc: npt.ArrayLike) -> tuple[I8, int]:
        a = np.ascontiguousarray(acc, dtype=np.int32)
        gx = np.zeros(a.shape, np.int8)
        m = self.lib.ts_grad_requantize(_ptr(a, c_int32), a.size, _ptr(gx, c_int8))
        return gx, int(m)

    def _forward(
        self, name: str, layer: CConvLayer, x: npt.ArrayLike, rng: tuple[float, float] | None
    ) -> tuple[I8, tuple[np.float32, np.float32] | None]:
        s = layer.s
        x8 = _i8(x)
        assert x8.size == s.in_.h * s.in_.w * s.in_.c
        y = np.zeros((s.out.h, s.out.w, s.out.c), np.int8)
        fn = getattr(self.lib, name)
        if rng is None:
            fn(layer.ref, _ptr(x8, c_int8), _ptr(y, c_int8), None, None)
            return y, None
        lo, hi = c_float(rng[0]), c_float(rng[1])
        fn(layer.ref, _ptr(x8, c_int8), _ptr(y, c_int8), ctypes.byref(lo), ctypes.byref(hi))
        return y, (np.float32(lo.value), np.float32(hi.value))

    def conv_forward(
        self, layer: CConvLayer, x: npt.ArrayLike, rng: tuple[float, float] | None = None
    ) -> tuple[I8, tuple[np.float32, np.float32] | None]:
        """ts_conv2d_forward or ts_depthwise_conv2d_forward (by the layer's kind)."""
        kind = "depthwise_conv2d" if layer.s.depthwise else "conv2d"
        return self._forward(f"ts_{kind}_forward", layer, x, rng)

    def conv_backward_weights(
        self, layer: CConvLayer, x: npt.ArrayLike, g: npt.ArrayLike, s_g: float | np.float32
    ) -> None:
        kind = "depthwise_conv2d" if layer.s.depthwise else "conv2d"
        fn = getattr(self.lib, f"ts_{kind}_backward_weights")
        x8, g8 = _i8(x), _i8(g)
        fn(layer.ref, _ptr(x8, c_int8), _ptr(g8, c_int8), float(np.float32(s_g)))

    def conv_backward_input(
        self, layer: CConvLayer, g: npt.ArrayLike, s_g: float | np.float32
    ) -> tuple[I8, np.float32]:
        kind = "depthwise_conv2d" if layer.s.depthwise else "conv2d"
        size = getattr(self.lib, f"ts_{kind}_backward_input_get_buffer_size")(layer.ref)
        s = layer.s
        # Poisoned scratch: the kernel must not depend on its previous content.
        scratch = np.full(max(1, size // 4), -0x5A5A5A5A, np.int32)
        gx = np.zeros((s.in_.h, s.in_.w, s.in_.c), np.int8)
        s_gx = c_float(-1.0)
        g8 = _i8(g)
        getattr(self.lib, f"ts_{kind}_backward_input")(
            layer.ref,
            _ptr(g8, c_int8),
            float(np.float32(s_g)),
            _ptr(scratch, c_int32),
            _ptr(gx, c_int8),
            ctypes.byref(s_gx),
        )
        return gx, np.float32(s_gx.value)

    def pool_forward(self, kind: str, p: PoolParams, x: npt.ArrayLike) -> I8:
        """kind: "max" or "avg"."""
        x8 = _i8(x)
        y = np.zeros(p.out_dims, np.int8)
        getattr(self.lib, f"ts_{kind}_pool2d_forward")(
            ctypes.byref(pool_params(p)), _ptr(x8, c_int8), _ptr(y, c_int8)
        )
        return y

    def pool_buffer_size(self, kind: str, p: PoolParams) -> int:
        fn = getattr(self.lib, f"ts_{kind}_pool2d_backward_get_buffer_size")
        return int(fn(ctypes.byref(pool_params(p))))

    def max_pool_backward(
        self, p: PoolParams, x: npt.ArrayLike, g: npt.ArrayLike, s_g: float | np.float32
    ) -> tuple[I8, np.float32]:
        size = self.pool_buffer_size("max", p)
        scratch = np.full(max(1, size // 4), -0x5A5A5A5A, np.int32)
        gx = np.full(p.in_dims, 99, np.int8)
        s_gx = c_float(-1.0)
        x8, g8 = _i8(x), _i8(g)
        self.lib.ts_max_pool2d_backward(
            ctypes.byref(pool_params(p)), _ptr(x8, c_int8), _ptr(g8, c_int8),
            float(np.float32(s_g)), _ptr(scratch, c_int32) if size else None,
            _ptr(gx, c_int8), ctypes.byref(s_gx),
        )  # fmt: skip
        return gx, np.float32(s_gx.value)

    def avg_pool_backward(
        self, p: PoolParams, g: npt.ArrayLike, s_g: float | np.float32
    ) -> tuple[I8, np.float32]:
        size = self.pool_buffer_size("avg", p)
        scratch = np.full(max(1, size // 4), -0x5A5A5A5A, np.int32)
        gx = np.full(p.in_dims, 99, np.int8)
        s_gx = c_float(-1.0)
        g8 = _i8(g)
        self.lib.ts_avg_pool2d_backward(
            ctypes.byref(pool_params(p)), _ptr(g8, c_int8), float(np.float32(s_g)),
            _ptr(scratch, c_int32) if size else None, _ptr(gx, c_int8), ctypes.byref(s_gx),
        )  # fmt: skip
        return gx, np.float32(s_gx.value)
