"""`tinysplit plan` (host/planner/plan.py): its memory figures are the exporter's plan, its
instruction
counts match the firmware counted on the emulator, its wire bytes are the protocol's frames, and
its choices follow the stated rules."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tinysplit.host.planner.plan import CutPlan, Wire, mark, plan_model

BOARD = "mps2_an386"


@pytest.fixture(scope="module")
def mnist_exports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[int, Path]]:
    """mnist-cnn exported for the board after pool1 (conv1 + pool: the default cut's client,
    without its Flatten, which the exporter adds) and after pool2 (conv1 + pool + conv2 16 3x3 +
    pool)."""
    from tinysplit.codegen.export import export_client

    base = tmp_path_factory.mktemp("mnist-plan")
    yield {cut: export_client("mnist-cnn", cut, base / f"cut{cut}").out_dir for cut in (3, 7)}


def test_memory_equals_the_export_plan(mnist_exports: dict[int, Path], digits_export: Path) -> None:
    recomputed: dict[tuple[str, int], tuple[tuple[str, ...], tuple[str, ...]]] = {}
    for model, exports in (("mnist-cnn", mnist_exports), ("digits-mlp", {1: digits_export})):
        report = plan_model(model, BOARD, 115200)
        by_cut = {c.cut: c for c in report.cuts}
        assert set(exports) <= set(by_cut)
        for cut, out in exports.items():
            saved = json.loads((out / "plan.json").read_text())
            manifest = json.loads((out / "manifest.json").read_text())
            assert by_cut[cut].ram == saved["ram_peak"] == manifest["ram_peak"]
            assert by_cut[cut].flash == saved["flash"] == manifest["flash"]
            assert by_cut[cut].n_train == manifest["n_train"]
            # The whole plan row by row (kept or recomputed outputs, data shard, notes).
            memory = by_cut[cut].memory
            assert memory is not None and memory.to_json() == saved
            recomputed[model, cut] = (by_cut[cut].recomputed, by_cut[cut].coded)
    # mnist-cnn cut 7 keeps conv1's output as codes (pool1's argmax and the ReLU mask, 4 bits
    # per pooled value): keeping it whole for 16 samples overflows 128 KB.
    assert recomputed == {("mnist-cnn", 3): ((), ()), ("mnist-cnn", 7): ((), ("op1 conv",)),
                          ("digits-mlp", 1): ((), ())}  # fmt: skip


@pytest.mark.qemu
def test_predicted_instructions_within_5_percent_of_the_emulator(
    mnist_exports: dict[int, Path], tmp_path: Path
) -> None:
    """One training step of 16 samples on the emulated M4: every sample's forward and backward
    pass counted exactly between the firmware's markers, against the cost model given what the
    planner gives it (the client's ReLU statistics on its data shard, a dense cut gradient)."""
    from tinysplit.codegen.export import load_client_layout
    from tinysplit.host.costmodel.model import export_stats, measure_training, predict_training

    for cut, out in mnist_exports.items():
        ops, layout, _ = load_client_layout(out)
        predicted = predict_training(ops, layout, "cortex-m4f", stats=export_stats(out, ops))
        measured = measure_training(out, BOARD, steps=1, build_dir=tmp_path / f"cut{cut}")
        assert len(measured.forward) == len(measured.backward) == 16
        ratio = predicted.per_sample / measured.per_sample
        m, p = measured.per_sample, predicted.per_sample
        print(f"\ncut {cut}: {m:,.0f} instructions per sample measured, {p:,.0f} predicted")
        assert abs(ratio - 1) < 0.05, f"cut {cut}"
        # Forward and backward each, too: one error must not hide another.
        fwd = predicted.forward / (sum(measured.forward) / 16)
        bwd = predicted.backward / (sum(measured.backward) / 16)
        assert abs(fwd - 1) < 0.10 and abs(bwd - 1) < 0.10, (cut, fwd, bwd)


def test_wire_bytes_are_the_protocol_frames() -> None:
    """Per sample bytes from the spec's constants equal the frames the host's codec builds (COBS
    at its worst: payload bytes without zeros)."""
    from tinysplit.core.protocol import spec
    from tinysplit.core.protocol.frame import encode_frame

    rng = np.random.default_rng(0)
    for (cut_size, batch), sealed in itertools.product(
        ((1352, 16), (400, 16), (32, 32), (800, 8)), (True, False)
    ):
        w = Wire.of(cut_size, batch, sealed=sealed)
        extra, t = (spec.SEAL_OVERHEAD, 0x11 | spec.SEALED) if sealed else (0, 0x11)

        def wire(payload_sizes: list[int], extra: int = extra, t: int = t) -> int:
            payloads = [
                rng.integers(1, 256, n + extra, dtype=np.uint8).tobytes() for n in payload_sizes
            ]
            return sum(1 + len(encode_frame(t, 1, 1, 0, x)) for x in payloads)

        per = spec.smashed_per_frame(cut_size)
        smashed = [
            spec.SMASHED_FIXED_SIZE + min(per, batch - f) * (cut_size + 1)
            for f in range(0, batch, per)
        ]
        per = spec.grad_per_frame(cut_size)
        grad = [
            spec.GRAD_FIXED_SIZE + min(per, batch - f) * (cut_size + 4)
            for f in range(0, batch, per)
        ]
        step = [spec.TRAIN_STEP_FIXED_SIZE + 2 * batch, spec.COMMIT_FIXED_SIZE]
        # The plan counts COBS at its worst; the codec's frames (header and CRC hold zero
        # bytes, which cost nothing) are at most that, and within 1 %.
        for planned, frames in (
            (w.up, [*smashed, spec.STEP_DONE_FIXED_SIZE]),
            (w.down, grad + step),
        ):
            actual = wire(frames)
            assert actual <= planned * batch <= 1.01 * actual, (cut_size, planned * batch, actual)
        assert w.smashed_payload * batch == sum(smashed)
        assert w.fits_frame
    # The largest cut one SMASHED and one GRAD frame both carry, read from the spec (it moves
    # with MAX_PAYLOAD); conv1's output, 26x26x8, is far more.
    largest = min(
        spec.MAX_PAYLOAD - spec.SMASHED_FIXED_SIZE - 1, spec.MAX_PAYLOAD - spec.GRAD_FIXED_SIZE - 4
    )
    assert Wire.of(largest, 16).fits_frame
    assert not Wire.of(largest + 1, 16).fits_frame
    assert not Wire.of(26 * 26 * 8, 16).fits_frame


def _cut(cut: int, device: float, ram: int, up: float, fits: bool = True) -> CutPlan:
    wire = up * 1e-4
    return CutPlan(cut, f"l{cut}", 10, 1000, ram, 100, 0, 1e6, 1e6, device, up, up, wire,
                   max(device, wire), fits, True, True, ())  # fmt: skip


def test_pareto_and_recommendation() -> None:
    cuts = mark([
        _cut(1, 0.10, 50_000, 2000),  # fastest device, most bytes
        _cut(2, 0.20, 40_000, 500),  # less RAM and bytes
        _cut(3, 0.25, 45_000, 600),  # dominated by cut 2 in all three
        _cut(4, 0.01, 10_000, 10, fits=False),  # would dominate all, but does not fit
    ])  # fmt: skip
    assert [c.pareto for c in cuts] == [True, True, False, False]
    # Least time per sample as the boards run it, kernels and wire overlapping (here the longer
    # of the two): 0.20 s for cut 1 (wire-bound) and for cut 2 (device-bound); less RAM wins.
    assert [c.recommended for c in cuts] == [False, True, False, False]
    # Where the rules differ: in turn cut 2 wins (0.10 + 0.10 vs 0.12 + 0.01 s), overlapped
    # cut 1 does (0.10 vs 0.12 s): the overlapped time decides.
    rules = mark([_cut(1, 0.10, 50_000, 1000), _cut(2, 0.12, 50_000, 100)])
    assert rules[0].time_s > rules[1].time_s
    assert [c.recommended for c in rules] == [True, False]


def test_overlapped_step_hides_the_shorter_of_compute_and_wire_but_one_frame() -> None:
    from tinysplit.host.planner.plan import overlapped_step_s

    # wire-bound both ways: the wire, plus one frame's compute per phase, plus the commit
    t = overlapped_step_s(forward_s=0.4, backward_s=0.8, commit_s=0.1, up_s=2.0, down_s=2.0,
                          frames_up=4, frames_down=8)  # fmt: skip
    assert t == pytest.approx(2.0 + 0.4 / 4 + 2.0 + 0.8 / 8 + 0.1)
    # compute-bound: the compute, plus one frame's wire time per phase
    t = overlapped_step_s(forward_s=3.0, backward_s=6.0, commit_s=0.0, up_s=1.0, down_s=2.0,
                          frames_up=2, frames_down=2)  # fmt: skip
    assert t == pytest.approx(3.0 + 0.5 + 6.0 + 1.0)
    # one frame each way: nothing overlaps, device and wire take turns
    t = overlapped_step_s(forward_s=1.0, backward_s=1.0, commit_s=0.5, up_s=1.0, down_s=1.0,
                          frames_up=1, frames_down=1)  # fmt: skip
    assert t == pytest.approx(1.0 + 1.0 + 1.0 + 1.0 + 0.5)


def test_coded_wire_bytes_are_the_protocol_frames() -> None:
    """A coded format's planned bytes per sample equal the SMASHED_PACKED and GRAD_PACKED frames
    the host's codec builds for activations with that share of zeros (COBS at its worst)."""
    from tinysplit.core.protocol import (
        Commit,
        PackedGrad,
        PackedSmashed,
        StepDone,
        TrainStep,
        encode_message,
        spec,
    )
    from tinysplit.core.protocol import wire as codec

    rng = np.random.default_rng(1)
    for (cut, batch, zero), name in itertools.product(
        ((1352, 16, 0.6), (800, 8, 0.45), (32, 32, 0.5)), [n for n in codec.NAMES if n != "int8"]
    ):
        bits = codec.wire_bits(name)
        raw = rng.integers(-127, 128, (batch, cut)).astype(np.int8)  # every value above zp
        for row in raw:
            row[rng.permutation(cut)[: round(zero * cut)]] = -128
        acts = codec.on_the_wire(raw, -128, bits)
        share = float(np.mean(acts == -128))
        w = Wire.of(cut, batch, sealed=False, wire=bits, zero_share=(share, share))
        grads = rng.integers(-7, 8, (batch, cut)).astype(np.int8)
        mask = codec.sent_mask(acts, -128, bits)
        if mask is not None:
            grads[~mask] = 0
        up_per, down_per = codec.smashed_per_frame(cut, bits), codec.grad_per_frame(cut, bits)
        up = [PackedSmashed(0.5, -128, bytes(min(up_per, batch - f)), acts[f : f + up_per], bits)
              for f in range(0, batch, up_per)] + [StepDone(0, 0.0, 1.0, 0)]  # fmt: skip
        scales = np.ones(batch, np.float32)
        down = [PackedGrad.of(scales[f : f + down_per], grads[f : f + down_per], bits,
                              acts[f : f + down_per], -128)
                for f in range(0, batch, down_per)]  # fmt: skip
        down += [TrainStep(0.1, 0, batch, tuple(range(batch))), Commit(0, batch)]
        for planned, msgs in ((w.up, up), (w.down, down)):
            actual = sum(1 + len(encode_message(m, 1, 1)) for m in msgs)  # type: ignore[arg-type]
            assert actual <= planned * batch + 4 * len(msgs), (name, cut, planned * batch, actual)
            assert planned * batch <= 1.02 * actual + 8, (name, cut, planned * batch, actual)
        assert w.frames_up == len(up) - 1 and w.frames_down == len(down) - 2
        assert w.fits_frame and max(len(m.pack()) for m in up + down) <= spec.MAX_PAYLOAD


def test_cli_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from tinysplit.host.cli import main

    for argv, says in (
        (["plan", "mnist-cnn", "--board", "nosuch"], "unknown board 'nosuch'"),
        (["plan", "mnist-cnn", "--board", "native"], "no instruction cost model"),
        (["plan", "mnist-cnn", "--board", BOARD, "--baud", "fast"], "--baud must be"),
        (["plan", "mnist-cnn", "--board", BOARD, "--baud", "0"], "--baud must be"),
        (["plan", "no-such-model", "--board", BOARD], "neither a bundled model"),
        (["plan", "mnist-cnn", "--board", BOARD, "--plot", "p.svg"], "give a .png"),
        (["plan", "mnist-cnn", "--board", BOARD, "--wire", "int2"], "--wire: unknown wire format"),
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and says in err[0], (argv, err)


def test_cli_table_json_and_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tinysplit.host.cli import main

    png = tmp_path / "plan.png"
    argv = ["plan", "digits-mlp", "--board", "nucleo_f446re", "--plot", str(png), "--json"]
    assert main(argv) == 0
    out = capsys.readouterr()
    report = json.loads(out.out)
    assert report["baud"] == 921600  # the board's own UART speed
    assert [c["cut"] for c in report["cuts"]] == [1, 2]
    assert report["recommended"] in (1, 2)
    for c in report["cuts"]:
        assert c["fits"] and c["insns"] > c["macs"] > 0
        assert c["device_s"] == pytest.approx(c["insns_total"] * report["cycles_per_insn"] / 180e6)
        assert c["wire_s"] == pytest.approx((c["up_bytes"] + c["down_bytes"]) * 10 / 921600)
    assert "recommended: cut" in out.err and "pareto" in out.err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # every wire format at the recommended cut: int8 the unit, sparse fewer bytes
    formats = {w["wire"]: w for w in report["wire_formats"]}
    assert report["wire"] == "int8" and formats["int8"]["to_int8"] == 1.0
    assert all(formats[n]["fits"] for n in formats), formats
    assert formats["sparse-int4"]["to_int8"] < formats["sparse"]["to_int8"] < 1.0
    assert 0.0 < report["zero_share"] < 1.0
    assert "wire formats at cut" in out.err


def test_cli_prices_every_cut_in_the_wire_format(capsys: pytest.CaptureFixture[str]) -> None:
    from tinysplit.host.cli import main

    plans = {}
    for wire in ("int8", "sparse-g4"):
        assert main(["plan", "digits-mlp", "--board", BOARD, "--wire", wire, "--json"]) == 0
        plans[wire] = json.loads(capsys.readouterr().out)
    for a, b in zip(plans["int8"]["cuts"], plans["sparse-g4"]["cuts"], strict=True):
        assert b["down_bytes"] < a["down_bytes"] and b["up_bytes"] < a["up_bytes"], (a, b)
        assert b["device_s"] <= a["device_s"] * 1.05
