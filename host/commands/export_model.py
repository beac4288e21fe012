"""`tinysplit export-model RUN_DIR --out DIR`: the trained split model as one Keras model and
one full-integer int8 .tflite (for a board that runs the whole model alone)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from tinysplit.core.errors import BadInput

#: What export-model writes in --out (an --out holding only these is written over).
MODEL_FILES = ("model.keras", "model.tflite", "report.json")


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "export-model", help="join a trained run into one Keras model and one int8 .tflite"
    )
    p.add_argument("run_dir", type=Path, help="the run directory of a `tinysplit train`")
    p.add_argument("--out", type=Path, required=True, help="folder for model.keras, model.tflite")
    p.add_argument(
        "--model-dir", type=Path, help="the export the run trained (default: the run's record)"
    )
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")


def check_out(out: Path, inputs: tuple[Path, ...]) -> None:
    """Refuses an --out that is a file, lies in an input folder, or holds other files."""
    if out.exists() and not out.is_dir():
        raise BadInput(f"--out {out} is a file: give a folder for the model")
    for p in inputs:
        if out.resolve() == p.resolve() or p.resolve() in out.resolve().parents:
            raise BadInput(f"--out {out} is inside {p}, an input: choose another folder")
    if out.is_dir():
        others = sorted(f.name for f in out.iterdir() if f.name not in MODEL_FILES)
        if others:
            raise BadInput(
                f"--out {out} holds other files ({', '.join(others[:3])}): choose a new or "
                "empty folder"
            )


def run(args: argparse.Namespace) -> dict[str, Any]:
    from tinysplit.host.training.checkpoint import RunDir
    from tinysplit.host.training.session import Export

    ck, config = RunDir(args.run_dir).load()
    export = Export.load(args.model_dir or Path(config.model_dir))
    if config.model_hash != export.model_hash.hex():
        raise BadInput(
            f"{args.run_dir} trained the export with model hash {config.model_hash}, "
            f"{export.path} is {export.model_hash.hex()}: give the --model-dir it trained"
        )
    if config.sealed:
        raise BadInput(
            f"{args.run_dir} holds the client's state sealed by the board (an export made with "
            "--private): this host cannot read the weights to join"
        )
    if ck.client_state is None:
        raise BadInput(
            f"{args.run_dir} is a --private run: this host holds no client weights to join "
            "(read them from the board with a run without --private)"
        )
    out = Path(args.out)
    check_out(out, (export.path, Path(args.run_dir)))
    from tinysplit.host.serving.full_model import board_fit, export_full_model

    full = export_full_model(export.path, ck.client_state, ck.server_weights)
    fit = board_fit(full.tflite, export.manifest.get("board"))
    out.mkdir(parents=True, exist_ok=True)
    full.model.save(out / "model.keras")
    (out / "model.tflite").write_bytes(full.tflite)
    history = ck.progress.get("history") or []
    split = history[-1]["test_accuracy"] if history else None
    report = {
        "keras": str(out / "model.keras"),
        "tflite": str(out / "model.tflite"),
        "tflite_bytes": len(full.tflite),
        "split_accuracy": split,
        "keras_accuracy": full.keras_accuracy,
        "tflite_accuracy": full.tflite_accuracy,
        "step": ck.step,
        "board_fit": fit,
    }
    if not args.json:
        print(f"wrote {report['keras']} and {report['tflite']} ({len(full.tflite):,} bytes)")
        print(f"test accuracy: split model {split if split is None else f'{split:.4f}'}, "
              f"whole model float {full.keras_accuracy:.4f}, "
              f"int8 .tflite in TFLite Micro {full.tflite_accuracy:.4f}")  # fmt: skip
        print(_fit_line(fit))
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def _fit_line(fit: dict[str, Any]) -> str:
    """One line: does the whole model run alone on the export's board?"""
    what = (f"whole model alone: TFLite Micro arena {fit['arena_bytes']:,} B RAM, model "
            f"{fit['model_bytes']:,} B flash")  # fmt: skip
    if fit.get("board") is None:
        return what + " (the export names no board to check against)"
    verdict = "fits" if fit["fits"] else "does NOT fit"
    limits = f"RAM {fit['ram_bytes']:,} B, flash {fit['flash_bytes']:,} B"
    return f"{what}: {verdict} {fit['board']} ({limits}; TFLite Micro's code, stack not counted)"
