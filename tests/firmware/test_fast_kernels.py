"""The optimized kernels (firmware/kernels/*_fast.c) against their reference kernels, bit for bit,
on the host build (the portable C path; tests/firmware/test_fast_kernels_on_cores.py runs the DSP
and Cortex-M paths on every emulated core).

Random layers from the same generators as the reference kernels' own tests (scales over decades,
multipliers above 1 and tiny ones, extreme zero points, odd sizes, channel counts off multiples
of four, strides, both paddings, windows larger than the image), 320 or more per kernel, and
gradients with the zeros a ReLU leaves. The first mismatch is printed with its layer.
"""

from __future__ import annotations

import ctypes
from ctypes import POINTER, c_float, c_int8, c_int32, c_size_t
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from ckernels import CConvKernels, CConvLayer, CKernels, CLayer, ConvLayerT, FcLayerT
from conv_utils import cck, describe, random_conv_layer, random_geometry
from kernel_utils import random_layer, random_shape

__all__ = ["cck"]

N = 320

I8P, I32P, F32P = POINTER(c_int8), POINTER(c_int32), POINTER(c_float)
FCP, CONVP = POINTER(FcLayerT), POINTER(ConvLayerT)
SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "ts_fully_connected_forward_fast": (None, [FCP, I8P, I8P, I32P]),
    "ts_fully_connected_backward_weights_fast": (None, [FCP, I8P, I8P, c_float]),
    "ts_fully_connected_backward_input_fast": (None, [FCP, I8P, c_float, I32P, I8P, F32P]),
    "ts_conv2d_forward_fast": (None, [CONVP, I8P, I8P, F32P, F32P]),
    "ts_depthwise_conv2d_forward_fast": (None, [CONVP, I8P, I8P, F32P, F32P]),
    "ts_conv2d_backward_weights_fast_get_buffer_size": (c_size_t, [CONVP]),
    "ts_conv2d_backward_weights_fast": (None, [CONVP, I8P, I8P, c_float, I32P]),
    "ts_conv2d_backward_input_fast": (None, [CONVP, I8P, c_float, I32P, I8P, F32P]),
    "ts_grad_requantize": (ctypes.c_uint32, [I32P, c_size_t, I8P]),
    "ts_grad_requantize_fast": (ctypes.c_uint32, [I32P, c_size_t, I8P]),
}


@pytest.fixture(scope="module")
def lib(ck: CKernels) -> Any:
    for name, (res, args) in SIGNATURES.items():
        fn = getattr(ck.lib, name)
        fn.restype, fn.argtypes = res, args
    return ck.lib


def ptr(a: npt.NDArray[Any], ctype: Any) -> Any:
    assert a.flags.c_contiguous
    return a.ctypes.data_as(POINTER(ctype))


def first_mismatch(what: str, fast: npt.NDArray[Any], ref: npt.NDArray[Any], ctx: str) -> None:
    """Bit-for-bit equality (float arrays compared by their bits); the first difference."""
    f, r = np.ascontiguousarray(fast), np.ascontiguousarray(ref)
    assert f.shape == r.shape, f"{what}: shape {f.shape} vs {r.shape} ({ctx})"
    fb = f.view(np.uint32) if f.dtype == np.float32 else f
    rb = r.view(np.uint32) if r.dtype == np.float32 else r
    bad = np.flatnonzero(fb.ravel() != rb.ravel())
    assert bad.size == 0, (
        f"{what}: {bad.size} of {f.size} differ, first at {int(bad[0])}: fast "
        f"{f.ravel()[bad[0]]!r} reference {r.ravel()[bad[0]]!r} ({ctx})"
    )


def relu_grad(rng: np.random.Generator, shape: Any) -> npt.NDArray[np.int8]:
    """An output gradient with the zeros a ReLU and a max pool leave (about 60 %), extremes."""
    g = rng.integers(-128, 128, size=shape).astype(np.int8)
    g[rng.random(shape) < 0.6] = 0
    g[rng.random(shape) < 0.05] = -128
    return g


def grad_sums(rng: np.random.Generator, n: int) -> npt.NDArray[np.float32]:
    """Gradient sums as training leaves them: finite, some +0.0, never -0.0."""
    s = rng.normal(0, 10, n).astype(np.float32)
    s[rng.random(n) < 0.2] = 0.0
    return s


