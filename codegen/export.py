"""`tinysplit export`: quantize the client segment of a Keras model and emit its firmware data.

The client segment (layers 0..cut-1) is converted by the TFLite converter (full int8: per-channel
symmetric weights, per-tensor asymmetric activations, int32 bias), read back, and written as C
arrays with the client's private data shard, a model hash and a static memory plan. The server
segment and the whole initial model are saved as Keras files for the host.
"""

from __future__ import annotations

import os

# Before anything imports TensorFlow: its C++ start-up chatter is not for the user.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import contextlib
import io
import json
import math
import re
import secrets
import shutil
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from tinysplit.codegen.client_ops import (
    SUPPORTED,
    check_layers,
    fold_client,
    golden_ops,
    trainable_layer,
)
from tinysplit.codegen.data import Dataset, fit_flash, load_npz, partition, subset
from tinysplit.codegen.emit_c import CModel, write_c
from tinysplit.codegen.memory_plan import (
    CODE_MASK,
    FLASH_HEADROOM_BYTES,
    MemoryPlan,
    OpLayout,
    OpShape,
    choose_kept,
    code_bytes,
)
from tinysplit.codegen.models import REGISTRY, Hyperparameters, ModelSpec, load_model
from tinysplit.codegen.pairing import PAIRING_C_FILE, PAIRING_FILE, write_pairing_key
from tinysplit.codegen.seal import PLACEHOLDER, seal
from tinysplit.core.errors import BadInput, UnsupportedLayer
from tinysplit.core.golden import ConvLayer, FCLayer
from tinysplit.core.golden.conv_layer import ACT_NONE, ACT_RELU6
from tinysplit.core.golden.head import make_head
from tinysplit.core.golden.ops import ClientOp, PoolOp, ReshapeOp, op_dims, op_kind, out_quant
from tinysplit.core.protocol.spec import (
    GRAD_FIXED_SIZE,
    MAX_PAYLOAD,
    PAIR_KEY_SIZE,
    SMASHED_FIXED_SIZE,
    grad_per_frame,
    smashed_per_frame,
)
from tinysplit.core.tflog import load_tensorflow, silenced_fd

if TYPE_CHECKING:
    import keras

#: Training samples the converter calibrates activation ranges on.
CALIBRATION_SAMPLES = 300
#: Sample counts and the batch travel as u16 on the wire (HELLO, TRAIN_STEP indices).
MAX_SAMPLES = 0xFFFF
MANIFEST_FORMAT = 2  # 2: sealed (codegen/seal.py): files' digests, the hash over all
#: The board an export is planned for unless told otherwise (its profile gives the RAM and
#: flash budgets).
DEFAULT_BOARD = "mps2_an386"

__all__ = ["SUPPORTED", "export_client", "load_client_state", "plan_client"]


def tool_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tinysplit")
    except PackageNotFoundError:
        return "0+unknown"


@dataclass(frozen=True)
class ExportResult:
    out_dir: Path
    manifest: dict[str, Any]
    plan: MemoryPlan


def board_limits(board: str | None) -> tuple[int | None, int | None]:
    """(ram_bytes, flash_bytes) of boards/<board>/profile.json; None: no limit (native)."""
    if board is None:
        return None, None
    from tinysplit.core.boards import board_profile

    try:
        profile = board_profile(board)
    except Exception as e:  # BuildError: unknown board
        raise BadInput(str(e)) from None
    ram, flash = profile.get("ram_bytes"), profile.get("flash_bytes")
    return (None if ram is None else int(ram)), (None if flash is None else int(flash))


def export_client(
    model: str | Path,
    cut: int | None,
    out_dir: Path,
    data: Path | None = None,
    seed: int = 0,
    max_batch: int | None = None,
    stack_bytes: int = 4096,
    board: str | None = DEFAULT_BOARD,
    calibration_samples: int = CALIBRATION_SAMPLES,
    noise: Noise | None = None,
    private: bool = False,
    labels: str = "host",
    insecure: bool = False,
    ram_budget: int | None = None,
    wire: str = "int8",
) -> ExportResult:
    """Exports the client segment (layers 0..cut-1) of `model` into out_dir.

    model: a bundled model name (built from `seed`) or a .keras file. cut: None takes the
    bundled model's default cut. data: a .npz file (data.load_npz), required for a .keras
    model, else the bundled model's data set. max_batch: None takes the bundled model's batch
    (32 for a .keras model). board: the profile whose RAM and flash the plan is checked
    against; the data shard is cut to a fixed subset that fits its flash (None: no limits).
    noise: the board adds this noise to its smashed data (core/golden/noise.py); its key is
    drawn here and written into model_data.c only. private: the board seals its state image
    with a key drawn here and written into model_data.c only (firmware/client/seal.c).
    labels: "host" (the board sends labels with its smashed data) or "client" (U-shaped: the
    model's last Dense layer and the loss run on the board too, and no label leaves it).
    insecure: no pairing key; by default one is drawn here and written into model_data.c and
    DIR/pairing.key (the host's copy): the board then talks only sealed, to a host holding it
    (firmware/client/pairing.c). ram_budget: client RAM to plan within, below the board's (the
    plan recomputes kept activations in backward until it fits; BadInput if it cannot).
    wire: how smashed data and cut gradients travel (core/protocol/wire.py NAMES; "int8" is
    plain SMASHED and GRAD, the others SMASHED_PACKED and GRAD_PACKED).
    Raises BadInput / UnsupportedLayer with a one-line message the CLI prints as is.
    """
    out_dir = Path(out_dir)
    if noise is not None:
        noise.check()
    _wire_named(wire)
    check_out_dir(out_dir, [Path(model)] + ([Path(data)] if data is not None else []))
    staged = _staging_dir(out_dir)
    try:
        res = _export_into(model, cut, staged, data, seed, max_batch, stack_bytes, board,
                           calibration_samples, noise, private, labels,
                           insecure=insecure, ram_budget=ram_budget, wire=wire)  # fmt: skip
        _replace_dir(staged, out_dir)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return ExportResult(out_dir, res.manifest, res.plan)


