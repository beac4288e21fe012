"""Convolutional exports (mnist-cnn, motion-cnn1d): files, data shard, memory plan vs the
compiled model_data.c, the op table through C, golden forward vs TFLite Micro, BN folding."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
from cgen_support import ARM_CFLAGS, HOST_CFLAGS, need
from tflite_micro.python.tflite_micro import runtime

from tinysplit.codegen.export import export_client, load_client_state
from tinysplit.codegen.memory_plan import (
    CODE_ARGMAX,
    CODE_MASK,
    CONV_LAYER_STRUCT_BYTES,
    MODEL_OP_STRUCT_BYTES,
    POOL_PARAMS_STRUCT_BYTES,
    OpShape,
    choose_kept,
    code_bytes,
    code_kind,
)
from tinysplit.core.golden.step import forward

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

WORKLOADS = ("mnist-cnn", "motion-cnn1d")


@pytest.fixture(scope="module", params=WORKLOADS)
def conv_export(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp(request.param)
    export_client(request.param, None, out, calibration_samples=40)
    return out


def _json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def test_manifest_and_data_shard(conv_export: Path) -> None:
    m = _json(conv_export / "manifest.json")
    plan = _json(conv_export / "plan.json")
    data = np.load(conv_export / "data.npz")
    assert data["x_train"].shape == (m["n_train"], m["input_size"])
    assert plan["flash"] <= plan["flash_limit"] and plan["ram_peak"] <= plan["ram_limit"]
    assert any(n.startswith("data shard:") for n in plan["notes"])
    if m["model"] == "mnist-cnn":
        assert (m["input_size"], m["cut_size"]) == (784, 13 * 13 * 8)
        assert [op["kind"] for op in m["ops"]] == ["reshape", "conv", "max_pool", "reshape"]
        # 5,000 samples do not fit 512 KB of flash: a fixed subset does, the rest stays home.
        assert m["n_train"] < m["n_train_full"] == 4000 and m["n_test"] < m["n_test_full"] == 1000
        full = np.load(conv_export / "data_full.npz")
        assert len(full["y_train"]) == 4000
        assert np.bincount(data["y_train"]).min() >= m["n_train"] // 10 - 1  # stratified
    else:
        assert (m["input_size"], m["cut_size"]) == (600, 50 * 16)
        assert [op["kind"] for op in m["ops"] if op["kind"] != "reshape"] == ["conv", "conv"]
        assert (m["n_train"], m["n_test"]) == (40, 40)
        assert not (conv_export / "data_full.npz").exists()


def _sections(cmd: list[str], src: Path, obj: Path) -> dict[str, int]:
    subprocess.run([*cmd, "-c", str(src), "-o", str(obj)], check=True)
    out = subprocess.run(
        [need("arm-none-eabi-size"), "-A", str(obj)], check=True, capture_output=True, text=True
    )
    return {p[0]: int(p[1]) for p in (ln.split() for ln in out.stdout.splitlines())
            if len(p) == 3 and p[1].isdigit()}  # fmt: skip


def test_plan_matches_the_compiled_model_data(conv_export: Path, tmp_path: Path) -> None:
    gcc = need("arm-none-eabi-gcc")
    plan = _json(conv_export / "plan.json")
    rows = {r["name"]: r for r in plan["rows"]}
    sec = _sections([gcc, *ARM_CFLAGS, f"-I{conv_export}"], conv_export / "model_data.c",
                    tmp_path / "m.o")  # fmt: skip
    model_ram = sum(
        r["bytes"] for r in plan["rows"]
        if r["section"] == "ram" and (r["layer"] is not None or r["name"] in (
            "layer_structs", "scratch", "kept_acts.align", "act_buf.align"))
    )  # fmt: skip
    # Exact to the padding after the last array of .data and of .bss (< 16 bytes each).
    assert model_ram - 32 < sec.get(".data", 0) + sec.get(".bss", 0) <= model_ram
    flash = sum(
        rows[k]["bytes"] for k in ("data.train", "data.test", "model_hash", "model_ops",
                                   "pool_params") if k in rows
    )  # fmt: skip
    assert abs(sec[".rodata"] - flash) < 16  # the padding after the last array
    assert sec[".data"] <= rows[".data"]["bytes"]


def test_struct_sizes_match_the_c(conv_export: Path, tmp_path: Path) -> None:
    src = tmp_path / "sizes.c"
    src.write_text(
        '#include "model_data.h"\n'
        f'_Static_assert(sizeof(ts_conv_layer_t) == {CONV_LAYER_STRUCT_BYTES}, "conv");\n'
        f'_Static_assert(sizeof(ts_pool_params_t) == {POOL_PARAMS_STRUCT_BYTES}, "pool");\n'
        f'_Static_assert(sizeof(ts_model_op_t) == {MODEL_OP_STRUCT_BYTES}, "op");\n'
    )
    _sections([need("arm-none-eabi-gcc"), *ARM_CFLAGS, f"-I{conv_export}"], src,
              tmp_path / "s.o")  # fmt: skip


OPS_DUMP = r"""
#include <stdio.h>
#include "model_data.h"
int main(void)
{
    for (int i = 0; i < TS_MODEL_N_OPS; ++i) {
        const ts_model_op_t *o = &ts_model_ops[i];
        int h = -1;
        if (o->kind == TS_OP_CONV) h = o->layer.conv->out.h * o->layer.conv->out.w;
        if (o->kind == TS_OP_MAX_POOL) h = o->layer.pool->out.h * o->layer.pool->out.w;
        printf("%d %d %d %d %u %u %u %u %d\n", o->kind, o->out_buf, o->rebuild,
               o->input_grad, (unsigned)(o->out.h * o->out.w * o->out.c),
               (unsigned)o->out_offset, (unsigned)o->scratch_bytes,
               (unsigned)TS_MODEL_CUT_SIZE, h);
    }
    return 0;
}
"""


def test_op_table_through_c(conv_export: Path, tmp_path: Path) -> None:
    """model_data.c compiles with -Werror on the host, and its op table says what the plan
    says: kinds, kept/recomputed/coded buffers, scratch."""
    (tmp_path / "dump.c").write_text(OPS_DUMP)
    exe = tmp_path / "dump"
    subprocess.run([need("gcc"), *HOST_CFLAGS, f"-I{conv_export}", str(tmp_path / "dump.c"),
                    str(conv_export / "model_data.c"), "-o", str(exe)], check=True)  # fmt: skip
    lines = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    table = [[int(v) for v in ln.split()] for ln in lines.splitlines()]
    m = _json(conv_export / "manifest.json")
    plan = _json(conv_export / "plan.json")
    kinds = {"fc": 0, "conv": 1, "depthwise": 2, "max_pool": 3, "avg_pool": 4, "reshape": 5}
    assert [t[0] for t in table] == [kinds[op["kind"]] for op in m["ops"]]
    assert table[-1][4] == m["cut_size"] == table[-1][7]
    for t, p in zip(table, plan["per_layer"], strict=True):
        assert t[6] == p["scratch_need"]
        assert {"kept": 1, "recomputed": 2, "transient": 2, "coded": 2}.get(
            p["act_mode"], t[1]
        ) == t[1]
        rebuild = {"recomputed": (1,), "coded": (2, 3)}.get(p["act_mode"], (0,))
        assert t[2] in rebuild, (t, p["act_mode"])
        if t[0] in (1, 3):
            assert t[8] * (8 if t[0] == 3 or m["model"] == "mnist-cnn" else 1) > 0


def _tflm(tflite: bytes, xs: np.ndarray) -> np.ndarray:
    ip = runtime.Interpreter.from_bytes(tflite)
    out = []
    for x in xs:
        ip.set_input(x.reshape(1, -1), 0)
        ip.invoke()
        out.append(np.asarray(ip.get_output(0)).reshape(-1))
    return np.stack(out)


def test_golden_forward_matches_tflm(conv_export: Path) -> None:
    state = load_client_state(conv_export)
    assert state.ops
    xs = np.concatenate([state.x_test[:20], state.x_train[:20]])
    want = _tflm((conv_export / "client.tflite").read_bytes(), xs)
    for i, x in enumerate(xs):
        got = forward(state.ops, x)
        assert np.array_equal(got, want[i]), f"sample {i}: {np.flatnonzero(got != want[i])[:8]}"


def test_codes_when_kept_activations_do_not_fit() -> None:
    """The conv output a batch of 32 would keep (32 x 5408 B) exceeds 128 KB; what backward
    reads of it (pool argmax and ReLU mask) fits in 4 bits per pooled value: coded, not
    recomputed. The ReLU at a cut (nothing after it reads its output) keeps only its mask."""
    shapes = [
        OpShape("conv", (28, 28, 1), (26, 26, 8), 72, 8, act=True),
        OpShape("max_pool", (26, 26, 8), (13, 13, 8), window=4),
        OpShape("reshape", (13, 13, 8), (1, 1, 1352)),
    ]
    args = dict(input_size=784, n_train=10, n_test=10, stack_bytes=4096)
    layout, plan = choose_kept(shapes, 131072, 32, **args)
    assert layout.modes == ("coded", "transient", "alias") and layout.coded[0]
    assert not layout.recompute[0] and layout.kept_bytes == 0
    assert layout.code_bytes == 32 * 1352 // 2 and plan.ram_peak <= 131072
    assert "argmax and mask, 4 bits per pooled value" in plan.format_table()
    assert code_kind(shapes, 0) == CODE_ARGMAX and code_kind(shapes, 1) == 0
    fc = [OpShape("fc", (1, 1, 64), (1, 1, 300), 64 * 300, 300, act=True)]
    assert code_kind(fc, 0) == CODE_MASK and code_bytes(fc, 0) == 38
    fc_args = dict(input_size=64, n_train=10, n_test=10, stack_bytes=4096)
    _, whole = choose_kept(fc, None, 32, **fc_args)
    layout, plan = choose_kept(fc, whole.ram_peak - 1, 32, **fc_args)
    assert layout.modes == ("coded",) and layout.code_bytes == 32 * 38
    assert plan.ram_peak <= whole.ram_peak - 32 * 300 + 32 * 38 + 300 + 16
    relu6 = [OpShape("conv", (8, 8, 1), (8, 8, 4), 36, 4, act=True, relu6=True)]
    assert code_kind(relu6, 0) == 0  # its mask has a top: kept whole or recomputed


def test_recompute_when_kept_activations_do_not_fit() -> None:
    """The conv output a batch of 32 would keep (32 x 5408 B) exceeds 128 KB, and the pool
    after it takes no codes (window unknown here): recomputed."""
    shapes = [
        OpShape("conv", (28, 28, 1), (26, 26, 8), 72, 8, act=True),
        OpShape("max_pool", (26, 26, 8), (13, 13, 8)),
        OpShape("reshape", (13, 13, 8), (1, 1, 1352)),
    ]
    args = dict(input_size=784, n_train=10, n_test=10, stack_bytes=4096)
    layout, plan = choose_kept(shapes, 131072, 32, **args)
    assert layout.modes == ("recomputed", "transient", "alias") and layout.recompute[0]
    assert plan.ram_peak <= 131072 and layout.kept_bytes == 0
    assert layout.act_bytes == 26 * 26 * 8 + 1352
    layout, plan = choose_kept(shapes, None, 32, **args)
    assert layout.modes[0] == "kept" and layout.kept_bytes == 32 * 26 * 26 * 8
    table = plan.format_table()
    assert "op0 conv 28x28x1->26x26x8" in table and "(kept)" in table


def test_batchnorm_and_relu_folded(tmp_path: Path) -> None:
    """Conv2D (no bias) -> BatchNormalization -> ReLU exports as one conv with ReLU whose
    master weights are the folded ones, and its golden forward still matches TFLM."""
    keras.utils.set_random_seed(3)
    model = keras.Sequential([
        keras.Input((36,)), keras.layers.Reshape((6, 6, 1)),
        keras.layers.Conv2D(4, 3, padding="same", use_bias=False, name="c"),
        keras.layers.BatchNormalization(name="bn"), keras.layers.ReLU(name="r"),
        keras.layers.Flatten(), keras.layers.Dense(3),
    ])  # fmt: skip
    bn = model.get_layer("bn")
    rng = np.random.default_rng(0)
    bn.moving_mean.assign(rng.normal(size=4).astype(np.float32) * 0.1)
    bn.moving_variance.assign(rng.uniform(0.5, 2, size=4).astype(np.float32))
    bn.gamma.assign(rng.uniform(0.5, 1.5, size=4).astype(np.float32))
    path = tmp_path / "bn.keras"
    model.save(path)
    x = rng.random((40, 36), dtype=np.float32)
    np.savez(tmp_path / "d.npz", x_train=x[:30], y_train=rng.integers(0, 3, 30),
             x_test=x[30:], y_test=rng.integers(0, 3, 10))  # fmt: skip
    res = export_client(path, 5, tmp_path / "out", data=tmp_path / "d.npz", board=None)
    assert res.manifest["cut"] == 3 and [op["kind"] for op in res.manifest["ops"]] == [
        "reshape", "conv", "reshape"
    ]  # fmt: skip
    full = keras.saving.load_model(tmp_path / "out" / "full.keras", compile=False)
    np.testing.assert_allclose(np.asarray(full(x)), np.asarray(model(x)), rtol=1e-4, atol=1e-5)
    state = load_client_state(tmp_path / "out")
    want = _tflm((tmp_path / "out" / "client.tflite").read_bytes(), state.x_train[:10])
    for i in range(10):
        assert np.array_equal(forward(state.ops, state.x_train[i]), want[i])


def test_fc_export_is_an_op_table_too(digits_export: Path) -> None:
    """digits-mlp (FC only) gets the one export format: the op table and its buffers."""
    h = (digits_export / "model_data.h").read_text()
    c = (digits_export / "model_data.c").read_text()
    for name in ("ts_model_fc[TS_MODEL_N_FC]", "TS_MODEL_KEPT_ACT_BYTES", "ts_train_x",
                 "ts_scratch[TS_MODEL_SCRATCH_WORDS]", "ts_grad_buf[2][TS_MODEL_GRAD_BYTES]",
                 "ts_model_ops[TS_MODEL_N_OPS]"):  # fmt: skip
        assert name in h, name
    assert "{.fc = &ts_model_fc[0]}" in c and "ts_act_buf" not in c
    assert ".layout = TS_CHANNEL_FIRST" in c and ".act = TS_ACT_RELU" in c
