"""The memory plan agrees with what the compiler lays out for model_data.c and the firmware
(an FC client here; tests/codegen/test_conv_export.py does the same for a conv client)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cgen_support import ARM_CFLAGS, REPO, need

from tinysplit.codegen.memory_plan import (
    CONV_LAYER_STRUCT_BYTES,
    FC_LAYER_STRUCT_BYTES,
    FRAME_DECODER_BYTES,
    MODEL_OP_STRUCT_BYTES,
    POOL_PARAMS_STRUCT_BYTES,
    OpShape,
    choose_kept,
)
from tinysplit.core.protocol.spec import MAX_ENCODED, MAX_PAYLOAD

MODEL_RAM_ROWS = ("tensors", "master", "grad", "act")


def _arm_sections(src: Path, obj: Path, extra: list[str] | None = None) -> dict[str, int]:
    gcc, size = need("arm-none-eabi-gcc"), need("arm-none-eabi-size")
    subprocess.run([gcc, *ARM_CFLAGS, *(extra or []), "-c", str(src), "-o", str(obj)], check=True)
    out = subprocess.run([size, "-A", str(obj)], check=True, capture_output=True, text=True)
    sections = {}
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].isdigit():
            sections[parts[0]] = int(parts[1])
    return sections


def test_plan_matches_the_compiled_model_data(digits_export: Path, tmp_path: Path) -> None:
    plan = json.loads((digits_export / "plan.json").read_text())
    rows = {r["name"]: r for r in plan["rows"]}
    sec = _arm_sections(digits_export / "model_data.c", tmp_path / "m.o")
    ram = sum(
        r["bytes"]
        for r in plan["rows"]
        if r["section"] == "ram"
        and (
            r["layer"] is not None
            or r["name"] in ("layer_structs", "scratch", "kept_acts.align", "act_buf.align")
        )
    )
    # Everything model_data.c puts in RAM is in the plan, to the alignment padding.
    assert sec.get(".data", 0) + sec.get(".bss", 0) == ram
    # (the pairing key's row is pairing_key.c's, compiled next to model_data.c)
    flash = sum(rows[k]["bytes"] for k in ("data.train", "data.test", "model_hash", "model_ops"))
    assert flash <= sec[".rodata"] < flash + 16
    # .data is the upper bound: zero-valued arrays (initial bias) land in .bss instead.
    assert sec[".data"] <= rows[".data"]["bytes"]


def test_struct_sizes_match_the_c(tmp_path: Path) -> None:
    if not (REPO / "firmware" / "protocol" / "ts_frame.h").is_file():
        pytest.skip("firmware/protocol/ts_frame.h is not there yet")
    src = tmp_path / "sizes.c"
    src.write_text(
        '#include "ts_model.h"\n#include "ts_frame.h"\n'
        f'_Static_assert(sizeof(ts_fc_layer_t) == {FC_LAYER_STRUCT_BYTES}, "fc layer");\n'
        f'_Static_assert(sizeof(ts_conv_layer_t) == {CONV_LAYER_STRUCT_BYTES}, "conv");\n'
        f'_Static_assert(sizeof(ts_pool_params_t) == {POOL_PARAMS_STRUCT_BYTES}, "pool");\n'
        f'_Static_assert(sizeof(ts_model_op_t) == {MODEL_OP_STRUCT_BYTES}, "op");\n'
        f'_Static_assert(sizeof(ts_frame_decoder_t) == {FRAME_DECODER_BYTES}, "decoder");\n'
    )
    _arm_sections(src, tmp_path / "sizes.o", [f"-I{REPO / 'firmware' / 'protocol'}"])


def test_plan_rows_and_totals(digits_export: Path, digits_manifest: dict[str, Any]) -> None:
    plan = json.loads((digits_export / "plan.json").read_text())
    rows = {r["name"]: r for r in plan["rows"]}
    assert plan["ram_peak"] == sum(r["bytes"] for r in plan["rows"] if r["section"] == "ram")
    assert plan["flash"] == sum(r["bytes"] for r in plan["rows"] if r["section"] == "flash")
    assert digits_manifest["ram_peak"] == plan["ram_peak"]
    assert rows["op0.tensors"]["bytes"] == 32 * 64 + 4 * 4 * 32
    assert rows["op0.master"]["bytes"] == 4 * (32 * 64 + 32)
    assert rows["op0.grad"]["bytes"] == 4 * (32 * 64 + 32)
    assert rows["op0.act"]["bytes"] == 32 * 32  # kept for the ReLU mask
    assert rows["layer_structs"]["bytes"] == 80  # one ts_fc_layer_t, aligned to 16
    assert rows["frame_decoder"]["bytes"] == FRAME_DECODER_BYTES
    assert rows["frame_tx"]["bytes"] == 1 + MAX_ENCODED  # the 0x00 before, then the frame
    assert rows["payload"]["bytes"] == MAX_PAYLOAD
    assert rows["stack"]["bytes"] == 4096
    assert rows["data.train"]["section"] == "flash"
    assert "ESTIMATE" in rows["code"]["what"]
    (layer,) = plan["per_layer"]
    assert layer["ram"] == sum(layer[k] for k in MODEL_RAM_ROWS)


def test_format_table_and_board_limits() -> None:
    shapes = [
        OpShape("fc", (1, 1, 64), (1, 1, 32), 64 * 32, 32, True),
        OpShape("fc", (1, 1, 32), (1, 1, 16), 32 * 16, 16, True),
    ]
    _, plan = choose_kept(shapes, None, 8, input_size=64, n_train=100, n_test=10, stack_bytes=2048)
    table = plan.format_table(ram_limit=plan.ram_peak, flash_limit=plan.flash - 1)
    assert f"{plan.ram_peak:,}" in table and f"{plan.flash:,}" in table
    assert "op1.master" in table and "op1 fc" in table
    ram_line = next(line for line in table.splitlines() if line.strip().startswith("RAM total"))
    flash_line = next(line for line in table.splitlines() if line.strip().startswith("flash total"))
    assert "fits" in ram_line and "DOES NOT FIT" not in ram_line
    assert "DOES NOT FIT" in flash_line
    data = json.loads(json.dumps(plan.to_json()))
    assert data["per_layer"][1]["act"] == 8 * 16 and data["ram_peak"] == plan.ram_peak