@dataclass(frozen=True)
class Member:
    """One client of a federation: which client, of how many, and its training rows."""

    index: int
    clients: int
    rule: str
    rows: npt.NDArray[np.int64]


def export_clients(
    model: str | Path,
    cut: int | None,
    out_dir: Path,
    clients: int,
    shards: str = "iid",
    *,
    data: Path | None = None,
    seed: int = 0,
    board: str | None = DEFAULT_BOARD,
    labels: str = "host",
    private: bool = False,
    insecure: bool = False,
    wire: str = "int8",
) -> list[ExportResult]:
    """Several data holders: one export per client in out_dir/client<k> (k from 0), the same
    model (initial weights, int8 quantization) with each client's own shard of the training
    set (partition rule `shards`; the test set whole on each), and out_dir/federation.json
    listing them. Raises what export_client raises, and BadInput for a bad --clients/--shards."""
    out_dir = Path(out_dir)
    if not 1 <= clients <= MAX_CLIENTS:
        raise BadInput(f"--clients {clients}: give 1..{MAX_CLIENTS}")
    _wire_named(wire)
    earlier = (out_dir / "federation.json").is_file() and all(
        p.name == "federation.json" or p.name.startswith("client") for p in out_dir.iterdir()
    )
    if earlier:  # an earlier federation export: replaced client by client
        for p in out_dir.iterdir():
            if (
                p.is_dir()
                and p.name.startswith("client")
                and p.name[6:].isdigit()
                and (int(p.name[6:]) >= clients)
            ):
                shutil.rmtree(p)
    else:
        check_out_dir(out_dir, [Path(model)] + ([Path(data)] if data is not None else []))
    load_tensorflow()
    c = _prepare(model, cut, data, seed, None, 4096, board, CALIBRATION_SAMPLES, labels)
    rows = partition(c.full_data.y_train, clients, shards, seed)
    results = []
    for k, part in enumerate(rows):
        member = Member(k, clients, shards, part)
        target = out_dir / f"client{k}"
        staged = _staging_dir(target)
        try:
            res = _export_into(model, cut, staged, data, seed, None, 4096, board,
                               CALIBRATION_SAMPLES, None, private, labels, member,
                               insecure=insecure, wire=wire)  # fmt: skip
            _replace_dir(staged, target)
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            raise
        results.append(ExportResult(target, res.manifest, res.plan))
    index = {
        "clients": clients,
        "shards": shards,
        "model": results[0].manifest["model"],
        "exports": [
            {"dir": f"client{k}", "model_hash": r.manifest["model_hash"],
             "n_train": r.manifest["n_train"],
             "classes": sorted({int(v) for v in c.full_data.y_train[rows[k]]})}
            for k, r in enumerate(results)
        ],
    }  # fmt: skip
    (out_dir / "federation.json").write_text(json.dumps(index, indent=2) + "\n")
    return results


def relu_cut(ops: Sequence[ClientOp]) -> bool:
    """Whether the cut is a ReLU's output, through max pools and reshapes only: its zeros are
    the zero point, where the board's backward stops (what a coded --wire needs)."""
    for op in reversed(ops):
        if isinstance(op, ReshapeOp) or (isinstance(op, PoolOp) and op.kind == "max"):
            continue
        return bool(isinstance(op, FCLayer) and op.relu) or (
            isinstance(op, ConvLayer) and op.act != ACT_NONE
        )
    return False


#: Training samples the planner runs through the client to count zeros at the cut.
ZERO_SAMPLES = 64


def cut_zero_share(ops: Sequence[ClientOp], x: npt.NDArray[np.int8]) -> tuple[float, float]:
    """(share of the cut's activations at the zero point, the same after ACTS4's levels) over
    the first ZERO_SAMPLES of x (int8 inputs), with these ops' weights."""
    from tinysplit.core.golden.step import cut_quant, ops_forward
    from tinysplit.core.protocol.wire import ACTS4, on_the_wire

    acts = ops_forward(list(ops), x[:ZERO_SAMPLES])
    _, zp, _, _ = cut_quant(list(ops))
    zero = float(np.mean(acts == np.int8(zp)))
    coded = on_the_wire(acts, zp, ACTS4) if 127 - zp >= 15 else acts
    return zero, float(np.mean(coded == np.int8(zp)))


def _wire_named(wire: str) -> int:
    """The bits of --wire's name, or BadInput naming the choices (before any work)."""
    from tinysplit.core.protocol import wire as wire_codec

    try:
        return wire_codec.wire_bits(wire)
    except ValueError as e:
        raise BadInput(f"--wire: {e}") from None


def _check_wire(wire: str, ops: Sequence[ClientOp], noise: Noise | None, cut_size: int) -> int:
    """The bits of --wire, or BadInput: a coded format needs a cut that is a ReLU's output (its
    zeros are where the board's backward stops: SPARSE leaves out nothing it uses, ACTS4's
    levels start at the zero point), SPARSE needs the activations the board kept to be the ones
    it sent (no --noise), and one sample must fit a frame."""
    from tinysplit.core.protocol import wire as wire_codec

    bits = _wire_named(wire)
    if not bits:
        return 0
    relu = False
    for op in reversed(ops):  # back from the cut, through what keeps a ReLU's zeros
        if isinstance(op, ReshapeOp) or (isinstance(op, PoolOp) and op.kind == "max"):
            continue
        relu = (isinstance(op, FCLayer) and op.relu) or (
            isinstance(op, ConvLayer) and op.act != ACT_NONE
        )
        break
    if not relu:
        raise BadInput(
            f"--wire {wire}: the cut is not a ReLU's output (through max pools and reshapes "
            "only); choose a cut after a ReLU, or --wire int8"
        )
    if bits & wire_codec.SPARSE and noise is not None and noise.scale > 0:
        raise BadInput(
            f"--wire {wire}: the noise changes which activations are zero on the wire; "
            "use --wire int4 or int8 with --noise"
        )
    if wire_codec.smashed_per_frame(cut_size, bits) < 1:
        raise BadInput(
            f"--wire {wire}: one coded sample of the {cut_size}-value cut does not fit a frame; "
            "choose --wire int4 or sparse-int4, or an earlier cut"
        )
    return bits