def test_fc_forward_fast(ck: CKernels, lib: Any) -> None:
    rng = np.random.default_rng(150)
    for i in range(N):
        k, c = random_shape(rng, i)
        layer = CLayer(random_layer(rng, k, c, well_scaled=bool(i % 2)))
        x = rng.integers(-128, 128, size=k).astype(np.int8)
        y_r, y_f = np.zeros(c, np.int8), np.zeros(c, np.int8)
        a_r, a_f = np.zeros(c, np.int32), np.full(c, 7, np.int32)
        lib.ts_fully_connected_forward(
            layer.ref, ptr(x, c_int8), ptr(y_r, c_int8), ptr(a_r, c_int32)
        )
        lib.ts_fully_connected_forward_fast(
            layer.ref, ptr(x, c_int8), ptr(y_f, c_int8), ptr(a_f, c_int32)
        )
        ctx = f"layer {i}: K {k} C {c}"
        first_mismatch("y", y_f, y_r, ctx)
        first_mismatch("acc", a_f, a_r, ctx)


def test_fc_backward_fast(ck: CKernels, lib: Any) -> None:
    rng = np.random.default_rng(151)
    for i in range(N):
        k, c = random_shape(rng, i)
        k, c = min(k, 120), min(c, 120)
        g_layer = random_layer(rng, k, c)
        x = rng.integers(-128, 128, size=k).astype(np.int8)
        g = relu_grad(rng, c)
        s_g = np.float32(0.0 if i % 11 == 0 else rng.uniform(1e-5, 1e-1))
        gw, gb = grad_sums(rng, k * c), grad_sums(rng, c)
        outs = []
        for fn in (
            "ts_fully_connected_backward_weights",
            "ts_fully_connected_backward_weights_fast",
        ):
            layer = CLayer(g_layer)
            layer.arrays["grad_w"][...] = gw.reshape(layer.arrays["grad_w"].shape)
            layer.arrays["grad_b"][...] = gb
            getattr(lib, fn)(layer.ref, ptr(x, c_int8), ptr(g, c_int8), float(s_g))
            outs.append((layer.arrays["grad_w"].copy(), layer.arrays["grad_b"].copy()))
        ctx = f"layer {i}: K {k} C {c}"
        first_mismatch("grad_w", outs[1][0], outs[0][0], ctx)
        first_mismatch("grad_b", outs[1][1], outs[0][1], ctx)

        layer = CLayer(g_layer)
        if i % 9 == 0:
            layer.arrays["w_scale"][: c // 2] = 0.0
        res = []
        for fn in ("ts_fully_connected_backward_input", "ts_fully_connected_backward_input_fast"):
            scratch = np.full(max(k, c), -0x5A5A5A5A, np.int32)
            gx, s_gx = np.zeros(k, np.int8), c_float(-1.0)
            getattr(lib, fn)(layer.ref, ptr(g, c_int8), float(s_g), ptr(scratch, c_int32),
                             ptr(gx, c_int8), ctypes.byref(s_gx))  # fmt: skip
            res.append((gx, np.float32(s_gx.value)))
        first_mismatch("gx", res[1][0], res[0][0], ctx)
        first_mismatch("s_gx", np.array([res[1][1]]), np.array([res[0][1]]), ctx)


@pytest.mark.parametrize("depthwise", [False, True], ids=["conv2d", "depthwise"])
def test_conv_forward_fast(cck: CConvKernels, lib: Any, depthwise: bool) -> None:
    rng = np.random.default_rng(152 + depthwise)
    name = "ts_depthwise_conv2d_forward" if depthwise else "ts_conv2d_forward"
    for i in range(N):
        geo = random_geometry(rng, i, depthwise=depthwise, max_c=40 if depthwise else 13)
        if i % 3 == 0 and not depthwise:  # first layers: 1-3 input channels
            geo["in_dims"] = (*geo["in_dims"][:2], int(rng.integers(1, 4)))
        g_layer = random_conv_layer(rng, geo, depthwise=depthwise, well_scaled=bool(i % 2))
        layer = CConvLayer(g_layer)
        if cck.conv_check(layer) != 0:
            continue
        x = rng.integers(-128, 128, size=g_layer.in_dims).astype(np.int8)
        y_r, r_r = cck._forward(name, layer, x, (np.inf, -np.inf))
        y_f, r_f = cck._forward(name + "_fast", layer, x, (np.inf, -np.inf))
        y_n, _ = cck._forward(name + "_fast", layer, x, None)
        ctx = f"layer {i}: {describe(g_layer)}"
        first_mismatch("y", y_f, y_r, ctx)
        first_mismatch("y (no range)", y_n, y_r, ctx)
        assert r_r is not None and r_f is not None
        first_mismatch("range", np.array(r_f, np.float32), np.array(r_r, np.float32), ctx)


def test_conv_backward_fast(cck: CConvKernels, lib: Any) -> None:
    rng = np.random.default_rng(154)
    checked = 0
    for i in range(N):
        geo = random_geometry(rng, i, max_c=13)
        g_layer = random_conv_layer(rng, geo, depthwise=False)
        probe = CConvLayer(g_layer)
        if cck.conv_check(probe) != 0:
            continue
        checked += 1
        x = rng.integers(-128, 128, size=g_layer.in_dims).astype(np.int8)
        g = relu_grad(rng, g_layer.out_dims)
        s_g = np.float32(0.0 if i % 11 == 0 else rng.uniform(1e-5, 1e-1))
        ctx = f"layer {i}: {describe(g_layer)}"
        gw = grad_sums(rng, probe.arrays["grad_w"].size)
        gb = grad_sums(rng, probe.arrays["grad_b"].size)
        outs = []
        for fast in (False, True):
            layer = CConvLayer(g_layer)
            layer.arrays["grad_w"][...] = gw.reshape(layer.arrays["grad_w"].shape)
            layer.arrays["grad_b"][...] = gb
            if fast:
                size = lib.ts_conv2d_backward_weights_fast_get_buffer_size(layer.ref)
                scratch = np.full(size // 4, -0x5A5A5A5A, np.int32)
                lib.ts_conv2d_backward_weights_fast(
                    layer.ref, ptr(x, c_int8), ptr(g, c_int8), float(s_g), ptr(scratch, c_int32)
                )
            else:
                cck.conv_backward_weights(layer, x, g, s_g)
            outs.append((layer.arrays["grad_w"].copy(), layer.arrays["grad_b"].copy()))
        first_mismatch("grad_w", outs[1][0], outs[0][0], ctx)
        first_mismatch("grad_b", outs[1][1], outs[0][1], ctx)

        layer = CConvLayer(g_layer)
        gx_r, s_r = cck.conv_backward_input(layer, g, s_g)
        size = lib.ts_conv2d_backward_input_get_buffer_size(layer.ref)
        scratch = np.full(max(1, size // 4), -0x5A5A5A5A, np.int32)
        gx_f, s_f = np.zeros(g_layer.in_dims, np.int8), c_float(-1.0)
        lib.ts_conv2d_backward_input_fast(layer.ref, ptr(g, c_int8), float(s_g),
                                          ptr(scratch, c_int32), ptr(gx_f, c_int8),
                                          ctypes.byref(s_f))  # fmt: skip
        first_mismatch("gx", gx_f, gx_r, ctx)
        first_mismatch("s_gx", np.array([s_f.value], np.float32), np.array([s_r], np.float32), ctx)
    assert checked >= 300


def test_grad_requantize_fast(ck: CKernels, lib: Any) -> None:
    rng = np.random.default_rng(155)
    for i in range(N):
        n = int(rng.integers(1, 700))
        bits = int(rng.integers(0, 32))
        a = rng.integers(0, 1 << bits, size=n, dtype=np.int64) * rng.choice([-1, 1], n)
        a = np.clip(a, -(1 << 31), (1 << 31) - 1).astype(np.int32)
        if i % 7 == 0:
            a[int(rng.integers(0, n))] = np.iinfo(np.int32).min
        if i % 13 == 0:
            a[...] = 0
        q_r, q_f = np.zeros(n, np.int8), np.zeros(n, np.int8)
        m_r = lib.ts_grad_requantize(ptr(a, c_int32), n, ptr(q_r, c_int8))
        m_f = lib.ts_grad_requantize_fast(ptr(a, c_int32), n, ptr(q_f, c_int8))
        ctx = f"case {i}: n {n}, magnitudes below 2^{bits}"
        assert m_f == m_r, ctx
        first_mismatch("gx", q_f, q_r, ctx)
