"""Helpers of the codegen tests: compiler flags, and model_data.c read back through C."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
INCLUDE = REPO / "firmware" / "include"
HOST_CFLAGS = ["-std=c11", "-Wall", "-Wextra", "-Werror", f"-I{INCLUDE}"]
ARM_CFLAGS = [
    "-mcpu=cortex-m4",
    "-mthumb",
    "-mfloat-abi=hard",
    "-mfpu=fpv4-sp-d16",
    "-O2",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-std=c11",
    f"-I{INCLUDE}",
]

# Dumps, through the C compiler's own reading of model_data.c, every array the firmware gets.
DUMP_C = r"""
#include <stdio.h>
#include "model_data.h"

static void put(const void *p, size_t size, size_t n) { fwrite(p, size, n, stdout); }

int main(void)
{
    put(ts_model_hash, 1, TS_MODEL_HASH_BYTES);
    for (int i = 0; i < TS_MODEL_N_FC; ++i) {
        const ts_fc_layer_t *l = &ts_model_fc[i];
        const ts_params_t *p = &l->p;
        size_t c = l->out_features, k = l->in_features;
        const int32_t head[4] = {l->in_features, l->out_features, l->act, 0};
        put(head, 4, 4);
        put(&p->in_q.scale, 4, 1);
        put(&p->in_q.zero_point, 4, 1);
        put(&p->out_q.scale, 4, 1);
        put(&p->out_q.zero_point, 4, 1);
        put(&p->range_min, 4, 1);
        put(&p->range_max, 4, 1);
        put(p->w, 1, c * k);
        put(p->bias, 4, c);
        put(p->w_scale, 4, c);
        put(p->out_mult, 4, c);
        put(p->out_shift, 4, c);
        put(p->master_w, 4, c * k);
        put(p->master_b, 4, c);
        put(p->grad_w, 4, c * k);
        put(p->grad_b, 4, c);
    }
    put(ts_train_x, 1, sizeof ts_train_x);
    put(ts_train_y, 1, sizeof ts_train_y);
    put(ts_test_x, 1, sizeof ts_test_x);
    put(ts_test_y, 1, sizeof ts_test_y);
    return 0;
}
"""


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed")
    return path


@dataclass
class Dumped:
    """model_data.c as the compiled program sees it."""

    model_hash: bytes
    layers: list[dict[str, Any]]
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray


class _Reader:
    def __init__(self, raw: bytes) -> None:
        self.raw, self.pos = raw, 0

    def take(self, dtype: str, n: int) -> np.ndarray:
        size = np.dtype(dtype).itemsize * n
        a = np.frombuffer(self.raw, dtype=dtype, count=n, offset=self.pos).copy()
        self.pos += size
        return a


def dump_model_data(export: Path, build: Path) -> Dumped:
    """Compiles model_data.c (host gcc, -Werror) with a dumper, runs it, parses its output."""
    gcc = need("gcc")
    manifest = json.loads((export / "manifest.json").read_text())
    (build / "dump.c").write_text(DUMP_C)
    exe = build / "dump"
    subprocess.run(
        [
            gcc,
            *HOST_CFLAGS,
            f"-I{export}",
            str(build / "dump.c"),
            str(export / "model_data.c"),
            "-o",
            str(exe),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    r = _Reader(subprocess.run([str(exe)], check=True, capture_output=True).stdout)
    model_hash = r.take("u1", 8).tobytes()
    layers = []
    for _ in manifest["layers"]:
        k, c, relu, _pad = (int(v) for v in r.take("<i4", 4))
        layer: dict[str, Any] = {"in_features": k, "out_features": c, "relu": bool(relu)}
        layer["in_scale"] = r.take("<f4", 1)[0]
        layer["in_zp"] = int(r.take("<i4", 1)[0])
        layer["out_scale"] = r.take("<f4", 1)[0]
        layer["out_zp"] = int(r.take("<i4", 1)[0])
        layer["range_min"] = r.take("<f4", 1)[0]
        layer["range_max"] = r.take("<f4", 1)[0]
        layer["w"] = r.take("i1", c * k).reshape(c, k)
        layer["bias"] = r.take("<i4", c)
        layer["w_scale"] = r.take("<f4", c)
        layer["out_mult"] = r.take("<i4", c)
        layer["out_shift"] = r.take("<i4", c)
        layer["master_w"] = r.take("<f4", c * k).reshape(c, k)
        layer["master_b"] = r.take("<f4", c)
        layer["grad_w"] = r.take("<f4", c * k)
        layer["grad_b"] = r.take("<f4", c)
        layers.append(layer)
    n_in, n_train, n_test = manifest["input_size"], manifest["n_train"], manifest["n_test"]
    dumped = Dumped(
        model_hash=model_hash,
        layers=layers,
        train_x=r.take("i1", n_train * n_in).reshape(n_train, n_in),
        train_y=r.take("u1", n_train),
        test_x=r.take("i1", n_test * n_in).reshape(n_test, n_in),
        test_y=r.take("u1", n_test),
    )
    assert r.pos == len(r.raw), "dump longer than expected"
    return dumped


def small_dataset(seed: int = 0, n_features: int = 16, n_classes: int = 3) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    return {
        "x_train": rng.random((60, n_features), dtype=np.float32),
        "y_train": rng.integers(0, n_classes, 60),
        "x_test": rng.random((20, n_features), dtype=np.float32),
        "y_test": rng.integers(0, n_classes, 20),
    }
