"""Several data holders from the command line: `tinysplit demo --clients K` (and the pieces it
shares with `tinysplit train` on a federation export)."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from tinysplit.core.errors import BadInput
from tinysplit.host.commands.runs import RunOptions, hyper, say
from tinysplit.host.training.session import Export, board_url


def add_federation_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--clients", type=int, default=1, help="data holders, each with its own board (default 1)"
    )
    p.add_argument(
        "--shards",
        default="iid",
        help="how the training set is dealt: iid (default), by-class, dirichlet:ALPHA",
    )
    add_schedule_options(p)


def federation_exports(folder: Path) -> list[Export]:
    """The client exports of a `--clients K` export folder, in client order."""
    index_path = folder / "federation.json"
    try:
        index = json.loads(index_path.read_text())
        dirs = [folder / e["dir"] for e in index["exports"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BadInput(f"{folder} is not a --clients export ({index_path}: {exc})") from None
    return [Export.load(d) for d in dirs]


def template(export: Export) -> list[Any]:
    """The golden client layers of an export, the U-shaped head last."""
    from tinysplit.codegen.export import load_client_state

    return load_client_state(export.path).layers


@contextlib.contextmanager
def local_links(board: str, exports: Sequence[Export], opts: RunOptions) -> Iterator[list[Any]]:
    """K local boards (native or emulated), booted and greeted, one per export."""
    from tinysplit.host.commands.runs import timeouts
    from tinysplit.host.training.session import connect

    with contextlib.ExitStack() as stack:
        links = []
        for e in exports:
            url = stack.enter_context(board_url(board, e))
            link, _ = stack.enter_context(connect(url, e, timeouts=timeouts(opts)))
            links.append(link)
        yield links


def reconnect_same(link: Any, export: Export) -> Callable[[], Any]:
    """A dropped board asked again on its own port (a board that rebooted on the same cable)."""

    def again() -> Any:
        link.hello(export.model_hash)
        return link

    return again


def run_federation(
    args: argparse.Namespace, opts: RunOptions, model: str | Path, out: Path
) -> dict[str, Any]:
    from tinysplit.codegen.export import export_clients

    check_schedule(args)
    if opts.private:
        raise BadInput(
            "--private with --clients: the host averages and relays the client weights, so "
            "they cannot be sealed; drop --private (or train one board)"
        )
    seed = opts.seed if opts.seed is not None else 0
    say(opts, f"[1/4] exporting {args.clients} clients of {model} ({args.shards} shards) ...")
    export_clients(model, args.cut, out / "export", args.clients, args.shards, data=opts.data,
                   seed=seed, board=args.board, labels=args.labels,
                   insecure=args.insecure, wire=getattr(args, "wire", "int8"))  # fmt: skip
    exports = federation_exports(out / "export")
    say(opts, f"[2/4] building and booting {args.clients} x {args.board} ...")
    with local_links(args.board, exports, opts) as links:
        say(opts, f"[3/4] {args.schedule} training on {args.clients} boards ...")
        summary = train_federation(args, opts, exports, links, args.board)
    say(opts, "[4/4] one board with all the clients' data, and the centralized baseline ...")
    summary.update(_one_board(model, args, opts, out, hyper(opts, exports[0]), exports))
    return summary


def train_federation(
    args: argparse.Namespace, opts: RunOptions, exports: Sequence[Export], links: Sequence[Any],
    board: str, run: Any = None, resume: Any = None,
) -> dict[str, Any]:  # fmt: skip
    """Trains the clients of a federation export on their links; the run's summary. run: a
    RunDir that takes a checkpoint at every epoch's end; resume: (Checkpoint, RunConfig) of such
    a run to go on from."""
    from tinysplit.host.training.checkpoint import restore_server
    from tinysplit.host.training.federation import Member, federated_train
    from tinysplit.host.training.schedule import Schedule
    from tinysplit.host.training.server import ServerSegment

    cfg = hyper(opts, exports[0])
    server = ServerSegment.load(exports[0].path / "server.keras", cfg.lr)
    start = None
    if resume is not None:
        ck, _ = resume
        restore_server(server, ck.server_weights, ck.optimizer)
        start = _fed_checkpoint(ck)
    members = [
        Member(k, link, Schedule(link.n_train, cfg.batch, cfg.epochs, cfg.seed + k),
               reconnect_same(link, e))
        for k, (link, e) in enumerate(zip(links, exports, strict=True))
    ]  # fmt: skip
    result = federated_train(
        members, server, cfg, template(exports[0]), schedule=args.schedule,
        average_every=args.average_every, say=lambda t: say(opts, t),
        keep=None if run is None else _keeper(run, server, args, cfg, exports, board),
        resume=start,
    )  # fmt: skip
    refused = _refusals(links)
    return {
        "run_dir": None if run is None else str(run.path),
        "board": board,
        "clients": len(exports),
        "shards": exports[0].manifest.get("federation", {}).get("shards"),
        "schedule": args.schedule,
        "labels": exports[0].manifest.get("labels", "host"),
        "split_accuracy": result.test_accuracy,
        "epochs": cfg.epochs,
        "batch": cfg.batch,
        "lr": cfg.lr,
        "rounds" if args.schedule == "splitfed" else "steps": result.steps,
        "samples": result.samples,
        "samples_per_s": result.samples_per_s,
        "train_seconds": result.train_seconds,
        "host_server_cpu_s_per_sample": result.server_seconds / max(result.samples, 1),
        "averages": result.averages,
        "events": [vars(e) for e in result.events],
        "history": [vars(h) for h in result.history],
        "client_samples": [e.manifest["n_train"] for e in exports],
        "link_host": [link.stats.as_dict() for link in links],
        "links_sealed": [link.sealed is not None for link in links],
        "refused_frames": refused,
    }


def _refusals(links: Sequence[Any]) -> list[dict[str, int]]:
    """Per client, the frames its board and this host refused as forged, replayed or unsealed
    (one line on stderr for each client with any); {} for a board that cannot answer now."""
    from tqdm import tqdm

    from tinysplit.core.errors import TinysplitError
    from tinysplit.host.transport.link import REFUSALS, refusal_line

    out = []
    for k, link in enumerate(links):
        try:
            board = link.board_stats()
        except TinysplitError:
            board = {}
        line = refusal_line(link.stats.as_dict(), board)
        if line:
            tqdm.write(f"client {k}: {line}", file=sys.stderr)
        host = link.stats.as_dict()
        out.append(
            {
                f"{side}_{key}": int(stats.get(key, 0))
                for side, stats in (("board", board), ("host", host))
                for key in REFUSALS
            }
        )
    return out


def _keeper(
    run: Any, server: Any, args: argparse.Namespace, cfg: Any, exports: Sequence[Export],
    board: str,
) -> Callable[[Any], None]:  # fmt: skip
    """Saves a federation checkpoint (the client state every board holds, the server segment)
    in run (a RunDir) at each epoch's end."""
    import numpy as np

    from tinysplit.host.training.checkpoint import Checkpoint, RunConfig, capture_server

    config = RunConfig(
        model=str(exports[0].manifest.get("model", "?")),
        model_hash=exports[0].model_hash.hex(), model_dir=str(Path(exports[0].path).parent),
        epochs=cfg.epochs, batch=cfg.batch, lr=cfg.lr, seed=cfg.seed, max_steps=None,
        checkpoint_every=0, private=False, board=board,
        extra={"federation": {"clients": len(exports), "schedule": args.schedule,
                              "average_every": args.average_every}},
    )  # fmt: skip

    def keep(fc: Any) -> None:
        weights, optimizer = capture_server(server)
        run.save(
            Checkpoint(
                step=fc.step, progress={"epoch": fc.epoch, "federation": fc.progress},
                server_weights=weights, optimizer=optimizer, client_crc=0,
                client_state=fc.image, weights_size=0, order=np.zeros(0, np.int64),
                finished=fc.epoch == cfg.epochs,
            ),
            config,
        )  # fmt: skip

    return keep


