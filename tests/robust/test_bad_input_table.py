"""Careless and hostile input, table-driven, across every subcommand: each case must end with
exit status 2, exactly one stderr line `error: ...` that says what to do (its needles), and no
change to any input, export, checkpoint or run folder. The CLI runs with TensorFlow's oneDNN
path on, so that a TensorFlow or absl log line would break the one-line rule on any CPU."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from robust_support import assert_one_line_error, interrupt_at

from tinysplit.host import cli


@dataclass(frozen=True)
class World:
    """What the cases point at: an export, a stopped run of it, a user's model and data."""

    tmp: Path
    export: Path  # digits-mlp
    run: Path  # a run of `export`, stopped after a few steps (resumable)
    keras: Path  # a small Dense model of 16 features
    npz: Path  # its data
    lstm: Path  # a model with an LSTM layer


@dataclass(frozen=True)
class Case:
    name: str
    argv: Callable[[World], list[str]]
    needles: tuple[str, ...]
    setup: Callable[[World], None] | None = None


def _tree_digest(*roots: Path) -> dict[str, str]:
    out = {}
    for root in roots:
        for p in sorted(root.rglob("*")) if root.is_dir() else [root]:
            if p.is_file():
                out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}
    env["TF_ENABLE_ONEDNN_OPTS"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "tinysplit.host.cli", *args],
        capture_output=True, text=True, timeout=timeout, check=False, env=env,
    )  # fmt: skip


@pytest.fixture(scope="module")
def world(digits_export: Path, tmp_path_factory: pytest.TempPathFactory) -> World:
    import keras

    tmp = tmp_path_factory.mktemp("bad-input")
    export = tmp / "export"
    shutil.copytree(digits_export, export)
    run = tmp / "run"  # stopped with Ctrl-C after a checkpoint: resumable
    watcher = interrupt_at(run, 2)
    assert cli.main(["train", "--board", "native", "--model-dir", str(export), "--run-dir",
                     str(run), "--checkpoint-every", "2", "--no-baseline"]) == 130  # fmt: skip
    watcher.join()
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((16,)), keras.layers.Dense(8, activation="relu"),
                          keras.layers.Dense(3)])  # fmt: skip
    m.save(tmp / "user.keras")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 16)).astype(np.float32)
    y = rng.integers(0, 3, 80)
    np.savez(tmp / "user.npz", x_train=x[:60], y_train=y[:60], x_test=x[60:], y_test=y[60:])
    lstm = keras.Sequential([keras.Input((10, 4)), keras.layers.LSTM(8), keras.layers.Dense(3)])
    lstm.save(tmp / "lstm.keras")
    huge = keras.Sequential([keras.Input((16,)), keras.layers.Dense(30000), keras.layers.Dense(3)])
    huge.save(tmp / "huge.keras")  # 1.9 MB of float32 master weights: no board's flash
    return World(tmp, export, run, tmp / "user.keras", tmp / "user.npz", tmp / "lstm.keras")


def _npz(w: World, name: str, x_train: np.ndarray) -> str:
    path = w.tmp / name
    if not path.exists():
        x = x_train.astype(np.float32)
        y = np.zeros(len(x), np.int64)
        np.savez(path, x_train=x, y_train=y, x_test=x[:10], y_test=y[:10])
    return str(path)


def _corrupt(w: World) -> Path:
    path = w.tmp / "corrupt.keras"
    path.write_bytes(b"PK\x03\x04 this is not a zip archive at all")
    return path


def _export_without(w: World, name: str) -> Path:
    d = w.tmp / f"export-without-{name}"
    if not d.exists():
        shutil.copytree(w.export, d)
        (d / name).unlink()
    return d


def _export_with_manifest(w: World, key: str, value: object) -> str:
    d = w.tmp / f"export-bad-{key}"
    if not d.exists():
        shutil.copytree(w.export, d)
        m = json.loads((d / "manifest.json").read_text())
        m[key] = value
        (d / "manifest.json").write_text(json.dumps(m))
    return str(d)


def _edited(w: World, name: str, edit: Callable[[str], str]) -> str:
    """A copy of the export with one file edited by hand after export."""
    d = w.tmp / f"export-edited-{name}"
    if not d.exists():
        shutil.copytree(w.export, d)
        (d / name).write_text(edit((d / name).read_text()))
    return str(d)