#: Most clients one export writes (and one host trains).
MAX_CLIENTS = 16


@dataclass(frozen=True)
class Noise:
    """Noise on the board's smashed data (core/golden/noise.py): kind and scale."""

    kind: str = "laplace"
    scale: float = 0.0

    def check(self) -> None:
        from tinysplit.core.golden.noise import MAX_NOISE_SCALE, NOISE_KINDS

        if self.kind not in NOISE_KINDS:
            raise BadInput(f"--noise {self.kind}: choose one of {', '.join(NOISE_KINDS)}")
        if not (math.isfinite(self.scale) and 0.0 <= self.scale <= MAX_NOISE_SCALE):
            raise BadInput(
                f"--noise-scale {self.scale}: give 0..{MAX_NOISE_SCALE:g} (the noise's scale as a "
                "fraction of the cut's int8 range; 0.05 is a light defence)"
            )

    def table(self) -> npt.NDArray[np.int16]:
        from tinysplit.core.golden.noise import noise_table

        return noise_table(self.scale, self.kind)


def board_noise(out_dir: Path) -> tuple[npt.NDArray[np.int16], int] | None:
    """(table, key) of an export's on-board noise, read from model_data.c (the key is in no
    other file); None for an export without noise. For the golden model and tests."""
    manifest = json.loads((Path(out_dir) / "manifest.json").read_text())
    noise = manifest.get("noise")
    if not noise:
        return None
    text = (Path(out_dir) / "model_data.c").read_text()
    found = re.search(r"const uint32_t ts_noise_key = (0x[0-9a-f]+)u;", text)
    if found is None:
        raise BadInput(f"{out_dir}/model_data.c holds no ts_noise_key but the manifest has noise")
    return Noise(noise["kind"], float(noise["scale"])).table(), int(found.group(1), 16)


def board_seal_key(out_dir: Path) -> bytes | None:
    """The 32-byte key an export's board seals its state with, read from model_data.c (no other
    file holds it: it is the data holder's, for tests and for opening a checkpoint by hand);
    None for an export without --private."""
    text = (Path(out_dir) / "model_data.c").read_text()
    found = re.search(r"const uint8_t ts_seal_key\[32\] = \{([^}]*)\}", text)
    if found is None:
        return None
    return bytes(int(v, 16) for v in found.group(1).replace(",", " ").split())


def _export_into(
    model: str | Path,
    cut: int | None,
    out_dir: Path,
    data: Path | None = None,
    seed: int = 0,
    max_batch: int | None = None,
    stack_bytes: int = 4096,
    board: str | None = DEFAULT_BOARD,
    calibration_samples: int = CALIBRATION_SAMPLES,
    noise: Noise | None = None,
    private: bool = False,
    labels: str = "host",
    member: Member | None = None,
    *,
    insecure: bool = False,
    ram_budget: int | None = None,
    wire: str = "int8",
) -> ExportResult:
    """export_client's work, written into out_dir (a fresh staging folder). member: one client
    of several (export_clients): its shard of the training set, calibrated on the whole set."""
    load_tensorflow()  # TensorFlow's start-up log lines off stderr, on every CPU
    c = _prepare(model, cut, data, seed, max_batch, stack_bytes, board, calibration_samples,
                 labels, ram_budget)  # fmt: skip
    check_cut_size(c.cut_size, c.cut)
    name, spec, net, cut = c.name, c.spec, c.net, c.cut
    input_size, cut_size, server, full_data = c.input_size, c.cut_size, c.server, c.full_data
    max_batch = c.max_batch

    tflite, ops = c.convert(full_data)
    wire_bits = _check_wire(wire, ops, noise, cut_size)
    c.plan_args["wire"] = wire_bits
    if member is not None:
        # Every client of a federation runs the same int8 model: calibrated on the whole
        # training set once, whatever shard each holds.
        c.full_data = full_data = subset(full_data, member.rows)
        dataset, data_note = _fit_shard(c, ops)
    else:
        dataset, data_note = _fit_shard(c, ops)
        if dataset is not full_data:
            tflite, ops = c.convert(dataset)

    first_scale, first_zp = input_quant(ops[0])
    shard = (
        quantize_input(dataset.x_train, first_scale, first_zp),
        dataset.y_train.astype(np.uint8),
        quantize_input(dataset.x_test, first_scale, first_zp),
        dataset.y_test.astype(np.uint8),
    )
    layer_config = [_op_config(op) for op in ops]
    hyper = spec.hyperparameters if spec is not None else Hyperparameters()
    hyper = Hyperparameters(hyper.batch, hyper.lr, hyper.epochs, seed)

    layout, plan = _final_plan(c, ops, dataset, data_note)
    _check_budget(plan, ram_budget)
    if ram_budget is not None:
        plan = replace(plan, notes=(*plan.notes, f"RAM budget {ram_budget:,} B (--ram-budget)"))

    out_dir = Path(out_dir)
    (out_dir / "client.tflite").write_bytes(tflite)
    version = tool_version()
    pair_key = None if insecure else secrets.token_bytes(PAIR_KEY_SIZE)
    if pair_key is not None:
        write_pairing_key(out_dir, pair_key)
    write_c(
        CModel(
            model_hash=PLACEHOLDER,
            train_x=shard[0],
            train_y=shard[1],
            test_x=shard[2],
            test_y=shard[3],
            max_batch=max_batch,
            stack_bytes=stack_bytes,
            model_name=name,
            cut=cut,
            tool_version=version,
            ops=ops,
            layout=layout,
            noise_table=noise.table() if noise is not None and noise.scale > 0 else None,
            noise_key=secrets.randbits(32) if noise is not None and noise.scale > 0 else 0,
            seal_key=secrets.token_bytes(32) if private else None,
            paired=pair_key is not None,
            head=c.head_op(),
            wire=wire_bits,
        ),
        out_dir,
    )
    with quiet():  # Keras's saving warns about its own numpy 2 use
        server.save(out_dir / "server.keras")
        net.save(out_dir / "full.keras")
    dataset.save_npz(out_dir / "data.npz")
    if dataset is not full_data:
        full_data.save_npz(out_dir / "data_full.npz")

    (out_dir / "plan.json").write_text(json.dumps(plan.to_json(), indent=2) + "\n")
    manifest: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "tool_version": version,
        "model": name,
        "model_hash": PLACEHOLDER.hex(),  # seal() writes the real one
        "cut": cut,
        "input_size": input_size,
        "cut_size": cut_size,
        "n_classes": dataset.n_classes,
        "n_train": len(dataset.y_train),
        "n_test": len(dataset.y_test),
        "max_batch": max_batch,
        "dataset": dataset.name,
        "layers": layer_config,
        "hyperparameters": hyper.to_dict(),
        "ram_peak": plan.ram_peak,
        "flash": plan.flash,
        "board": board,
        "ops": [
            {"kind": op_kind(op), "activation": mode}
            for op, mode in zip(ops, layout.modes, strict=True)
        ],
    }
    if noise is not None and noise.scale > 0:
        manifest["noise"] = {"kind": noise.kind, "scale": noise.scale}
    manifest["wire"] = wire
    if private:
        manifest["sealed"] = True
    manifest["paired"] = pair_key is not None
    if member is not None:
        manifest["federation"] = {"client": member.index, "clients": member.clients,
                                  "shards": member.rule}  # fmt: skip
    if c.head is not None:
        manifest["labels"] = "client"
        manifest["head"] = {"in": c.head_size, "out": dataset_outputs(c)}
    if dataset is not full_data:
        manifest["n_train_full"] = len(full_data.y_train)
        manifest["n_test_full"] = len(full_data.y_test)
    seal(out_dir, manifest)  # the model hash: everything above, as written
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return ExportResult(out_dir, manifest, plan)


