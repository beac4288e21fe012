"""The host's cut-gradient quantization (docs/int8-training.md, "Cut gradient")."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from tinysplit.core.errors import NonFiniteGradient

from .quant import ts_round

I8 = npt.NDArray[np.int8]


def quantize_gradient(g: npt.ArrayLike) -> tuple[I8, np.float32]:
    """One sample's gradient -> (q int8 in [-127, 127], s_g float32), max-abs symmetric.

    An all-zero gradient (or one so small that m / 127 underflows to 0) gives q = 0, s_g = 0.
    Raises NonFiniteGradient for NaN or infinite values: nothing of that may be sent.
    """
    gf = np.asarray(g, dtype=np.float32)
    if not np.all(np.isfinite(gf)):
        raise NonFiniteGradient(
            "the cut gradient has NaN or infinite values; lower the learning rate"
        )
    m = np.float32(np.max(np.abs(gf))) if gf.size else np.float32(0.0)
    s_g = m / np.float32(127.0)
    if s_g == 0:
        return np.zeros(gf.shape, dtype=np.int8), np.float32(0.0)
    q = np.clip(ts_round(gf / s_g), -127, 127).astype(np.int8)
    return q, np.float32(s_g)


def quantize_gradient_packed(
    g: npt.ArrayLike, keep: npt.NDArray[np.bool_] | None, nibble: bool
) -> tuple[I8, np.float32]:
    """One sample's gradient for a coded wire (core/protocol/wire.py): 0 outside `keep` (SPARSE:
    the positions whose activation was not the zero point; None: all). 8-bit: the int8 of
    quantize_gradient (scale over the whole sample), so SPARSE changes no value the board uses;
    nibble (GRADS4): q in [-7, 7] with s_g = max |g over keep| / 7."""
    if not nibble:
        q, s_g = quantize_gradient(g)
        return (q if keep is None else np.where(keep, q, np.int8(0)).astype(np.int8)), s_g
    gf = np.asarray(g, dtype=np.float32)
    if not np.all(np.isfinite(gf)):
        raise NonFiniteGradient(
            "the cut gradient has NaN or infinite values; lower the learning rate"
        )
    sent = gf if keep is None else gf[keep]
    m = np.float32(np.max(np.abs(sent))) if sent.size else np.float32(0.0)
    s_g = m / np.float32(7.0)
    if s_g == 0:
        return np.zeros(gf.shape, dtype=np.int8), np.float32(0.0)
    q = np.clip(ts_round(gf / s_g), -7, 7).astype(np.int8)
    if keep is not None:
        q = np.where(keep, q, np.int8(0)).astype(np.int8)
    return q, np.float32(s_g)
