"""`tinysplit export MODEL --cut N --out DIR`: quantize the client layers, emit C + memory plan."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tinysplit.core.errors import BadInput
from tinysplit.host.commands.runs import RunOptions, say


def add_parser(sub: Any) -> None:
    p = sub.add_parser("export", help="quantize the client layers and emit C + memory plan")
    p.add_argument(
        "model", help="a saved Keras model (.keras) or a bundled model name (digits-mlp)"
    )
    p.add_argument("--cut", type=int, help="number of client layers (default: the model's)")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--data", type=Path, help="FILE.npz with x_train, y_train, x_test, y_test")
    p.add_argument("--seed", type=int, default=0, help="seed for the initial weights")
    add_noise_options(p)
    add_labels_option(p)
    add_insecure_option(p)
    p.add_argument(
        "--clients",
        type=int,
        default=1,
        help="several data holders: one export per client in OUT/client<k>, each with its own "
        "shard of the training set (default 1)",
    )
    p.add_argument(
        "--shards", default="iid", help="with --clients: iid (default), by-class, dirichlet:ALPHA"
    )
    p.add_argument(
        "--private",
        action="store_true",
        help="the board seals its state image (weights, master copies, ranges) with a key only "
        "this export holds: checkpoints keep it sealed, the host reads none of it",
    )
    add_ram_budget_option(p)
    add_wire_option(p)
    p.add_argument("--json", action="store_true", help="print the memory plan as JSON")


def add_wire_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--wire",
        default="int8",
        metavar="FORMAT",
        help="how smashed data and cut gradients travel: int8 (default), sparse (only the "
        "activations that are not zero, and their gradients: the same training, bit for bit), "
        "int4 (4-bit both ways), sparse-int4 (both). `tinysplit plan` prints the bytes of each",
    )


def add_ram_budget_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--ram-budget",
        type=int,
        metavar="BYTES",
        help="plan the client within this much RAM (below the board's): activations the "
        "backward needs are recomputed from the sample in flash instead of kept, largest first, "
        "until it fits",
    )


def add_insecure_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--insecure",
        action="store_true",
        help="no pairing key: the board talks in clear (a local cable only). By default export "
        "writes a key into the image and OUT/pairing.key, and every frame after HELLO is "
        "encrypted and authenticated (ChaCha20-Poly1305)",
    )


def add_labels_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--labels",
        choices=("host", "client"),
        default="host",
        help="where the labels and the loss are: host (default) or client (U-shaped: the "
        "model's last Dense runs on the board too, and no label or logit leaves it)",
    )


def add_noise_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--noise-scale",
        type=float,
        default=0.0,
        help="the board adds noise of this scale (a fraction of the cut's int8 range, e.g. "
        "0.05) to its smashed data before it leaves; 0 (default): none",
    )
    p.add_argument(
        "--noise", default="laplace", help="noise distribution: laplace (default) or gaussian"
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    from tinysplit.codegen.export import Noise, export_client

    opts = RunOptions(json=args.json)
    noise = Noise(args.noise, args.noise_scale) if args.noise_scale else None
    if noise is None and args.noise != "laplace":
        raise BadInput("--noise goes with --noise-scale S (> 0)")
    if args.clients != 1:
        return _export_clients(args, opts, noise)
    res = export_client(
        args.model,
        args.cut,
        args.out,
        data=args.data,
        seed=args.seed,
        noise=noise,
        private=args.private,
        labels=args.labels,
        insecure=args.insecure,
        ram_budget=args.ram_budget,
        wire=args.wire,
    )
    if args.insecure:
        say(opts, "--insecure: no pairing key; the board's link will be in clear")
    say(
        opts,
        f"exported {res.manifest['model']} (cut {res.manifest['cut']}) to {args.out}, "
        f"model hash {res.manifest['model_hash']}",
    )
    say(opts, res.plan.format_table())
    return res.plan.to_json()  # type: ignore[no-any-return]


def _export_clients(args: argparse.Namespace, opts: RunOptions, noise: Any) -> dict[str, Any]:
    from tinysplit.codegen.export import export_clients

    if args.ram_budget is not None:
        raise BadInput("--clients with --ram-budget is not supported yet: export one client")
    if noise is not None or args.private:
        raise BadInput(
            "--clients with --noise-scale or --private is not supported yet: the host averages "
            "and relays the client weights in clear"
        )
    results = export_clients(args.model, args.cut, args.out, args.clients, args.shards,
                             data=args.data, seed=args.seed, labels=args.labels,
                             insecure=args.insecure, wire=args.wire)  # fmt: skip
    for k, res in enumerate(results):
        say(opts, f"client {k}: {res.manifest['n_train']} training samples, model hash "
                  f"{res.manifest['model_hash']}, RAM {res.plan.ram_peak:,} B")  # fmt: skip
    say(opts, f"wrote {args.clients} client exports and federation.json into {args.out}")
    return {"clients": [res.plan.to_json() | {"n_train": res.manifest["n_train"]}
                        for res in results]}  # fmt: skip