def _with_key(w: World, tag: str, text: str) -> str:
    """A copy of the export whose pairing.key holds `text` (the board keeps its own key)."""
    d = w.tmp / f"export-key-{tag}"
    if not d.exists():
        shutil.copytree(w.export, d)
        (d / "pairing.key").write_text(text)
    return str(d)


def _bump_weight(c: str) -> str:
    i = c.index("ts_l0_master_w[") if "ts_l0_master_w[" in c else c.index("master_w[")
    j = c.index("= {", i) + len("= {\n    ")
    return c[:j] + "9.5f, " + c[j:].split(",", 1)[1].lstrip()


def _smaller_stack(plan: str) -> str:
    return plan.replace('"stack_bytes": 4096', '"stack_bytes": 2048')


def _fewer_tests(manifest: str) -> str:
    return manifest.replace('"n_test": 450', '"n_test": 400')


def _folder_with(w: World, name: str, *files: str) -> Path:
    d = w.tmp / name
    d.mkdir(exist_ok=True)
    for f in files:
        (d / f).write_text("mine\n")
    return d


def _file(w: World, name: str) -> Path:
    path = w.tmp / name
    path.write_text("a file\n")
    return path


def _train(w: World, *extra: str) -> list[str]:
    return ["train", "--board", "native", "--model-dir", str(w.export),
            "--run-dir", str(w.tmp / "new-run"), "--no-baseline", *extra]  # fmt: skip


def _on_port(w: World, port: str) -> list[str]:
    return ["train", "--model-dir", str(w.export), "--port", port, "--run-dir",
            str(w.tmp / "new-run"), "--no-baseline"]  # fmt: skip


