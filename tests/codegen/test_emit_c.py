"""model_data.c/.h: compiles clean for host and Cortex-M4, and holds exactly the exported values."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
from cgen_support import ARM_CFLAGS, HOST_CFLAGS, need
from hypothesis import given
from hypothesis import strategies as st

from tinysplit.codegen.emit_c import LINE_WIDTH, c_array_body, c_float
from tinysplit.codegen.export import quantize_input
from tinysplit.codegen.tflite_reader import read_fc_layers


def test_compiles_for_cortex_m4(digits_export: Path, tmp_path: Path) -> None:
    gcc = need("arm-none-eabi-gcc")
    src = digits_export / "model_data.c"
    out = subprocess.run(
        [gcc, *ARM_CFLAGS, "-c", str(src), "-o", str(tmp_path / "m.o")],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""


def test_compiles_on_host(digits_export: Path, tmp_path: Path) -> None:
    gcc = need("gcc")
    src = digits_export / "model_data.c"
    out = subprocess.run(
        [gcc, *HOST_CFLAGS, "-c", str(src), "-o", str(tmp_path / "m.o")],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""


def test_header_contract(digits_export: Path, digits_manifest: dict[str, Any]) -> None:
    h = (digits_export / "model_data.h").read_text()
    m = digits_manifest
    defines = {
        "TS_MODEL_N_OPS": 1,
        "TS_MODEL_N_FC": 1,
        "TS_MODEL_INPUT_SIZE": 64,
        "TS_MODEL_CUT_SIZE": 32,
        "TS_MODEL_MAX_BATCH": 32,
        "TS_MODEL_N_TRAIN": 1347,
        "TS_MODEL_N_TEST": 450,
        "TS_MODEL_SCRATCH_WORDS": 32,  # the FC accumulators; no input gradient at op 0
        "TS_MODEL_GRAD_BYTES": 32,
        "TS_MODEL_KEPT_ACT_BYTES": 32 * 32,
        "TS_MODEL_STACK_BYTES": 4096,
        "TS_MODEL_HASH_BYTES": 8,
    }
    for name, value in defines.items():
        assert f"#define {name} {value}" in h, name
    for decl in (
        "extern ts_fc_layer_t ts_model_fc[TS_MODEL_N_FC];",
        "extern const ts_model_op_t ts_model_ops[TS_MODEL_N_OPS];",
        "extern const uint8_t ts_model_hash[TS_MODEL_HASH_BYTES];",
        "extern const int8_t ts_train_x[TS_MODEL_N_TRAIN * TS_MODEL_INPUT_SIZE];",
        "extern const uint8_t ts_train_y[TS_MODEL_N_TRAIN];",
        "extern const int8_t ts_test_x[TS_MODEL_N_TEST * TS_MODEL_INPUT_SIZE];",
        "extern const uint8_t ts_test_y[TS_MODEL_N_TEST];",
        "extern int8_t ts_kept_acts[TS_MODEL_KEPT_ACT_BYTES];",
        "extern int32_t ts_scratch[TS_MODEL_SCRATCH_WORDS];",
        "extern int8_t ts_grad_buf[2][TS_MODEL_GRAD_BYTES];",
    ):
        assert decl in h, decl
    for name in ("model_data.h", "model_data.c"):
        text = (digits_export / name).read_text()
        head = text[:300]
        assert m["model_hash"] in head and m["tool_version"] in head and "Do not edit" in head
        long = [i + 1 for i, line in enumerate(text.splitlines()) if len(line) > LINE_WIDTH]
        assert not long, f"{name}: lines longer than {LINE_WIDTH}: {long[:5]}"


def test_master_weights_round_trip_bit_exact(digits_export: Path, digits_dump: Any) -> None:
    """The compiler reads back exactly the Keras float32 weights, transposed to [C][K]."""
    full = keras.saving.load_model(digits_export / "full.keras", compile=False)
    dense = [layer for layer in full.layers if isinstance(layer, keras.layers.Dense)]
    for layer, c in zip(dense, digits_dump.layers, strict=False):
        kernel = np.asarray(layer.kernel.numpy(), dtype=np.float32)
        bias = np.asarray(layer.bias.numpy(), dtype=np.float32)
        assert np.array_equal(c["master_w"].view(np.uint32), kernel.T.view(np.uint32))
        assert np.array_equal(c["master_b"].view(np.uint32), bias.view(np.uint32))
        assert not c["grad_w"].any() and not c["grad_b"].any()


def test_int8_tensors_equal_the_tflite(digits_export: Path, digits_dump: Any) -> None:
    specs = read_fc_layers((digits_export / "client.tflite").read_bytes())
    assert len(specs) == len(digits_dump.layers)
    for s, c in zip(specs, digits_dump.layers, strict=True):
        assert np.array_equal(c["w"], s.weights)
        assert np.array_equal(c["bias"], s.bias)
        assert np.array_equal(c["w_scale"].view(np.uint32), s.weight_scales.view(np.uint32))
        assert (c["in_features"], c["out_features"], c["relu"]) == (
            s.in_features,
            s.out_features,
            s.relu,
        )
        assert (np.float32(c["in_scale"]), c["in_zp"]) == (np.float32(s.input_scale), s.input_zp)
        assert (np.float32(c["out_scale"]), c["out_zp"]) == (
            np.float32(s.output_scale),
            s.output_zp,
        )


def test_multipliers_and_ranges(digits_dump: Any) -> None:
    """mult/shift from (double)s_x * (double)s_w / (double)s_y; range from out_q (the spec)."""
    from tinysplit.core.golden import quantize_multiplier

    for c in digits_dump.layers:
        for ch in range(c["out_features"]):
            m = float(c["in_scale"]) * float(c["w_scale"][ch]) / float(c["out_scale"])
            assert (int(c["out_mult"][ch]), int(c["out_shift"][ch])) == quantize_multiplier(m)
        s_y = np.float32(c["out_scale"])
        assert c["range_min"] == s_y * np.float32(-128 - c["out_zp"])
        assert c["range_max"] == s_y * np.float32(127 - c["out_zp"])


def test_data_shard_is_the_quantized_npz(digits_export: Path, digits_dump: Any) -> None:
    data = np.load(digits_export / "data.npz", allow_pickle=False)
    s_x, zp = np.float32(digits_dump.layers[0]["in_scale"]), digits_dump.layers[0]["in_zp"]
    for split in ("train", "test"):
        x = data[f"x_{split}"]
        # Independent of export.quantize_input: round half away from zero with np.round's help.
        v = x.astype(np.float32) / s_x
        r = np.sign(v) * np.floor(np.abs(v.astype(np.float64)) + 0.5)
        want = np.clip(r + zp, -128, 127).astype(np.int8)
        assert np.array_equal(getattr(digits_dump, f"{split}_x"), want)
        assert np.array_equal(getattr(digits_dump, f"{split}_y"), data[f"y_{split}"])


def test_model_hash_in_c_matches_manifest(
    digits_dump: Any, digits_manifest: dict[str, Any]
) -> None:
    assert digits_dump.model_hash.hex() == digits_manifest["model_hash"]


def test_quantize_input_rounds_half_away_and_clamps() -> None:
    x = np.array([[-0.5, 0.5, 1.5, -1.5, 1000.0, -1000.0, 0.49999997]], dtype=np.float32)
    assert quantize_input(x, 1.0, 0).tolist() == [[-1, 1, 2, -2, 127, -128, 0]]
    assert quantize_input(x, 1.0, -128).tolist() == [[-128, -127, -126, -128, 127, -128, -128]]


@given(st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_c_float_round_trips(v: float) -> None:
    text = c_float(v)
    assert text.endswith("f")
    body = text[:-1]
    assert "." in body or "e" in body or "p" in body  # a C floating literal, not an int
    parsed = float.fromhex(body) if "0x" in body else float(body)
    assert np.float32(parsed).tobytes() == np.float32(v).tobytes()


def test_c_float_refuses_non_finite() -> None:
    with pytest.raises(ValueError):
        c_float(float("nan"))


def test_array_body_packs_lines() -> None:
    body = c_array_body(str(i) for i in range(1000))
    assert all(len(line) <= LINE_WIDTH for line in body.splitlines())
    assert body.replace("\n", " ").split() == [f"{i}," for i in range(1000)]
