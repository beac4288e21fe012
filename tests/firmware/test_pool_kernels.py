"""MaxPool2D and AveragePool2D forward and backward: C vs golden, bit for bit.

Both backward paths are covered: non-overlapping windows (no scratch, gx written directly) and
overlapping ones (int32 scratch; max-pool sums kept exact when they fit int8, re-quantized
otherwise). The max-pool argmax is recomputed from the kept input; inputs with many ties check
that C and golden pick the same (first, row-major) maximum.
"""

from __future__ import annotations

import numpy as np
from ckernels import CConvKernels
from conv_utils import cck, random_grad, random_pool
from kernel_utils import assert_bitexact

from tinysplit.core import golden

__all__ = ["cck"]

N_POOLS = 240


def _input(rng: np.random.Generator, p: golden.PoolParams, i: int) -> np.ndarray:
    if i % 3 == 0:  # few distinct values: many ties inside a window
        return rng.integers(-2, 2, size=p.in_dims).astype(np.int8)
    return rng.integers(-128, 128, size=p.in_dims).astype(np.int8)


def test_pool_forward(cck: CConvKernels) -> None:
    rng = np.random.default_rng(110)
    for i in range(N_POOLS):
        p = random_pool(rng, i)
        assert cck.pool_check(p) == 0, p
        for n in range(2):
            x = _input(rng, p, i + n)
            ctx = f"(pool {i} input {n}: {p})"
            assert_bitexact("max", cck.pool_forward("max", p, x),
                            golden.max_pool2d_forward(p, x), ctx)  # fmt: skip
            assert_bitexact("avg", cck.pool_forward("avg", p, x),
                            golden.avg_pool2d_forward(p, x), ctx)  # fmt: skip


def test_max_pool_backward(cck: CConvKernels) -> None:
    rng = np.random.default_rng(111)
    n_paths = {True: 0, False: 0}
    n_rescaled = 0
    for i in range(N_POOLS):
        overlap = bool(i % 2)
        p = random_pool(rng, i, overlap=overlap)
        size = cck.pool_buffer_size("max", p)
        assert (size > 0) == overlap and size in (0, 4 * int(np.prod(p.in_dims)))
        for n in range(2):
            x = _input(rng, p, i + n)
            g, s_g = random_grad(rng, p.out_dims)
            ctx = f"(pool {i} sample {n}: {p} s_g={s_g!r})"
            gx_c, s_c = cck.max_pool_backward(p, x, g, s_g)
            gx_g, s_gold = golden.max_pool2d_backward(p, x, g, s_g)
            assert_bitexact("gx", gx_c, gx_g, ctx)
            assert_bitexact("s_gx", s_c, s_gold, ctx)
            n_paths[overlap] += 1
            n_rescaled += s_gold != np.float32(s_g)
            # The gradient is conserved whenever it was kept exact.
            if s_gold == np.float32(s_g):
                assert int(gx_g.astype(np.int64).sum()) == int(g.astype(np.int64).sum()), ctx
    assert min(n_paths.values()) >= 200 and n_rescaled >= 5


def test_avg_pool_backward(cck: CConvKernels) -> None:
    rng = np.random.default_rng(112)
    n_paths = {True: 0, False: 0}
    for i in range(N_POOLS):
        overlap = bool(i % 2)
        p = random_pool(rng, i, overlap=overlap)
        assert (cck.pool_buffer_size("avg", p) > 0) == overlap
        for n in range(2):
            g, s_g = random_grad(rng, p.out_dims)
            ctx = f"(pool {i} sample {n}: {p} s_g={s_g!r})"
            gx_c, s_c = cck.avg_pool_backward(p, g, s_g)
            gx_g, s_gold = golden.avg_pool2d_backward(p, g, s_g)
            assert_bitexact("gx", gx_c, gx_g, ctx)
            assert_bitexact("s_gx", s_c, s_gold, ctx)
            n_paths[overlap] += 1
    assert min(n_paths.values()) >= 200


def test_avg_pool_backward_exact_case() -> None:
    """2x2/2 valid windows and a gradient reaching 127: each input gets exactly g / 4."""
    p = golden.PoolParams.make((4, 6, 2), (2, 2), (2, 2), golden.PADDING_VALID)
    g = np.random.default_rng(113).integers(-127, 128, size=p.out_dims).astype(np.int8)
    g[0, 0, 0] = 127
    gx, s = golden.avg_pool2d_backward(p, g, np.float32(0.5))
    assert s == np.float32(0.125)
    assert np.array_equal(gx, np.repeat(np.repeat(g, 2, axis=0), 2, axis=1))