E = "export"
CASES = [
    # ---- export ----
    Case("export-model-missing", lambda w: [E, str(w.tmp / "nope.keras"), "--out",
                                            str(w.tmp / "o1")],
         ("nope.keras", "does not exist")),
    Case("export-model-corrupt", lambda w: [E, str(_corrupt(w)), "--cut", "1", "--data", str(w.npz),
                                            "--out", str(w.tmp / "o2")],
         ("corrupt.keras", "not a Keras model")),
    Case("export-unknown-bundled", lambda w: [E, "no-such-model", "--out", str(w.tmp / "o3")],
         ("no-such-model", "digits-mlp")),
    Case("export-out-is-a-file", lambda w: [E, "digits-mlp", "--out", str(_file(w, "out.txt"))],
         ("is a file",)),
    Case("export-out-under-a-file", lambda w: [E, "digits-mlp", "--out",
                                               str(_file(w, "plain") / "sub")],
         ("a file", "folder")),
    Case("export-out-holds-the-model", lambda w: [E, str(w.keras), "--cut", "1", "--data",
                                                  str(w.npz), "--out", str(w.tmp)],
         ("holds the input", "another --out")),
    Case("export-out-foreign-folder", lambda w: [E, "digits-mlp", "--out",
                                                 str(_folder_with(w, "mine", "notes.txt"))],
         ("not a tinysplit export", "notes.txt")),
    Case("export-cut-zero", lambda w: [E, str(w.keras), "--cut", "0", "--data", str(w.npz),
                                       "--out", str(w.tmp / "o4")],
         ("cut 0", "1..1")),
    Case("export-cut-too-deep", lambda w: [E, str(w.keras), "--cut", "9", "--data", str(w.npz),
                                           "--out", str(w.tmp / "o5")],
         ("cut 9", "1..1")),
    Case("export-data-missing", lambda w: [E, str(w.keras), "--cut", "1", "--data",
                                           str(w.tmp / "none.npz"), "--out", str(w.tmp / "o6")],
         ("none.npz", "does not exist")),
    Case("export-data-is-a-folder", lambda w: [E, str(w.keras), "--cut", "1", "--data",
                                               str(_folder_with(w, "adir")), "--out",
                                               str(w.tmp / "o7")],
         ("adir", "is a folder")),
    Case("export-data-wrong-features", lambda w: [E, str(w.keras), "--cut", "1", "--data",
                                                  _npz(w, "f9.npz", np.zeros((40, 9))),
                                                  "--out", str(w.tmp / "o8")],
         ("9 features", "16")),
    Case("export-data-huge-features", lambda w: [E, str(w.keras), "--cut", "1", "--data",
                                                 _npz(w, "big.npz", np.full((40, 16), 1e30)),
                                                 "--out", str(w.tmp / "o9")],
         ("1e+30", "scale the features")),
    Case("export-data-nan", lambda w: [E, str(w.keras), "--cut", "1", "--data",
                                       _npz(w, "nan.npz", np.full((40, 16), np.nan)),
                                       "--out", str(w.tmp / "o10")],
         ("NaN", "x_train")),
    Case("export-lstm", lambda w: [E, str(w.lstm), "--cut", "1", "--data", str(w.npz),
                                   "--out", str(w.tmp / "o11")],
         ("LSTM",)),
    # ---- train ----
    Case("train-no-model-dir", lambda w: ["train", "--board", "native", "--model-dir",
                                          str(w.tmp / "nothing")],
         ("nothing", "tinysplit export")),
    Case("train-not-an-export", lambda w: ["train", "--board", "native", "--model-dir",
                                           str(_folder_with(w, "empty-dir"))],
         ("manifest.json", "tinysplit export")),
    Case("train-export-without-server", lambda w: ["train", "--board", "native", "--model-dir",
                                                   str(_export_without(w, "server.keras"))],
         ("server.keras", "export again")),
    Case("train-manifest-wrong-type", lambda w: ["train", "--board", "native", "--model-dir",
                                                 _export_with_manifest(w, "max_batch", "lots")],
         ("max_batch", "export again")),
    Case("train-edited-weights", lambda w: ["train", "--board", "native", "--model-dir",
                                            _edited(w, "model_data.c", _bump_weight)],
         ("model_data.c", "export again")),
    Case("train-edited-plan", lambda w: ["train", "--board", "native", "--model-dir",
                                         _edited(w, "plan.json", _smaller_stack)],
         ("plan.json", "export again")),
    Case("train-edited-manifest", lambda w: ["train", "--board", "native", "--model-dir",
                                             _edited(w, "manifest.json", _fewer_tests)],
         ("manifest.json", "export again")),
    Case("train-pairing-key-missing", lambda w: ["train", "--board", "native", "--model-dir",
                                                 str(_export_without(w, "pairing.key")),
                                                 "--run-dir", str(w.tmp / "new-run")],
         ("pairing.key", "is missing")),
    Case("train-pairing-key-garbage", lambda w: ["train", "--board", "native", "--model-dir",
                                                 _with_key(w, "garbage", "zz\n"),
                                                 "--run-dir", str(w.tmp / "new-run")],
         ("pairing.key", "not a pairing key")),
    Case("train-pairing-key-another", lambda w: ["train", "--board", "native", "--model-dir",
                                                 _with_key(w, "another", "ab" * 32 + "\n"),
                                                 "--run-dir", str(w.tmp / "new-run")],
         ("refused the pairing key", "another export")),
    Case("train-lr-huge", lambda w: _train(w, "--lr", "1e9"), ("--lr",)),
    Case("train-lr-inf", lambda w: _train(w, "--lr", "inf"), ("--lr",)),
    Case("train-lr-negative", lambda w: _train(w, "--lr", "-0.1"), ("--lr",)),
    Case("train-epochs-zero", lambda w: _train(w, "--epochs", "0"), ("--epochs",)),
    Case("train-batch-too-big", lambda w: _train(w, "--batch", "999"), ("--batch 999", "1..32")),
    Case("train-max-steps-negative", lambda w: _train(w, "--max-steps", "-5"), ("--max-steps",)),
    Case("train-plot-in-missing-folder", lambda w: _train(w, "--plot", str(w.tmp / "no" / "p.png")),
         ("--plot", "no")),
    Case("train-plot-is-a-folder", lambda w: _train(w, "--plot", str(w.tmp)), ("--plot",)),
    Case("train-data-other-features", lambda w: _train(w, "--data", str(w.npz)),
         ("16 features", "64")),
    Case("train-data-missing", lambda w: _train(w, "--data", str(w.tmp / "gone.npz")),
         ("gone.npz", "does not exist")),
    Case("train-run-dir-is-a-file", lambda w: ["train", "--board", "native", "--model-dir",
                                               str(w.export), "--run-dir",
                                               str(_file(w, "runfile")), "--no-baseline"],
         ("runfile", "is a file")),
    Case("train-port-regular-file", lambda w: _on_port(w, str(_file(w, "ttyFILE"))),
         ("ttyFILE", "not a serial port")),
    Case("train-checkpoint-every-zero", lambda w: _train(w, "--checkpoint-every", "0"),
         ("--checkpoint-every",)),
    Case("train-silence-timeout-zero", lambda w: _train(w, "--silence-timeout", "0"),
         ("--silence-timeout",)),
    Case("train-unknown-board", lambda w: ["train", "--board", "nope", "--model-dir",
                                           str(w.export)],
         ("nope", "native")),
    Case("resume-missing", lambda w: ["train", "--resume", str(w.tmp / "no-run")],
         ("no-run",)),
    Case("resume-other-batch", lambda w: ["train", "--resume", str(w.run), "--batch", "8"],
         ("--batch 8", "resume without --batch")),
    Case("resume-bad-lr", lambda w: ["train", "--resume", str(w.run), "--lr", "inf"],
         ("--lr",)),
    # ---- plan, soak, simulate, build, check, size ----
    Case("plan-unknown-model", lambda w: ["plan", "no-such-model", "--board", "mps2_an386"],
         ("no-such-model",)),
    Case("plan-model-fits-no-board", lambda w: ["plan", str(w.tmp / "huge.keras"), "--board",
                                                "mps2_an386", "--data", str(w.npz)],
         ("short", "cut the model earlier")),
    Case("plan-unknown-board", lambda w: ["plan", "digits-mlp", "--board", "nope"],
         ("nope",)),
    Case("plan-plot-is-a-folder", lambda w: ["plan", "digits-mlp", "--board", "mps2_an386",
                                             "--plot", str(w.tmp)],
         ("--plot",)),
    Case("soak-fault-rate-above-one", lambda w: ["soak", "--fault-rate", "2", "--model-dir",
                                                 str(w.export)],
         ("--fault-rate 2", "0..1")),
    Case("soak-reset-rate-negative", lambda w: ["soak", "--reset-rate", "-1", "--model-dir",
                                                str(w.export)],
         ("--reset-rate",)),
    Case("soak-seconds-zero", lambda w: ["soak", "--seconds", "0", "--model-dir", str(w.export)],
         ("--seconds",)),
    Case("simulate-missing-export", lambda w: ["simulate", "--model-dir", str(w.tmp / "nix")],
         ("nix",)),
    Case("simulate-plot-in-missing-folder", lambda w: ["simulate", "--model-dir", str(w.export),
                                                       "--plot", str(w.tmp / "no" / "s.png")],
         ("--plot",)),
    Case("build-unknown-board", lambda w: ["build", "--board", "nope", str(w.export)],
         ("nope",)),
    Case("check-not-an-export", lambda w: ["check", str(_folder_with(w, "empty2"))],
         ("manifest.json",)),
    Case("size-unknown-board", lambda w: ["size", "--board", "nope", "--model-dir",
                                          str(w.export)],
         ("nope",)),
    # ---- export --noise, infer, export-model, audit ----
    Case("export-noise-scale-negative", lambda w: [E, "digits-mlp", "--noise-scale", "-1",
                                                   "--out", str(w.tmp / "o9")],
         ("--noise-scale -1", "0.05")),
    Case("export-noise-kind-unknown", lambda w: [E, "digits-mlp", "--noise-scale", "0.1",
                                                 "--noise", "cauchy", "--out", str(w.tmp / "o10")],
         ("--noise cauchy", "laplace")),
    Case("infer-not-a-run", lambda w: ["infer", "--board", "native", "--model-dir", str(w.export),
                                       "--run", str(_folder_with(w, "norun"))],
         ("no tinysplit checkpoint", "--run-dir")),
    Case("infer-samples-zero", lambda w: ["infer", "--board", "native", "--model-dir",
                                          str(w.export), "--run", str(w.run), "--samples", "0"],
         ("--samples", "1..")),
    Case("exportmodel-out-is-a-file", lambda w: ["export-model", str(w.run), "--out",
                                                 str(_file(w, "model.txt"))],
         ("is a file", "folder")),
    Case("exportmodel-out-inside-the-run", lambda w: ["export-model", str(w.run), "--out",
                                                      str(w.run / "model")],
         ("inside", "another folder")),
    Case("audit-cut-not-a-candidate", lambda w: ["audit", "digits-mlp", "--cut", "7", "--epochs",
                                                 "0", "--out", str(w.tmp / "a1")],
         ("not a candidate cut", "1, 2")),
    Case("audit-noise-scales-not-numbers", lambda w: ["audit", "digits-mlp", "--noise-scales",
                                                      "0.2,lots", "--out", str(w.tmp / "a3")],
         ("--noise-scales", "0.2,0.4")),
    Case("audit-too-many-noise-levels", lambda w: ["audit", "digits-mlp", "--noise-levels", "9",
                                                   "--out", str(w.tmp / "a2")],
         ("--noise-levels", "0..")),
    Case("export-labels-client-no-server-layer", lambda w: [E, "digits-mlp", "--cut", "2",
                                                            "--labels", "client", "--out",
                                                            str(w.tmp / "u1")],
         ("--labels client", "cut earlier")),
    Case("export-clients-zero", lambda w: [E, "digits-mlp", "--clients", "0", "--out",
                                           str(w.tmp / "f1")],
         ("--clients 0", "give 1..")),
    Case("export-shards-unknown", lambda w: [E, "digits-mlp", "--clients", "2", "--shards",
                                             "sideways", "--out", str(w.tmp / "f2")],
         ("--shards sideways", "by-class")),
    Case("export-shards-dirichlet-negative", lambda w: [E, "digits-mlp", "--clients", "2",
                                                        "--shards", "dirichlet:-1", "--out",
                                                        str(w.tmp / "f3")],
         ("dirichlet:ALPHA", "ALPHA > 0")),
    Case("demo-schedule-unknown", lambda w: ["demo", "--clients", "2", "--schedule", "sideways",
                                             "--board", "native", "--out", str(w.tmp / "f4")],
         ("--schedule sideways", "splitfed")),
    Case("demo-clients-private", lambda w: ["demo", "--clients", "2", "--private", "--board",
                                            "native", "--out", str(w.tmp / "f5")],
         ("--private", "--clients")),
    Case("export-ram-budget-zero", lambda w: [E, "digits-mlp", "--ram-budget", "0", "--out",
                                              str(w.tmp / "r1")],
         ("--ram-budget 0", "> 0")),
    Case("export-ram-budget-too-small", lambda w: [E, "digits-mlp", "--ram-budget", "1000",
                                                   "--out", str(w.tmp / "r2")],
         ("--ram-budget 1,000", "needs at least", "cut earlier")),
    Case("export-ram-budget-with-clients", lambda w: [E, "digits-mlp", "--clients", "2",
                                                      "--ram-budget", "40000", "--out",
                                                      str(w.tmp / "r3")],
         ("--ram-budget", "--clients")),
    Case("plan-ram-budget-negative", lambda w: ["plan", "digits-mlp", "--board", "mps2_an386",
                                                "--ram-budget", "-5"],
         ("--ram-budget -5", "> 0")),
    Case("export-wire-unknown", lambda w: [E, "digits-mlp", "--wire", "int2", "--out",
                                           str(w.tmp / "w1")],
         ("--wire: unknown wire format 'int2'", "sparse-g4")),
    Case("export-wire-sparse-with-noise", lambda w: [E, "digits-mlp", "--wire", "sparse",
                                                     "--noise-scale", "0.05", "--out",
                                                     str(w.tmp / "w2")],
         ("--wire sparse", "--noise")),
    Case("plan-wire-unknown", lambda w: ["plan", "digits-mlp", "--board", "mps2_an386", "--wire",
                                         "8bit"],
         ("--wire: unknown wire format '8bit'", "int8")),
    Case("train-several-ports-one-export", lambda w: ["train", "--model-dir", str(w.export),
                                                      "--port", "/dev/null", "--port",
                                                      "/dev/null"],
         ("several --port", "--clients")),
]  # fmt: skip


def test_the_table_is_wide() -> None:
    assert len(CASES) >= 40
    assert len({c.name for c in CASES}) == len(CASES)
    commands = {c.name.split("-")[0] for c in CASES}
    assert {"export", "train", "resume", "plan", "soak", "simulate", "build", "check",
            "size", "infer", "exportmodel", "audit"} <= commands  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(world: World, case: Case) -> None:
    argv = case.argv(world)  # may create the bad file/folder the case needs
    protected = [world.export, world.run, world.keras, world.npz, world.lstm]
    before = _tree_digest(*protected)
    out = _cli(*argv)
    created = (world.tmp / "new-run").exists()
    shutil.rmtree(world.tmp / "new-run", ignore_errors=True)  # the next case starts clean
    assert_one_line_error(out, *case.needles)
    assert _tree_digest(*protected) == before, "an input, export or run folder changed"
    assert not created, "a run folder was created for a refused run"
