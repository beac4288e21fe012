"""int8 ReLU forward and its backward mask (firmware/kernels/relu.c, relu_backward.c)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

I8 = npt.NDArray[np.int8]


def relu_forward(x: npt.ArrayLike, zero_point: int) -> I8:
    """max(x, zero_point): real 0 is the integer zero_point, no requantization needed."""
    return np.maximum(np.asarray(x, dtype=np.int8), np.int8(zero_point)).astype(np.int8)


def relu_backward(g: npt.ArrayLike, y: npt.ArrayLike, act_min: int) -> I8:
    """The gradient where the kept output y is above act_min, 0 where it was clamped there.

    Returns a new array (the C kernel works in place). Outputs saturated at 127 keep their
    gradient (straight-through).
    """
    g8 = np.asarray(g, dtype=np.int8)
    y8 = np.asarray(y, dtype=np.int8)
    return np.where(y8.astype(np.int32) > act_min, g8, np.int8(0)).astype(np.int8)