#: Every file an export folder holds.
EXPORT_FILES = frozenset({
    "client.tflite", "model_data.c", "model_data.h", "server.keras", "full.keras", "data.npz",
    "data_full.npz", "plan.json", "manifest.json", PAIRING_FILE, PAIRING_C_FILE,
})  # fmt: skip


def check_out_dir(out_dir: Path, inputs: Sequence[Path]) -> None:
    """Refuses, before any work, an --out that cannot take an export or would overwrite
    something that is not an earlier export: a file, a folder under a file or one that cannot
    be written, a folder of other files, or the folder holding the model or data read."""
    out = Path(out_dir).resolve()
    for parent in [out, *out.parents]:
        if parent.exists():
            if not parent.is_dir():
                what = "is a file" if parent == out else f"is under {parent}, a file"
                raise BadInput(f"--out {out_dir} {what}: give a folder for the export")
            if not os.access(parent, os.W_OK | os.X_OK) or not os.access(
                parent.parent if parent == out else parent, os.W_OK | os.X_OK
            ):
                raise BadInput(
                    f"--out {out_dir}: cannot write in {parent} (permission denied): "
                    "choose a folder you can write to"
                )
            break
    for path in inputs:
        p = path.resolve() if path.exists() else None
        if p is not None and (p == out or out in p.parents):
            raise BadInput(
                f"--out {out_dir} holds the input {path}: the export would write over it; "
                "choose another --out folder"
            )
    if out.is_dir() and any(out.iterdir()):
        others = sorted(f.name for f in out.iterdir() if f.name not in EXPORT_FILES)
        if others or not (out / "manifest.json").is_file():
            raise BadInput(
                f"--out {out_dir} holds files that are not a tinysplit export "
                f"({', '.join(others[:3]) or 'no manifest.json'}): choose a new or empty folder "
                "(an earlier export there is replaced whole)"
            )


def _staging_dir(out_dir: Path) -> Path:
    """A fresh folder beside out_dir: the export is written there whole, then renamed."""
    import tempfile

    parent = Path(out_dir).resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=f".{Path(out_dir).name}.", dir=parent))
    mask = os.umask(0)
    os.umask(mask)
    staged.chmod(0o777 & ~mask)  # the folder a plain mkdir would make, not mkdtemp's 0700
    return staged