def _fed_checkpoint(ck: Any) -> Any:
    from tinysplit.host.training.federation import FedCheckpoint

    fed = ck.progress.get("federation")
    if fed is None or ck.client_state is None:
        raise BadInput("that run is not a run of several clients: resume it without --clients")
    return FedCheckpoint(int(ck.progress["epoch"]), ck.step, ck.client_state, fed)


def add_schedule_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--schedule",
        default="splitfed",
        help="several clients: splitfed (default: all boards at once, client weights averaged) "
        "or sequential (boards take turns, weights relayed)",
    )
    p.add_argument(
        "--average-every",
        type=int,
        default=1,
        help="splitfed: average the client weights every R rounds (default 1)",
    )


def check_schedule(args: argparse.Namespace) -> None:
    """--schedule and --average-every, before anything is exported or booted."""
    from tinysplit.host.training.federation import SCHEDULES

    if args.schedule not in SCHEDULES:
        raise BadInput(f"--schedule {args.schedule}: choose one of {', '.join(SCHEDULES)}")
    if args.average_every < 1:
        raise BadInput(f"--average-every {args.average_every}: give at least 1 round")


def train_command(args: argparse.Namespace, ports: Sequence[str]) -> dict[str, Any]:
    """`tinysplit train --model-dir FEDERATION (--port URL ... | --board B) [--run-dir D]`,
    or `--resume D` of such a run (the same --model-dir, and --port or --board)."""
    from tinysplit.host.commands.runs import new_run_dir, timeouts
    from tinysplit.host.training.checkpoint import RunDir
    from tinysplit.host.training.session import connect

    check_schedule(args)
    opts = RunOptions.from_args(args)
    exports = federation_exports(args.model_dir)
    if ports and len(ports) != len(exports):
        raise BadInput(
            f"{args.model_dir} has {len(exports)} clients: give one --port per client, in "
            f"client order ({len(ports)} given)"
        )
    if not ports and not args.board:
        raise BadInput("train a --clients export with one --port per client, or --board BOARD")
    resume = None
    run: RunDir | None = None
    if args.resume is not None:
        run = RunDir(args.resume)
        resume = run.load(previous=args.previous)
        ck, config = resume
        if config.model_hash != exports[0].model_hash.hex():
            raise BadInput(f"{args.resume} is a run of another export than {args.model_dir}")
        if ck.finished:
            raise BadInput(f"{args.resume} finished: nothing to resume")
        fed = config.extra.get("federation", {})
        args.schedule = fed.get("schedule", args.schedule)
        args.average_every = fed.get("average_every", args.average_every)
        opts.epochs, opts.batch, opts.lr, opts.seed = (config.epochs, config.batch, config.lr,
                                                       config.seed)  # fmt: skip
    else:
        run = new_run_dir(args.run_dir, exports[0]) if args.run_dir is not None else None
    with contextlib.ExitStack() as stack:
        if ports:
            links = [
                stack.enter_context(connect(url, e, timeouts=timeouts(opts)))[0]
                for url, e in zip(ports, exports, strict=True)
            ]
        else:
            links = stack.enter_context(local_links(args.board, exports, opts))
        return train_federation(args, opts, exports, links, args.board or "port", run, resume)


