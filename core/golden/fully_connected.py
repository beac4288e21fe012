"""Forward of an int8 FC layer, mirroring firmware/kernels/fully_connected.c.

TFLite Micro's reference FullyConnectedPerChannel: int32 accumulator, gemmlowp requantization
per output channel, zero point, activation clamp.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .layer import FCLayer, act_min
from .quant import multiply_by_quantized_multiplier, wrap_int32

I8 = npt.NDArray[np.int8]
I32 = npt.NDArray[np.int32]


def fc_forward(layer: FCLayer, x: npt.ArrayLike) -> tuple[I8, I32]:
    """y = act(requant(bias + w (x - zp_x))) for x [K] (or a batch [B, K]).

    Returns (y int8 [..., C], acc int32 [..., C]), acc before requantization.
    """
    xi = np.asarray(x, dtype=np.int8).astype(np.int64) - layer.in_zp
    # Integer matmul: exact, so its summation order does not matter. The int32 wrap is what
    # the device's 32-bit accumulator does (it never triggers for valid shapes).
    acc = wrap_int32(xi @ layer.w.astype(np.int64).T + layer.bias.astype(np.int64))
    out = multiply_by_quantized_multiplier(acc, layer.out_mult, layer.out_shift).astype(np.int64)
    out = out + layer.out_zp
    y = np.clip(out, act_min(layer), 127).astype(np.int8)
    return y, acc