def _replace_dir(staged: Path, final: Path) -> None:
    """Puts the staged export in place of final (an earlier export, or nothing)."""
    old = None
    if final.exists():
        old = staged.with_name(staged.name + ".old")
        final.rename(old)
    staged.rename(final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@dataclass
class _Client:
    """A model cut into client and server segments, checked and folded, with its data set and
    the plan's fixed arguments: what export_client and plan_client both start from."""

    name: str
    spec: ModelSpec | None
    net: keras.Model  # the whole model, BatchNormalization/ReLU folded into the client
    layers: list[keras.Layer]
    cut: int  # client layers after folding
    input_size: int
    cut_size: int
    client: keras.Model
    server: keras.Model
    full_data: Dataset
    max_batch: int
    seed: int
    calibration_samples: int
    plan_args: dict[str, Any]  # input_size, max_batch, stack_bytes, ram_limit, flash_limit
    head: keras.Layer | None = None  # U-shaped (--labels client): the last Dense, on the board

    @property
    def head_size(self) -> int:
        """Inputs of the head (0: no head)."""
        return 0 if self.head is None else int(self.head.kernel.shape[0])

    def head_op(self) -> FCLayer | None:
        """The head's golden layer as export writes it (core/golden/head.py)."""
        return None if self.head is None else head_of(self.head)

    def convert(self, d: Dataset) -> tuple[bytes, list[ClientOp]]:
        """The int8 client (calibrated on a fixed sample of d's training set) and its ops."""
        rng = np.random.default_rng(self.seed)
        calib = d.x_train[rng.permutation(len(d.x_train))[: self.calibration_samples]]
        tfl = convert_int8(self.client, calib)
        return tfl, golden_ops(tfl, self.layers[: self.cut])


def _prepare(
    model: str | Path,
    cut: int | None,
    data: Path | None,
    seed: int,
    max_batch: int | None,
    stack_bytes: int,
    board: str | None,
    calibration_samples: int,
    labels: str = "host",
    ram_budget: int | None = None,
) -> _Client:
    """Checks the arguments, loads the model and its data, folds and splits it at `cut`."""
    if labels not in LABELS:
        raise BadInput(f"--labels {labels}: choose one of {', '.join(LABELS)}")
    spec = REGISTRY.get(model) if isinstance(model, str) else None
    if max_batch is None:
        max_batch = spec.hyperparameters.batch if spec is not None else 32
    if not 1 <= max_batch <= MAX_SAMPLES:
        raise BadInput(f"max batch {max_batch} must be in 1..{MAX_SAMPLES}")
    if stack_bytes <= 0 or stack_bytes % 8:
        raise BadInput(f"stack size {stack_bytes} must be a positive multiple of 8 bytes")
    ram_limit, flash_limit = board_limits(board)
    if ram_budget is not None:
        if ram_budget <= 0:
            raise BadInput(f"--ram-budget {ram_budget}: give the client's RAM in bytes (> 0)")
        ram_limit = ram_budget if ram_limit is None else min(ram_limit, ram_budget)
    name = spec.name if spec is not None else Path(model).name
    net = load_model(model, seed)
    if spec is None and data is None:
        raise BadInput(f"model {name} has no bundled data set: give one with --data FILE.npz")
    if cut is None:
        if spec is None:
            raise BadInput(f"model {name} has no default cut: give one with --cut N")
        cut = spec.default_cut
    layers = chain_layers(net)
    offset = input_offset(layers)
    cut += offset
    check_client(layers, cut, offset)
    input_size = int(np.prod(net.inputs[0].shape[1:]))
    n_outputs = int(net.outputs[0].shape[-1])

    if data is not None:
        full_data = load_npz(data, n_classes=n_outputs)
    else:
        assert spec is not None  # checked above
        full_data = spec.dataset()
    _check_dataset(full_data, tuple(int(d) for d in net.inputs[0].shape[1:]), n_outputs)

    folded, cut = fold_client(layers, cut)
    changed = any(a is not b for a, b in zip(folded, layers, strict=False))
    if offset or changed or len(folded) != len(layers):
        import keras

        with quiet():
            net = keras.Sequential([keras.Input((input_size,)), *folded], name=net.name)
    layers = folded
    client = _segment(layers[:cut], input_size, "client", "ts_client_input")
    if len(client.outputs[0].shape) != 2:
        # The wire carries a flat vector: flatten at the cut and reshape back on the server.
        # The pair is the identity, so the full model (and its centralized baseline) computes
        # what it did; full.keras holds it, and the manifest's cut counts the Flatten.
        import keras

        shape = tuple(int(d) for d in client.outputs[0].shape[1:])
        pair = [
            keras.layers.Flatten(name=CUT_FLATTEN),
            keras.layers.Reshape(shape, name=CUT_RESHAPE),
        ]
        layers = [*layers[:cut], *pair, *layers[cut:]]
        cut += 1
        with quiet():
            net = keras.Sequential([keras.Input((input_size,)), *layers], name=net.name)
        client = _segment(layers[:cut], input_size, "client", "ts_client_input")
    cut_size = int(client.outputs[0].shape[-1])
    head = _check_head(layers, cut, offset) if labels == "client" else None
    server_layers = layers[cut:-1] if head is not None else layers[cut:]
    server = _segment(server_layers, cut_size, "server", "ts_server_input")
    plan_args: dict[str, Any] = dict(
        input_size=input_size, max_batch=max_batch, stack_bytes=stack_bytes,
        ram_limit=ram_limit, flash_limit=flash_limit,
        head=None if head is None else (int(head.kernel.shape[0]), int(head.kernel.shape[1])),
    )  # fmt: skip
    return _Client(name, spec, net, layers, cut, input_size, cut_size, client, server, full_data,
                   max_batch, seed, calibration_samples, plan_args, head)  # fmt: skip


#: --labels: where the labels (and the loss) are.
LABELS = ("host", "client")


def _check_head(layers: Sequence[keras.Layer], cut: int, offset: int) -> keras.Layer:
    """The head of a U-shaped split: the model's last layer, a Dense on a flat input with no
    activation (logits) or softmax (the board computes its own softmax), and at least one
    trainable layer on the server between the cut and it."""
    import keras

    last = layers[-1]
    act = getattr(getattr(last, "activation", None), "__name__", "")
    if not isinstance(last, keras.layers.Dense) or act not in ("linear", "softmax"):
        raise BadInput(
            f"--labels client: the model's last layer ({last.name}, "
            f"{type(last).__name__}) must be a Dense with no activation or softmax: the "
            "board's head computes the logits and the loss"
        )
    if len(last.input.shape) != 2:
        raise BadInput(
            f"--labels client: the last Dense ({last.name}) takes a {len(last.input.shape) - 1}-D "
            "input; it must take a flat vector (put a Flatten before it)"
        )
    if not any(trainable_layer(x) or x.trainable_weights for x in layers[cut:-1]):
        raise BadInput(
            f"--labels client: no trainable layer between the cut ({cut - offset}) and the last "
            "Dense; the server would have nothing to train: cut earlier"
        )
    return last


def dataset_outputs(c: _Client) -> int:
    """Outputs (classes) of the model's last layer."""
    return int(c.net.outputs[0].shape[-1])


def _fit_shard(c: _Client, ops: Sequence[ClientOp]) -> tuple[Dataset, str]:
    """The data shard lives in flash: the fixed subset of the data set that fits what the rest
    of the plan leaves (the whole set without a flash limit), and the plan's note about it."""
    flash_limit = c.plan_args["flash_limit"]
    if flash_limit is None:
        return c.full_data, ""
    full_data = c.full_data
    rest = _plan(ops, n_train=0, n_test=0, **c.plan_args)[1].flash
    budget = flash_limit - rest - FLASH_HEADROOM_BYTES
    dataset = fit_flash(full_data, budget, c.seed)
    data_note = (
        f"data shard: {len(dataset.y_train):,} of {len(full_data.y_train):,} train and "
        f"{len(dataset.y_test):,} of {len(full_data.y_test):,} test samples on the board; "
        f"flash budget {budget:,} B = board {flash_limit:,} - model and code {rest:,} - "
        f"headroom {FLASH_HEADROOM_BYTES:,}"
    )
    if dataset is not full_data:
        data_note += (
            "; split and centralized runs both use this subset (data.npz), the full set "
            "is data_full.npz (host only)"
        )
    return dataset, data_note


def _final_plan(
    c: _Client, ops: Sequence[ClientOp], dataset: Dataset, data_note: str
) -> tuple[OpLayout, MemoryPlan]:
    """The export's op layout and memory plan, with the data shard that goes to the board."""
    layout, plan = _plan(
        ops, n_train=len(dataset.y_train), n_test=len(dataset.y_test), **c.plan_args
    )
    if data_note:
        plan = replace(plan, notes=(*plan.notes, data_note))
    return layout, plan


@dataclass(frozen=True)
class ClientPlan:
    """What an export of `model` at `cut` for `board` would hold, without writing it: the
    client's golden ops, op layout and memory plan (equal to export_client's plan)."""

    model: str
    cut: int  # client layers after folding (export's manifest "cut")
    input_size: int
    cut_size: int
    max_batch: int
    ops: tuple[ClientOp, ...]
    layout: OpLayout
    plan: MemoryPlan
    n_train: int  # samples of the shard that fits the board
    n_test: int
    n_train_full: int  # of the whole data set
    n_test_full: int
    head: FCLayer | None = None  # U-shaped (--labels client): the board's head
    relu_cut: bool = False  # a coded --wire can carry this cut
    zero_share: tuple[float, float] = (0.0, 0.0)  # cut_zero_share on the shard
    # the shard's first ZERO_SAMPLES training inputs, int8 (the planner's cost statistics)
    inputs: npt.NDArray[np.int8] | None = None


def plan_client(
    model: str | Path,
    cut: int | None,
    data: Path | None = None,
    seed: int = 0,
    max_batch: int | None = None,
    stack_bytes: int = 4096,
    board: str | None = DEFAULT_BOARD,
    calibration_samples: int = CALIBRATION_SAMPLES,
    labels: str = "host",
    ram_budget: int | None = None,
    wire: int = 0,
) -> ClientPlan:
    """The memory plan export_client would write for these arguments, by the same steps (one
    TFLite conversion: the re-calibration on the flash-fitted shard changes no shape), and
    without checking that a frame carries the cut (the planner reports that itself). Raises
    what export_client raises for the model, cut, data and board."""
    c = _prepare(model, cut, data, seed, max_batch, stack_bytes, board, calibration_samples,
                 labels, ram_budget)  # fmt: skip
    _, ops = c.convert(c.full_data)
    c.plan_args["wire"] = wire if relu_cut(ops) else 0
    dataset, data_note = _fit_shard(c, ops)
    layout, plan = _final_plan(c, ops, dataset, data_note)
    _check_budget(plan, ram_budget)
    scale, zp = input_quant(ops[0])
    relu = relu_cut(ops)
    x8 = quantize_input(dataset.x_train[:ZERO_SAMPLES], scale, zp)
    zeros = cut_zero_share(ops, x8) if relu else (0.0, 0.0)
    return ClientPlan(
        c.name, c.cut, c.input_size, c.cut_size, c.max_batch, tuple(ops), layout, plan,
        len(dataset.y_train), len(dataset.y_test), len(c.full_data.y_train),
        len(c.full_data.y_test), c.head_op(), relu, zeros, x8,
    )  # fmt: skip


def _check_budget(plan: MemoryPlan, ram_budget: int | None) -> None:
    """BadInput when even recomputing every kept activation leaves the plan above the budget."""
    if ram_budget is not None and plan.ram_peak > ram_budget:
        raise BadInput(
            f"--ram-budget {ram_budget:,}: the client needs at least {plan.ram_peak:,} B of RAM "
            "with every activation recomputed in backward; give more, or cut earlier"
        )


def input_quant(op: ClientOp) -> tuple[np.float32, int]:
    """The quantization of the client's input (its first op's)."""
    if isinstance(op, FCLayer | ConvLayer):
        return np.float32(op.in_scale), int(op.in_zp)
    return out_quant(op)  # a pool or reshape keeps its input's quantization


def op_shape(op: ClientOp) -> OpShape:
    """What the memory plan needs of a golden op."""
    d_in, d_out = op_dims(op)
    kind = op_kind(op)
    if isinstance(op, FCLayer):
        return OpShape(kind, d_in, d_out, int(op.w.size), op.out_features, bool(op.relu))
    if isinstance(op, ConvLayer):
        return OpShape(kind, d_in, d_out, int(op.w.size), op.out_dims[2], op.act != 0,
                       relu6=op.act == ACT_RELU6)  # fmt: skip
    if isinstance(op, PoolOp):
        return OpShape(kind, d_in, d_out, overlapping=op.params.overlapping,
                       window=op.params.kh * op.params.kw)  # fmt: skip
    return OpShape(kind, d_in, d_out)


def _plan(ops: Sequence[ClientOp], **args: Any) -> tuple[OpLayout, MemoryPlan]:
    """The op layout and memory plan, with kept/recomputed activations chosen to fit the
    board's RAM."""
    shapes = [op_shape(op) for op in ops]
    ram_limit = args.pop("ram_limit")
    layout, plan = choose_kept(shapes, ram_limit, args.pop("max_batch"), **args)
    notes = [
        f"op{i} {shapes[i].label}: output recomputed in backward (keeping it for the "
        f"minibatch would need {plan.max_batch * shapes[i].out_bytes:,} B)"
        for i, r in enumerate(layout.recompute)
        if r
    ] + [
        f"op{i} {shapes[i].label}: backward keeps its {what} for the minibatch "
        f"({plan.max_batch * code_bytes(shapes, i):,} B instead of "
        f"{plan.max_batch * shapes[i].out_bytes:,} B)"
        for i, c in enumerate(layout.coded)
        if c
        for what in ["activation mask (1 bit per value)" if c == CODE_MASK
                     else "pool argmax and mask (4 bits per pooled value)"]
    ]  # fmt: skip
    return layout, replace(plan, notes=tuple(notes))


# ---- validation -------------------------------------------------------------------------


def chain_layers(net: keras.Model) -> list[keras.Layer]:
    """The model's layers in order (InputLayer dropped), checking the model is one plain chain
    with rank-1 features in and out."""
    import keras

    if len(net.inputs) != 1 or len(net.outputs) != 1:
        raise UnsupportedLayer(
            f"model {net.name} has {len(net.inputs)} inputs and {len(net.outputs)} outputs; "
            "tinysplit splits models with one input and one output"
        )
    in_shape, out_shape = tuple(net.inputs[0].shape), tuple(net.outputs[0].shape)
    if not 2 <= len(in_shape) <= 4 or any(d is None for d in in_shape[1:]):
        raise UnsupportedLayer(
            f"model input has shape {in_shape}; the client takes samples of a fixed shape "
            "[features], [steps, channels] or [height, width, channels]"
        )
    if len(out_shape) != 2:
        raise UnsupportedLayer(f"model output has shape {out_shape}; expected [batch, classes]")
    layers = [layer for layer in net.layers if not isinstance(layer, keras.layers.InputLayer)]
    if not layers:
        raise BadInput(f"model {net.name} has no layers to split")
    if not isinstance(net, keras.Sequential):
        # A functional model must be the same function as its layers applied in order.
        probe = np.random.default_rng(0).random((4, *in_shape[1:]), dtype=np.float32)
        try:
            chain = keras.Sequential([keras.Input(in_shape[1:]), *layers])
            same = np.array_equal(
                np.asarray(net(probe, training=False)), np.asarray(chain(probe, training=False))
            )
        except Exception:  # a layer that needs several inputs (Add, Concatenate, ...)
            same = False
        if not same:
            raise UnsupportedLayer(
                f"model {net.name} is not a single chain of layers (branches or skip "
                "connections); tinysplit splits sequential models"
            )
    if len(in_shape) > 2:
        # The board stores a sample flat, in its natural row-major layout; a Reshape back to
        # the model's own input shape runs first (on the board it moves no byte).
        layers = [keras.layers.Reshape(tuple(in_shape[1:]), name=INPUT_RESHAPE), *layers]
    return layers


#: Name of the Reshape the exporter puts first when the model's input is not flat.
INPUT_RESHAPE = "ts_input_reshape"


def input_offset(layers: Sequence[keras.Layer]) -> int:
    """1 when chain_layers put a Reshape before the model's own layers, else 0: a cut the user
    gives counts the model's own layers."""
    return 1 if layers and layers[0].name == INPUT_RESHAPE else 0


def check_cut_size(cut_size: int, cut: int) -> None:
    """One SMASHED and one GRAD frame must each carry at least one sample's cut output."""
    if smashed_per_frame(cut_size) < 1 or grad_per_frame(cut_size) < 1:
        largest = min(MAX_PAYLOAD - SMASHED_FIXED_SIZE - 1, MAX_PAYLOAD - GRAD_FIXED_SIZE - 4)
        raise BadInput(
            f"the cut after layer {cut} sends {cut_size} bytes per sample; one frame carries at "
            f"most {largest}: cut after a pooling layer or deeper"
        )


#: Names of the identity pair the exporter puts at a cut whose output is not flat.
CUT_FLATTEN, CUT_RESHAPE = "ts_cut_flatten", "ts_cut_reshape"


def check_client(layers: Sequence[keras.Layer], cut: int, offset: int = 0) -> None:
    """Cut in 1..len(layers)-1 and every client layer supported by the firmware. offset: the
    layers chain_layers put first (the messages count the model's own layers)."""
    if not 1 + offset <= cut <= len(layers) - 1:
        n = len(layers) - offset
        raise BadInput(
            f"cut {cut - offset} is out of range: the model has {n} layers, so the cut must be "
            f"1..{n - 1} (layers 0..cut-1 run on the client)"
        )
    check_layers(layers[:cut])
    if not any(trainable_layer(x) for x in layers[:cut]):
        raise BadInput(
            f"the client (layers 0..{cut - 1}) has no Dense or conv layer: the board would send "
            "its raw input; cut after the first trainable layer or later"
        )


def _check_dataset(d: Dataset, sample_shape: tuple[int, ...], n_outputs: int) -> None:
    input_size = int(np.prod(sample_shape))
    if d.sample_shape and d.sample_shape != sample_shape:
        raise BadInput(
            f"data set {d.name} has samples of shape {list(d.sample_shape)} but the model takes "
            f"{list(sample_shape)}"
        )
    if d.input_size != input_size:
        raise BadInput(
            f"data set {d.name} has {d.input_size} features but the model takes {input_size}"
        )
    if d.n_classes > n_outputs:
        raise BadInput(
            f"data set {d.name} has {d.n_classes} classes but the model outputs {n_outputs}"
        )
    for split, n in (("train", len(d.y_train)), ("test", len(d.y_test))):
        if n > MAX_SAMPLES:
            raise BadInput(
                f"data set {d.name} has {n} {split} samples; the protocol indexes at most "
                f"{MAX_SAMPLES}: subsample it"
            )


# ---- conversion ------------------------------------------------------------------------


def _segment(
    layers: Sequence[keras.Layer], input_size: int, name: str, input_name: str
) -> keras.Model:
    """A model made of existing layers (shared weights), with a rank-1 input. Everything is
    named: names end up in the .tflite, and Keras's own numbering depends on the process."""
    import keras

    return keras.Sequential([keras.Input((input_size,), name=input_name), *layers], name=name)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silences TensorFlow, the converter and Keras: Python output, warnings and the C++ logs
    written straight to file descriptors 1 and 2."""
    tf = load_tensorflow()
    import absl.logging

    absl.logging.set_verbosity(absl.logging.ERROR)
    tf.get_logger().setLevel("ERROR")
    with (
        silenced_fd(1),
        silenced_fd(2),
        warnings.catch_warnings(),
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
    ):
        warnings.simplefilter("ignore")
        yield


def convert_int8(client: keras.Model, calibration: npt.NDArray[np.float32]) -> bytes:
    """Full-integer TFLite conversion: int8 in/out, per-channel int8 weights, int32 bias."""
    import tensorflow as tf

    def representative() -> Iterator[list[npt.NDArray[np.float32]]]:
        for i in range(len(calibration)):
            yield [calibration[i : i + 1]]

    with quiet():
        converter = tf.lite.TFLiteConverter.from_keras_model(client)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
        out: bytes = converter.convert()
    return out


# ---- data shard and hash -----------------------------------------------------------------


def quantize_input(
    x: npt.NDArray[np.float32], scale: float | np.float32, zero_point: int
) -> npt.NDArray[np.int8]:
    """TFLite's input quantization: zp + round(x / scale) (float32 division, half away from
    zero), clamped to int8."""
    v = (np.asarray(x, dtype=np.float32) / np.float32(scale)).astype(np.float64)
    r = np.where(v >= 0, np.floor(v + 0.5), np.ceil(v - 0.5))  # exact in float64
    q = np.clip(r + int(zero_point), -128, 127)
    return np.ascontiguousarray(q.astype(np.int8))


def _op_config(op: ClientOp) -> dict[str, Any]:
    """What the manifest (and the hash) say of an op. An FC layer's entry is the one every
    export had before conv layers (so FC exports keep their hash)."""
    if isinstance(op, FCLayer):
        return {
            "kind": "fc",
            "in": op.in_features,
            "out": op.out_features,
            "relu": op.relu,
            "in_scale": float(op.in_scale),
            "in_zp": op.in_zp,
            "out_scale": float(op.out_scale),
            "out_zp": op.out_zp,
        }
    d_in, d_out = op_dims(op)
    cfg: dict[str, Any] = {"kind": op_kind(op), "in": list(d_in), "out": list(d_out)}
    if isinstance(op, ConvLayer):
        cfg |= {
            "kernel": [op.kh, op.kw],
            "stride": [op.stride_h, op.stride_w],
            "padding": "same" if op.padding else "valid",
            "act": ("none", "relu", "relu6")[op.act],
            "in_scale": float(op.in_scale),
            "in_zp": op.in_zp,
            "out_scale": float(op.out_scale),
            "out_zp": op.out_zp,
        }
    elif isinstance(op, PoolOp):
        p = op.params
        cfg |= {
            "pool": [p.kh, p.kw],
            "stride": [p.stride_h, p.stride_w],
            "padding": "same" if p.padding else "valid",
            "scale": float(op.scale),
            "zp": op.zp,
        }
    else:
        assert isinstance(op, ReshapeOp)
        cfg |= {"scale": float(op.scale), "zp": op.zp}
    return cfg


# ---- reading an export back ----------------------------------------------------------------


@dataclass
class ClientState:
    """An export's client as the board boots with it: golden ops and the int8 data shard."""

    ops: list[ClientOp]
    x_train: npt.NDArray[np.int8]
    y_train: npt.NDArray[np.uint8]
    x_test: npt.NDArray[np.int8]
    y_test: npt.NDArray[np.uint8]
    noise: tuple[npt.NDArray[np.int16], int] | None = None  # board_noise(): (table, key)
    head: FCLayer | None = None  # U-shaped: the head as the board boots with it
    wire: int = 0  # --wire: core/protocol/wire.py bits

    @property
    def layers(self) -> list[Any]:
        """Every op whose state the board's state image holds, in its order: the ops, then the
        head of a U-shaped export."""
        return [*self.ops, self.head] if self.head is not None else list(self.ops)


