"""`tinysplit bench --quick` (host/bench/report.py): the files it writes, their structure, and
figures
that must hold whatever the machine's speed (no assertion on times)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tinysplit.codegen.models import REGISTRY
from tinysplit.host.bench.runs import quick_epochs, step_payload
from tinysplit.host.bench.sections import BAUD_RATES
from tinysplit.host.costmodel.count import ANCHORS

QUICK_TIMEOUT_S = 600  # generous: the bench itself aims at under 3 minutes
SECTIONS = ("kernels", "link", "host_overhead", "accuracy", "memory")
HEADINGS = (
    "## 1. Kernel efficiency",
    "## 2. Link efficiency",
    "## 3. Host overhead",
    "## 4. Accuracy",
    "## 5. Memory",
)


def _cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tinysplit.host.cli", "bench", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    out = tmp_path_factory.mktemp("bench")
    run = _cli("--quick", "--out", str(out), timeout=QUICK_TIMEOUT_S)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "BENCHMARKS.md" in run.stdout
    report = json.loads((out / "BENCHMARKS.json").read_text())
    return report, (out / "BENCHMARKS.md").read_text()


def _ok(section: dict[str, Any]) -> list[dict[str, Any]]:
    """The workload entries that ran; every other one says why not."""
    names = [e["workload"] for e in section["workloads"]]
    assert names == list(REGISTRY), names
    for e in section["workloads"]:
        assert e["status"] in ("ok", "not run"), e
        if e["status"] != "ok":
            assert e["reason"].strip(), e
    ran = [e for e in section["workloads"] if e["status"] == "ok"]
    assert "digits-mlp" in [e["workload"] for e in ran], "the reference MLP must always run"
    return ran


# ---- fast: no bench run --------------------------------------------------------------------


def test_unknown_workload_is_one_error_line(tmp_path: Path) -> None:
    run = _cli("--quick", "--out", str(tmp_path), "--workload", "no-such-model")
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: unknown workload"), run.stderr


def test_out_that_is_a_file_is_one_error_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    run = _cli("--quick", "--out", str(blocker / "sub"))
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot write to"), run.stderr


def test_step_payload_follows_the_protocol() -> None:
    from tinysplit.core.protocol import spec

    cut = 32
    one = step_payload(1, cut)
    assert one["to_server"] == spec.SMASHED_FIXED_SIZE + 1 + cut + spec.STEP_DONE_FIXED_SIZE
    assert one["to_client"] == (
        spec.TRAIN_STEP_FIXED_SIZE + 2 + spec.GRAD_FIXED_SIZE + 4 + cut + spec.COMMIT_FIXED_SIZE
    )
    assert one["frames_to_server"] == 2 and one["frames_to_client"] == 3
    # a batch one frame cannot carry is split: one more SMASHED frame
    n = spec.smashed_per_frame(cut) + 1
    assert step_payload(n, cut)["frames_to_server"] == 3


def test_quick_epochs_keep_whole_epochs_within_the_step_budget() -> None:
    assert quick_epochs(1347, 32, 40) == 2  # 43 steps per epoch
    assert quick_epochs(40, 8, 15) == 15  # 5 steps per epoch: all of them fit
    assert quick_epochs(100_000, 8, 10) == 1  # never less than one epoch


# ---- the quick run (~1.5 minutes) ----------------------------------------------------------


@pytest.mark.qemu
def test_quick_bench_writes_both_files_with_every_section(
    quick: tuple[dict[str, Any], str],
) -> None:
    report, text = quick
    assert report["bench"]["mode"] == "quick"
    assert set(SECTIONS) <= set(report)
    for heading in HEADINGS:
        assert heading in text, heading
    for name in REGISTRY:
        assert name in text
    assert not re.search(r"\bnan\b", text, re.IGNORECASE)


@pytest.mark.qemu
def test_quick_bench_kernel_figures(quick: tuple[dict[str, Any], str]) -> None:
    k = quick[0]["kernels"]
    assert k["status"] == "ok", k
    anchors, calls = k["anchor_rows"], k["workload_rows"]
    assert {(r["kernel"], r["shape"]) for r in anchors} >= set(ANCHORS)
    cpi, peak = k["cost_model"]["cycles_per_instruction"], k["cost_model"]["peak_macs_per_cycle"]
    for r in anchors + calls:
        if not r["macs"]:  # pools: no MACs, instructions only
            assert r["instructions"] > 0 and r["instructions_per_mac"] is None
            continue
        per_mac = r["instructions_per_mac"]
        assert 1.0 < per_mac < 200.0, r
        assert per_mac == pytest.approx(r["instructions"] / r["macs"])
        assert r["est_cycles_per_mac"] == pytest.approx(per_mac * cpi)
        assert r["ratio_to_peak"] == pytest.approx(per_mac * cpi * peak)
        for key, anchor in (r["anchor_per_mac"] or {}).items():
            assert r["ratio_to_anchor"][key] == pytest.approx(per_mac / anchor)
    # every reference workload's client layers, forward and backward
    for name in REGISTRY:
        mine = [r for r in calls if any(u.startswith(name + " ") for u in r["used_by"])]
        passes = {r["pass"] for r in mine}
        assert {"forward", "backward_weights"} <= passes, (name, passes)
    fc = next(r for r in calls if r["used_by"] == ["digits-mlp L1"] and r["pass"] == "forward")
    assert fc["shape"] == "64->32" and fc["anchor_per_mac"], fc  # an anchor shape


@pytest.mark.qemu
def test_quick_bench_link_figures(quick: tuple[dict[str, Any], str]) -> None:
    section = quick[0]["link"]
    assert section["framing"]["max_payload"] > 0
    rows = section["workloads"]
    # today's rows (int8) first, then one per workload and coded wire format, with its accuracy
    int8 = [r for r in rows if r["wire"] == "int8"]
    coded = {(r["workload"], r["wire"]) for r in rows if r["wire"] != "int8"}
    from tinysplit.core.protocol.wire import NAMES

    ran = {r["workload"] for r in _ok({"workloads": int8})}
    assert coded == {(w, n) for w in ran for n in NAMES if n != "int8"}, coded
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in rows), rows
    for e in _ok({"workloads": int8}):
        cut, raw = e["cut_bytes"], e["input_bytes"]
        assert e["smashed_to_raw"] == pytest.approx(cut / raw)
        assert e["frames_as_expected"], e  # no retransmits on a clean pty: payload is exact
        assert e["to_server"]["payload_per_sample"] >= cut + 1  # label + activations
        assert e["to_client"]["payload_per_sample"] >= cut + 4 + 2  # scale + grads + index
        for way in ("to_server", "to_client"):
            w = e[way]
            assert w["wire_per_sample"] > w["payload_per_sample"]
            assert 0.0 < w["framing_overhead_pct"] < 50.0, e
            assert w["framing_bytes_per_step"]["cobs"] > 0
        s = e["wire_seconds_per_step"]
        assert s[str(BAUD_RATES[0])] == pytest.approx(
            s[str(BAUD_RATES[-1])] * BAUD_RATES[-1] / BAUD_RATES[0]
        )
        assert e["host_seconds_per_step"] > 0


@pytest.mark.qemu
def test_quick_bench_overhead_and_accuracy(quick: tuple[dict[str, Any], str]) -> None:
    report = quick[0]
    for e in _ok(report["host_overhead"]):
        assert e["board_steps_per_s"] > 0 and e["in_process_steps_per_s"] > 0
        assert e["board_to_in_process"] == pytest.approx(
            e["board_steps_per_s"] / e["in_process_steps_per_s"]
        )
        # the golden model is bit-exact with the firmware: the very same run
        assert e["same_accuracy"], e
    for e in _ok(report["accuracy"]):
        assert len(e["split_accuracy"]) == len(e["seeds"]) == len(e["centralized_accuracy"])
        for acc in (*e["split_accuracy"], *e["centralized_accuracy"]):
            assert 0.0 <= acc <= 1.0
        assert abs(e["difference_points"]) < 30.0, e
    digits = next(e for e in report["accuracy"]["workloads"] if e["workload"] == "digits-mlp")
    assert digits["split_mean"] > 0.3  # ten classes: well above chance even after 2 epochs


@pytest.mark.qemu
def test_quick_bench_memory_figures(quick: tuple[dict[str, Any], str]) -> None:
    section = quick[0]["memory"]
    assert "mps2_an386" in section["boards"]
    for e in _ok(section):
        assert [r["board"] for r in e["boards"]] == section["boards"]
        for r in e["boards"]:
            if r["status"] != "ok":
                assert r["reason"] and not r["fits"]
                continue
            assert r["ram_linked"] > 0 and r["flash_linked"] > 0
            # the plan is what codegen computed; the linker adds the runtime around it
            assert 0.8 < r["ram_linked_to_planned"] < 1.5, r
            assert r["fits"] == (
                r["ram_linked"] <= r["ram_total"] and r["flash_linked"] <= r["flash_total"]
            )


@pytest.mark.qemu
def test_quick_bench_wire_figures(quick: tuple[dict[str, Any], str]) -> None:
    """Section 10: every wire format's bytes and accuracy, from the same training."""
    report, text = quick
    assert "## 10. Wire formats" in text
    rows = report["wire"]["workloads"]
    by = {(r["workload"], r["wire"]): r for r in rows}
    for w in {r["workload"] for r in rows}:
        int8, sparse = by[(w, "int8")], by[(w, "sparse")]
        assert int8["to_int8"] == 1.0 and int8["points_vs_int8"] == 0.0
        # sparse leaves out only what the board's ReLU stops: the same training, bit for bit
        assert sparse["accuracy"] == int8["accuracy"], (w, sparse["accuracy"], int8["accuracy"])
        for r in (by[(w, n)] for n in ("sparse", "int4", "sparse-int4", "sparse-a4", "sparse-g4")):
            assert r["to_int8"] < 1.0, r
            assert r["frames_as_expected"], r  # the codec's payloads are what the link moved
            assert r["wire_per_sample"] == pytest.approx(
                r["to_server"]["wire_per_sample"] + r["to_client"]["wire_per_sample"]
            )
        assert by[(w, "sparse-int4")]["to_int8"] < by[(w, "sparse")]["to_int8"]


@pytest.mark.qemu
def test_quick_bench_overlap_figures(quick: tuple[dict[str, Any], str]) -> None:
    """Section 9: the paced, rate-fixed emulated board; --quick measures digits-mlp only."""
    report, text = quick
    section = report["overlap"]
    assert section["status"] == "ok", section
    assert "## 9. The wire and the kernels overlap" in text
    rows = section["rows"]
    assert [(r["workload"], r["baud"]) for r in rows] == [
        ("digits-mlp", 115_200),
        ("digits-mlp", 921_600),
    ]
    for r in rows:
        assert 0.0 < r["link_busy_pct"] <= 100.5, r  # line time over wall time
        # kernels and wire overlapping cannot take longer than taking turns, nor less than
        # the longer of the two
        assert max(r["device_ms"], r["wire_ms"]) <= r["predicted_overlap_ms"] + 1e-9
        assert r["predicted_overlap_ms"] <= r["predicted_in_turn_ms"] + 1e-9
        assert r["time_per_sample_ms"] > 0
