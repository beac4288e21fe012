"""Convolutional clients trained on the native build (the very same firmware C as the boards)
and replayed through the numpy golden model (core/golden/step.py): every cut activation,
every step's weights CRC and the final weight blob must agree bit for bit."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pytest
from e2e_support import Run, run_steps

from tinysplit.codegen.export import export_client, load_client_state
from tinysplit.core.golden.step import cut_quant, ops_forward, ops_train_step
from tinysplit.host.board.build import build_firmware
from tinysplit.host.board.launch import native_board
from tinysplit.host.training.weights import first_blob_difference, ops_blob

LR = 0.05


def _small_cnn(path: Path) -> Path:
    """Conv2D relu6 'same' -> DepthwiseConv2D stride 2 relu -> AveragePool -> Dense relu | Dense:
    every client kind the reference workloads do not use, with input gradients through each."""
    import keras

    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [
            keras.Input((128,)),
            keras.layers.Reshape((8, 8, 2)),
            keras.layers.Conv2D(4, 3, padding="same", activation="relu6"),
            keras.layers.DepthwiseConv2D(3, strides=2, activation="relu"),
            keras.layers.AveragePooling2D(2, padding="same"),
            keras.layers.Flatten(),
            keras.layers.Dense(12, activation="relu"),
            keras.layers.Dense(3),
        ],
        name="small_cnn",
    )
    model.save(path / "small.keras")
    rng = np.random.default_rng(5)
    x = rng.normal(0.0, 1.0, (150, 128)).astype(np.float32)
    y = (x[:, :3].argmax(axis=1)).astype(np.int64)  # learnable: the class is in the first pixels
    np.savez(path / "small.npz", x_train=x[:120], y_train=y[:120], x_test=x[120:], y_test=y[120:])
    return path / "small.keras"


def _gap_cnn(path: Path) -> Path:
    """A user's model as written: input [height, width, channels] (stored on the board in that
    row-major layout), Conv2D -> MaxPool -> Conv2D -> GlobalAveragePooling2D | Dense."""
    import keras

    keras.utils.set_random_seed(4)
    L = keras.layers
    model = keras.Sequential(
        [
            keras.Input((10, 10, 2)),
            L.Conv2D(6, 3, activation="relu"),
            L.MaxPooling2D(2),
            L.Conv2D(8, 3, padding="same", activation="relu"),
            L.GlobalAveragePooling2D(),
            L.Dense(3),
        ],
        name="gap_cnn",
    )
    model.save(path / "gap.keras")
    rng = np.random.default_rng(6)
    x = rng.normal(0.0, 1.0, (150, 10, 10, 2)).astype(np.float32)
    y = (x.reshape(150, -1)[:, :3].argmax(axis=1)).astype(np.int64)
    np.savez(path / "gap.npz", x_train=x[:120], y_train=y[:120], x_test=x[120:], y_test=y[120:])
    return path / "gap.keras"


# (name, model, cut, max_batch, steps, batch): mnist cut 4 with max_batch 32 does not fit the
# board with every output kept, so conv1's output is recomputed in backward.
CASES = {
    "mnist-cut8": ("mnist-cnn", 8, None, 4, 8, None),
    "mnist-coded": ("mnist-cnn", 4, 32, 3, 32, None),
    "mnist-recompute": ("mnist-cnn", 4, 16, 3, 16, 40_000),
    "motion": ("motion-cnn1d", None, None, 4, 8, None),
    "motion-mask": ("motion-cnn1d", None, None, 4, 8, 40_000),
    "depthwise-avgpool-fc": ("small", 6, None, 5, 16, None),
    "natural-input-gap": ("gap", 4, None, 5, 16, None),
}
#: What each case's plan must do with an output backward reads (train.c's other paths): code
#: it (codes.c: a pool's argmax, or the ReLU mask) or recompute it, under the board's RAM or
#: the case's --ram-budget.
MODES = {"mnist-cut8": "coded", "mnist-coded": "coded", "mnist-recompute": "recomputed",
         "motion-mask": "coded"}  # fmt: skip


@pytest.fixture(scope="module", params=sorted(CASES))
def conv_case(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Path, Run, int]:
    name = request.param
    model, cut, max_batch, steps, batch, budget = CASES[name]
    out = tmp_path_factory.mktemp(f"export-{name}")
    data = None
    if model in ("small", "gap"):
        model_path = (_small_cnn if model == "small" else _gap_cnn)(out)
        data = model_path.with_suffix(".npz")
        model = str(model_path)
    export_client(model, cut, out / "export", data=data, seed=0, max_batch=max_batch,
                  ram_budget=budget)  # fmt: skip
    # ASan + UBSan: the new op-table paths run under the sanitizers as well as bit-exact
    image = build_firmware("native", out / "export", out / "build", sanitize=True)
    with native_board(image) as url:
        run = run_steps(url, out / "export", steps, lr=LR, batch=batch)
    return name, out / "export", run, steps


def test_conv_client_training_matches_golden_model_bit_for_bit(
    conv_case: tuple[str, Path, Run, int],
) -> None:
    name, export_dir, run, steps = conv_case
    state = load_client_state(export_dir)
    modes = [
        op["activation"] for op in json.loads((export_dir / "manifest.json").read_text())["ops"]
    ]
    # train.c's recompute and codes paths run only when the plan recomputes or codes an output
    if name in MODES:
        assert MODES[name] in modes, modes
    initial = ops_blob(state.ops)
    assert len(run.steps) == steps
    for i, rec in enumerate(run.steps, start=1):
        xs = state.x_train[rec.indices]
        want = ops_forward(state.ops, xs)
        bad = np.argwhere(want != rec.smashed)
        assert bad.size == 0, (
            f"{name} step {i}: board activation {tuple(bad[0])} = {rec.smashed[tuple(bad[0])]}, "
            f"golden {want[tuple(bad[0])]}"
        )
        scale, zp, _, _ = cut_quant(state.ops)
        assert (np.float32(rec.scale), rec.zero_point) == (scale, zp), f"{name} step {i}"
        ops_train_step(state.ops, xs, rec.grads, rec.grad_scales, LR)
        assert rec.weights_crc == zlib.crc32(ops_blob(state.ops)), (
            f"{name} step {i}: weights CRC differs: "
            f"{first_blob_difference(run.blob, state.ops) if i == steps else 'see the last step'}"
        )
    diff = first_blob_difference(run.blob, state.ops)
    assert diff is None, f"{name}: {diff}"
    assert run.blob != initial, "the weights did not move: nothing was compared"


@pytest.fixture(scope="module")
def mnist_qemu(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Run]:
    """mnist-cnn at its default cut, built for and run on the emulated Cortex-M4."""
    from tinysplit.host.board.launch import qemu_board

    out = tmp_path_factory.mktemp("mnist-qemu")
    export_client("mnist-cnn", None, out / "export", seed=0)
    elf = build_firmware("mps2_an386", out / "export", out / "build")
    with qemu_board(elf) as url:
        run = run_steps(url, out / "export", 3, lr=LR, batch=16)
    return out / "export", elf, run


@pytest.mark.qemu
def test_mnist_cnn_on_the_emulated_m4_matches_golden(mnist_qemu: tuple[Path, Path, Run]) -> None:
    export_dir, _, run = mnist_qemu
    state = load_client_state(export_dir)
    for i, rec in enumerate(run.steps, start=1):
        xs = state.x_train[rec.indices]
        assert np.array_equal(ops_forward(state.ops, xs), rec.smashed), f"step {i}"
        ops_train_step(state.ops, xs, rec.grads, rec.grad_scales, LR)
        assert rec.weights_crc == zlib.crc32(ops_blob(state.ops)), f"step {i}: weights differ"
    assert first_blob_difference(run.blob, state.ops) is None
    assert len(run.steps) == 3


@pytest.mark.qemu
def test_mnist_cnn_planned_ram_is_within_five_percent_of_the_linker_map(
    mnist_qemu: tuple[Path, Path, Run],
) -> None:
    from tinysplit.core.boards import board_profile
    from tinysplit.host.board.linkmap import ram_flash_from_map

    export_dir, elf, _ = mnist_qemu
    planned = json.loads((export_dir / "plan.json").read_text())["ram_peak"]
    linked = ram_flash_from_map(elf.with_suffix(".map"))["ram_used"]
    print(f"mnist-cnn client RAM: planned {planned:,} B, linked {linked:,} B")
    assert abs(linked - planned) <= 0.05 * planned, (planned, linked)
    assert linked <= board_profile("mps2_an386")["ram_bytes"] == 131072
    # the client's own buffers: the plan's rows are the linked symbols' sizes
    rows = {
        r["name"]: r["bytes"] for r in json.loads((export_dir / "plan.json").read_text())["rows"]
    }
    sizes = _symbol_sizes(elf)
    assert sizes["ts_client"] == rows["client_state"]
    assert sizes["frame_acts"] + sizes["frame_labels"] == rows["smashed_frame"]
    assert sizes["grad_row"] == rows["grad_row"]
    assert sizes["s_ring"] + 2 * 4 == rows["uart_rx_ring"]  # boards/cortex_m/cm_rx_ring.c
    assert sizes["tx_frame"] == rows["frame_tx"]  # sent from here by interrupt (cm_tx.c)


#: `tinysplit export mnist-cnn --ram-budget 49152` (issue #16's goal: at most 48 KB).
#: --ram-budget: the first keeps conv1's outputs as 4-bit pool argmax codes, the second is below
#: even that and recomputes conv1 in backward.
RAM_BUDGETS = {49_152: "pool argmax and mask", 40_000: "recomputed in backward"}


@pytest.mark.qemu
@pytest.mark.parametrize("budget", sorted(RAM_BUDGETS, reverse=True))
def test_mnist_cnn_under_a_ram_budget_trains_to_the_same_weights(
    mnist_qemu: tuple[Path, Path, Run], tmp_path: Path, budget: int
) -> None:
    """Under --ram-budget the plan stops keeping conv1's outputs for the minibatch: it keeps
    what backward reads of them in 4 bits per pooled value (pool1's argmax and the ReLU mask:
    firmware/client/codes.c), or, below that, recomputes them from the sample in flash. Either
    way a third of the RAM, the linker map within 2% of the plan, and the very same weights,
    step by step, as the run that keeps everything."""
    from tinysplit.host.board.launch import qemu_board
    from tinysplit.host.board.linkmap import ram_flash_from_map

    kept_dir, _, kept = mnist_qemu
    export_client("mnist-cnn", None, tmp_path / "export", seed=0, ram_budget=budget)
    plan = json.loads((tmp_path / "export" / "plan.json").read_text())
    elf = build_firmware("mps2_an386", tmp_path / "export", tmp_path / "build")
    linked = ram_flash_from_map(elf.with_suffix(".map"))["ram_used"]
    before = json.loads((kept_dir / "plan.json").read_text())["ram_peak"]
    print(f"\nmnist-cnn client RAM: {before:,} B kept, {plan['ram_peak']:,} B planned under "
          f"--ram-budget {budget:,} ({RAM_BUDGETS[budget]}), {linked:,} B linked")  # fmt: skip
    assert plan["ram_peak"] <= budget < before
    assert abs(linked - plan["ram_peak"]) <= 0.02 * plan["ram_peak"], (plan["ram_peak"], linked)
    assert any(RAM_BUDGETS[budget] in n for n in plan["notes"]), plan["notes"]
    with qemu_board(elf) as url:
        run = run_steps(url, tmp_path / "export", 3, lr=LR, batch=16)
    for i, (a, b) in enumerate(zip(run.steps, kept.steps, strict=True), start=1):
        assert np.array_equal(a.indices, b.indices), f"step {i}: another data order"
        assert np.array_equal(a.smashed, b.smashed), f"step {i}: cut activations differ"
        assert a.weights_crc == b.weights_crc, f"step {i}: weights differ after the step"
    assert run.blob == kept.blob


def test_a_ram_budget_below_the_smallest_plan_is_one_clear_error(tmp_path: Path) -> None:
    from tinysplit.core.errors import BadInput

    with pytest.raises(BadInput, match=r"--ram-budget 4,096: the client needs at least"):
        export_client("mnist-cnn", None, tmp_path / "export", seed=0, ram_budget=4096)
    assert not (tmp_path / "export").exists()


def _symbol_sizes(elf: Path) -> dict[str, int]:
    import subprocess

    out = subprocess.run(
        ["arm-none-eabi-nm", "-S", str(elf)], capture_output=True, text=True, check=True
    ).stdout
    return {p[3]: int(p[1], 16) for p in (line.split() for line in out.splitlines()) if len(p) == 4}


def test_export_model_joins_every_client_kind_back_into_the_keras_layout(
    conv_case: tuple[str, Path, Run, int],
) -> None:
    """export-model's join with the export's own initial state image is the exported model's
    function again: every master copy went back into its Keras kernel layout (dense, conv,
    Conv1D, depthwise, BatchNormalization folded, natural input shapes, GAP)."""
    import keras

    from tinysplit.codegen.data import load_npz
    from tinysplit.host.serving.full_model import join
    from tinysplit.host.training.weights import state_image

    _, export_dir, _, _ = conv_case
    image = state_image(load_client_state(export_dir).ops)
    server = keras.models.load_model(export_dir / "server.keras", compile=False)
    joined = join(export_dir, image, [np.asarray(w.numpy()) for w in server.weights])
    full = keras.models.load_model(export_dir / "full.keras", compile=False)
    x = np.asarray(load_npz(export_dir / "data.npz").x_test[:32], np.float32)
    want = np.asarray(full(x.reshape((len(x), *full.inputs[0].shape[1:])), training=False))
    got = np.asarray(joined(x.reshape(len(x), -1), training=False))
    worst = float(np.max(np.abs(got - want)))
    assert worst <= 1e-4 * max(1.0, float(np.max(np.abs(want)))), f"max |joined - full| {worst}"