def load_client_state(out_dir: Path) -> ClientState:
    """Rebuilds the golden model of an export's client (for tests and host-side simulation)."""
    import keras

    manifest = json.loads((Path(out_dir) / "manifest.json").read_text())
    with quiet():
        net = keras.models.load_model(Path(out_dir) / "full.keras", compile=False)
    ops = golden_ops(
        (Path(out_dir) / "client.tflite").read_bytes(), chain_layers(net)[: manifest["cut"]]
    )
    data = load_npz(Path(out_dir) / "data.npz")
    scale, zp = input_quant(ops[0])
    return ClientState(
        ops,
        quantize_input(data.x_train, scale, zp),
        data.y_train.astype(np.uint8),
        quantize_input(data.x_test, scale, zp),
        data.y_test.astype(np.uint8),
        board_noise(Path(out_dir)),
        _load_head(net, manifest),
        _wire_bits(manifest),
    )


def _wire_bits(manifest: dict[str, Any]) -> int:
    from tinysplit.core.protocol import wire as wire_codec

    return wire_codec.wire_bits(str(manifest.get("wire", "int8")))


def _load_head(net: keras.Model, manifest: dict[str, Any]) -> FCLayer | None:
    """A U-shaped export's head as export wrote it: from full.keras's last layer."""
    if manifest.get("labels", "host") != "client":
        return None
    return head_of(chain_layers(net)[-1])


