"""`tinysplit audit MODEL`: how much the smashed data gives away at each cut, and what the
board's noise buys (host/privacy/audit.py)."""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from tinysplit.core.errors import BadInput, TinysplitError

#: Noise scales `--noise-levels K` takes, in order (fractions of the cut's int8 range).
NOISE_LEVELS = (0.02, 0.05, 0.1, 0.2, 0.4)


def add_parser(sub: Any) -> None:
    p = sub.add_parser("audit", help="measure what the smashed data gives away, at each cut")
    p.add_argument("model", help="a saved Keras model (.keras) or a bundled model name")
    p.add_argument("--data", type=Path, help="FILE.npz (required for a .keras model)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--cut", type=int, help="the cut to audit (default: the model's)")
    which.add_argument("--all-cuts", action="store_true", help="every candidate cut")
    p.add_argument(
        "--noise-levels",
        type=int,
        default=0,
        help=f"also audit K noise levels on the board (first K of {NOISE_LEVELS}) at the first "
        "audited cut a board can train at, each with a split run for its accuracy",
    )
    p.add_argument(
        "--noise-scales",
        help="the noise scales to audit instead, comma-separated (e.g. 0.2,0.4,0.8)",
    )
    p.add_argument("--noise", default="laplace", help="laplace (default) or gaussian")
    p.add_argument(
        "--board",
        default="mps2_an386",
        help="where the noise levels' split runs train: mps2_an386 (QEMU, default), native, "
        "or none (no accuracy column)",
    )
    p.add_argument(
        "--leaked",
        type=int,
        help="pairs the --private attacker holds (default 256, at most half the training set)",
    )
    p.add_argument(
        "--epochs",
        type=int,
        help="train the float model this long first (default: a bundled model's epochs; 0 for "
        "your .keras, taken as trained)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("out/audit"), help="where the PNG goes")
    p.add_argument("--json", action="store_true", help="print the audit as one JSON object")


def _say(args: argparse.Namespace) -> Any:
    from tinysplit.host.commands.runs import RunOptions, say

    return lambda text: say(RunOptions(json=args.json), text)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from tinysplit.codegen.export import Noise
    from tinysplit.codegen.models import REGISTRY
    from tinysplit.host.privacy.audit import audit
    from tinysplit.host.privacy.report import format_table, noise_row, plot_grid

    if not 0 <= args.noise_levels <= len(NOISE_LEVELS):
        raise BadInput(f"--noise-levels must be 0..{len(NOISE_LEVELS)}")
    if args.board not in ("none", "native") and not args.board.startswith("mps"):
        raise BadInput("--board: mps2_an386 (QEMU), native, or none")
    levels = NOISE_LEVELS[: args.noise_levels]
    if args.noise_scales:
        try:
            levels = tuple(float(v) for v in args.noise_scales.split(","))
        except ValueError:
            raise BadInput(
                f"--noise-scales {args.noise_scales}: give numbers like 0.2,0.4"
            ) from None
    for scale in levels or (0.0,):
        Noise(args.noise, scale).check()
    if args.out.exists() and not args.out.is_dir():
        raise BadInput(f"--out {args.out} is a file: give a folder for the picture")
    cut = args.cut
    if cut is None and not args.all_cuts:
        spec = REGISTRY.get(args.model)
        if spec is None:
            raise BadInput("give --cut N or --all-cuts for your own model")
        cut = spec.default_cut
    say = _say(args)
    result = audit(
        args.model,
        data=args.data,
        cuts=None if args.all_cuts else [cut],
        epochs=args.epochs,
        leaked=args.leaked,
        noise_scales=(0.0, *levels),
        noise_kind=args.noise,
        seed=args.seed,
        say=say,
    )
    name = Path(args.model).stem if args.model.endswith(".keras") else args.model
    saved = args.out / f"audit-{name}.json"
    args.out.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(result.to_json(), indent=2) + "\n")  # before the long runs
    rows = []
    if levels:
        noisy = [c.cut for c in result.cuts if c.noise_scale > 0]
        first = noisy[0] if noisy else result.cuts[0].cut  # the noise levels are audited there
        accuracy = _noise_accuracies(args, [first], levels, say)
        for c in result.cuts:
            if c.cut == first:
                clean = accuracy.get((c.cut, 0.0))
                rows.append(noise_row(c, accuracy.get((c.cut, c.noise_scale)), clean))
    png = plot_grid(result, args.out / f"audit-{name}.png")
    if not args.json:
        print(format_table(result, rows))
        print(f"originals and reconstructions: {png}")
    out = result.to_json()
    out["png"] = str(png)
    if rows:
        out["noise"] = rows
    saved.write_text(json.dumps(out, indent=2) + "\n")
    if not args.json:
        print(f"the audit as JSON: {saved} (`tinysplit plan {args.model} --audit {saved}`)")
    return out


def _noise_accuracies(
    args: argparse.Namespace, cuts: list[int], levels: tuple[float, ...], say: Any
) -> dict[tuple[int, float], float | None]:
    """Split-run test accuracy per (cut, noise scale), on the chosen board."""
    from tinysplit.host.cli import build_parser
    from tinysplit.host.commands import demo

    out: dict[tuple[int, float], float | None] = {}
    if args.board == "none":
        return out
    with tempfile.TemporaryDirectory() as tmp:
        for cut in cuts:
            for scale in (0.0, *levels):
                say(f"cut {cut}: noise {scale:g}: split training on {args.board} ...")
                own = args.model.endswith(".keras")
                which = ["--model", args.model, "--data", str(args.data)] if own else [
                    "--workload", args.model]  # fmt: skip
                argv = ["demo", *which, "--cut", str(cut), "--board", args.board, "--out",
                        str(Path(tmp) / f"c{cut}-n{scale}"), "--json", "--no-baseline",
                        "--seed", str(args.seed), "--noise", args.noise,
                        "--noise-scale", str(scale)]  # fmt: skip
                try:
                    summary = demo.run(build_parser().parse_args(argv))
                except TinysplitError as exc:  # the audit stands without this accuracy
                    say(f"cut {cut}: noise {scale:g}: no split run: {exc}")
                    out[(cut, scale)] = None
                    continue
                out[(cut, scale)] = float(summary["split_accuracy"])
                say(f"cut {cut}: noise {scale:g}: split accuracy {out[(cut, scale)]:.4f}")
    return out