def _one_board(
    model: str | Path, args: argparse.Namespace, opts: RunOptions, out: Path, cfg: Any,
    exports: Sequence[Export],
) -> dict[str, Any]:  # fmt: skip
    """The same total samples, epochs and batch on one board holding every client's shard: the
    golden model in-process (bit-exact with the firmware), and the float Keras baseline."""
    import numpy as np

    from tinysplit.codegen.data import Dataset, load_npz
    from tinysplit.codegen.export import export_client, load_client_state
    from tinysplit.host.commands.runs import train_baseline
    from tinysplit.host.training.server import ServerSegment
    from tinysplit.host.training.simulate import GoldenClient
    from tinysplit.host.training.trainer import split_train

    parts = [load_npz(e.path / "data.npz") for e in exports]
    union = Dataset(
        np.concatenate([p.x_train for p in parts]), np.concatenate([p.y_train for p in parts]),
        parts[0].x_test, parts[0].y_test, parts[0].n_classes, parts[0].name,
    )  # fmt: skip
    single = out / "single"
    single.mkdir(parents=True, exist_ok=True)
    union.save_npz(single / "union.npz")
    export_client(model, args.cut, single / "export", data=single / "union.npz",
                  seed=cfg.seed, board=None, labels=args.labels)  # fmt: skip
    single_export = Export.load(single / "export")
    server = ServerSegment.load(single_export.path / "server.keras", cfg.lr)
    client = GoldenClient(load_client_state(single_export.path))
    res = split_train(client, server, cfg, progress=False, eval_every_epoch=False)
    out_: dict[str, Any] = {
        "single_board_accuracy": res.test_accuracy,
        "single_board_samples": len(union.y_train),
    }
    if not opts.no_baseline:
        out_["centralized_accuracy"] = train_baseline(opts, single_export, cfg).test_accuracy
    return out_


def print_federation(s: dict[str, Any]) -> None:
    print(f"\n== tinysplit {s['schedule']}: {s['clients']} clients ({s['shards']}) ==")
    print(f"split accuracy        {s['split_accuracy']:.4f}")
    if "single_board_accuracy" in s:
        print(f"one board, all data   {s['single_board_accuracy']:.4f}  (golden model, "
              "same samples)")  # fmt: skip
    if "centralized_accuracy" in s:
        print(f"centralized accuracy  {s['centralized_accuracy']:.4f}  (float Keras)")
    print(f"samples               {s['samples']:,} in {s['train_seconds']:.1f} s "
          f"({s['samples_per_s']:.1f} samples/s)")  # fmt: skip
    for e in s["events"]:
        print(f"  step {e['step']}: client {e['client']} {e['what']} {e['why']}")
    sealed = s.get("links_sealed", [])
    if sealed:
        clear = [str(k) for k, on in enumerate(sealed) if not on]
        print("link, security        " + (
            "sealed on every board (ChaCha20-Poly1305, each client's own pairing key)"
            if not clear else f"IN CLEAR for client(s) {', '.join(clear)} (--insecure exports)"
        ))  # fmt: skip