def head_of(dense: keras.Layer) -> FCLayer:
    """The golden head of a Dense layer (core/golden/head.py's make_head)."""
    weights = [np.asarray(v, dtype=np.float32) for v in dense.get_weights()]
    bias = weights[1] if len(weights) > 1 else np.zeros(weights[0].shape[1], np.float32)
    return make_head(weights[0], bias)


def load_client_layout(out_dir: Path) -> tuple[list[ClientOp], OpLayout, MemoryPlan]:
    """An export's golden ops with the op layout and memory plan its model_data.c was written
    with, rebuilt by the exporter's own planning from the export's files."""
    out_dir = Path(out_dir)
    manifest = json.loads((out_dir / "manifest.json").read_text())
    saved = json.loads((out_dir / "plan.json").read_text())
    ops = load_client_state(out_dir).ops
    layout, plan = _plan(
        ops,
        input_size=manifest["input_size"],
        max_batch=manifest["max_batch"],
        stack_bytes=saved["stack_bytes"],
        ram_limit=saved["ram_limit"],
        flash_limit=saved["flash_limit"],
        n_train=manifest["n_train"],
        n_test=manifest["n_test"],
        head=(manifest["head"]["in"], manifest["head"]["out"]) if "head" in manifest else None,
        wire=_wire_bits(manifest),
    )
    return ops, layout, plan
