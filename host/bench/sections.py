"""`tinysplit bench`, sections 2-4 (link efficiency, host overhead, accuracy): the figures,
built from the measured runs (host/bench/runs.py), and their Markdown."""

from __future__ import annotations

from typing import Any

from tinysplit.host.bench import markdown as md
from tinysplit.host.bench.runs import Prepared, RunMeasure

BAUD_RATES = (115_200, 921_600, 2_000_000)
BITS_PER_BYTE = 10  # 8N1: start bit, 8 data bits, stop bit


def framing_constants() -> dict[str, Any]:
    """What every frame adds to its payload, from the protocol's definition (core/protocol)."""
    from tinysplit.core.protocol import encode_frame, spec

    empty = b"\x00" + encode_frame(int(spec.MsgType.STATUS), 0, 0, 0, b"")  # as senders write it
    return {
        "header_bytes": spec.HEADER_SIZE,
        "crc_bytes": spec.CRC_SIZE,
        "delimiters_per_frame": empty.count(0),
        "max_payload": spec.MAX_PAYLOAD,
        "seal_bytes": spec.SEAL_OVERHEAD,
        "max_encoded_frame": spec.MAX_ENCODED,
    }


# ---- 2. link -------------------------------------------------------------------------------


def link_entry(prep: Prepared, run: RunMeasure) -> dict[str, Any]:
    """Bytes per sample each way, framing overhead, and a step's time on the wire at each baud
    rate next to the host's own time per step, from one metered run."""
    assert run.link is not None
    m, f = run.link, framing_constants()
    cut, raw = int(prep.manifest["cut_size"]), int(prep.manifest["input_size"])
    ways: dict[str, Any] = {}
    for way in ("to_server", "to_client"):
        wire, payload, frames = m.wire[way], m.payload[way], m.frames[way]
        header_crc = frames * (f["header_bytes"] + f["crc_bytes"])
        seal = frames * f["seal_bytes"] if m.sealed else 0
        delimiters = frames * f["delimiters_per_frame"]
        ways[way] = {
            "payload_per_sample": payload / m.samples,
            "wire_per_sample": wire / m.samples,
            "framing_bytes_per_step": {
                "header_crc": header_crc / m.steps,
                "seal": seal / m.steps,
                "delimiters": delimiters / m.steps,
                "cobs": (wire - payload - header_crc - seal - delimiters) / m.steps,
            },
            "framing_overhead_pct": 100.0 * (wire - payload) / payload,
        }
    wire_step = (m.wire["to_server"] + m.wire["to_client"]) / m.steps
    wire_s = {str(b): wire_step / (b / BITS_PER_BYTE) for b in BAUD_RATES}
    return {
        "workload": prep.workload,
        "status": "ok",
        "board": run.where,
        "batch": prep.cfg.batch,
        "steps": m.steps,
        "samples": m.samples,
        "cut_bytes": cut,
        "input_bytes": raw,
        "smashed_to_raw": cut / raw,
        "frames_as_expected": m.frames == m.payload_frames,
        "sealed": m.sealed,
        "link_errors": run.link_errors,
        **ways,
        "wire_bytes_per_step": wire_step,
        "wire_seconds_per_step": wire_s,
        "host_seconds_per_step": run.host_step_s,
        "wire_to_host": {b: md.ratio(s, run.host_step_s) for b, s in wire_s.items()},
        "board_seconds_per_step": 1.0 / run.steps_per_s if run.steps_per_s else None,
    }


def link_markdown(section: dict[str, Any]) -> str:
    f = section["framing"]
    out = [
        "## 2. Link efficiency",
        "",
        f"Training steps only (HELLO and evaluation excluded), measured on the {section['board']} "
        "build's link. Payload: the message bytes the protocol defines (TRAIN_STEP, GRAD, COMMIT "
        "to the board; SMASHED, STEP_DONE to the host), per training sample. Wire: the bytes the "
        f"link moved. Every frame adds a {f['header_bytes']}-byte header, a {f['crc_bytes']}-byte "
        f"CRC-32, {f['delimiters_per_frame']} delimiter bytes (0x00) and its COBS code bytes "
        f"(MAX_PAYLOAD {f['max_payload']:,} B). Smashed/raw: cut-layer bytes per sample over "
        "input bytes per sample (both int8). A format in brackets: the same training with "
        "`--wire FORMAT` (section 10).",
        "",
    ]
    rows, times = [], []
    for e in section["workloads"]:
        if e["status"] != "ok":
            rows.append([e["workload"], f"not run: {e['reason']}", *["-"] * 9])
            times.append([e["workload"], f"not run: {e['reason']}", *["-"] * 6])
            continue
        s, c = e["to_server"], e["to_client"]
        name = e["workload"] + (f" ({e['wire']})" if e.get("wire", "int8") != "int8" else "")
        rows.append(
            [
                name,
                md.num(e["batch"]),
                f"{e['cut_bytes']:,} / {e['input_bytes']:,}",
                md.num(e["smashed_to_raw"]),
                md.num(s["payload_per_sample"], 1),
                md.num(s["wire_per_sample"], 1),
                md.num(s["framing_overhead_pct"], 1) + " %",
                md.num(c["payload_per_sample"], 1),
                md.num(c["wire_per_sample"], 1),
                md.num(c["framing_overhead_pct"], 1) + " %",
                "yes" if e["frames_as_expected"] else "no (retransmits?)",
            ]
        )
        host_ms = e["host_seconds_per_step"] * 1e3
        cells = [name, md.num(e["wire_bytes_per_step"], 0)]
        for b in (str(b) for b in BAUD_RATES):
            cells.append(
                f"{e['wire_seconds_per_step'][b] * 1e3:,.1f} ms (x{e['wire_to_host'][b]:,.1f})"
            )
        board_s = e["board_seconds_per_step"]
        cells += [f"{host_ms:,.2f} ms", f"{board_s * 1e3:,.2f} ms" if board_s else "-"]
        times.append(cells)
    out.append(
        md.table(
            [
                "workload",
                "batch",
                "cut / input B",
                "smashed / raw",
                "to host: payload B/sample",
                "wire B/sample",
                "framing",
                "to board: payload B/sample",
                "wire B/sample",
                "framing",
                "frames as defined",
            ],
            rows,
            right=range(1, 10),
        )
    )
    bauds = [f"{b:,} baud" for b in BAUD_RATES]
    out += [
        "",
        "A training step on the wire (both ways, 8N1: baud/10 bytes/s) next to the host's own "
        "time per step (median of the server segment's forward, loss, backward and SGD); "
        "(xN): wire time over host time. Last column: the whole step as measured on the "
        f"{section['board']} build (pty, no baud rate).",
        "",
        md.table(
            ["workload", "wire B/step", *bauds, "host per step", "measured step"],
            times,
            right=range(1, 7),
        ),
        "",
    ]
    return "\n".join(out)


# ---- 3. host overhead ----------------------------------------------------------------------


def overhead_entry(prep: Prepared, board: RunMeasure, in_process: RunMeasure) -> dict[str, Any]:
    return {
        "workload": prep.workload,
        "status": "ok",
        "steps": board.steps,
        "board": board.where,
        "board_steps_per_s": board.steps_per_s,
        "in_process_steps_per_s": in_process.steps_per_s,
        "board_to_in_process": md.ratio(board.steps_per_s, in_process.steps_per_s),
        "board_test_accuracy": board.test_accuracy,
        "in_process_test_accuracy": in_process.test_accuracy,
        "same_accuracy": board.test_accuracy == in_process.test_accuracy,
    }


def overhead_markdown(section: dict[str, Any]) -> str:
    out = [
        "## 3. Host overhead",
        "",
        f"The same split run (same export, steps, data order), its client once the "
        f"{section['board']} build over its pty and the wire protocol, once the numpy golden "
        "model in this process (no protocol, no transport; `tinysplit simulate`). Training "
        "steps only, evaluation excluded. Both end with the same weights when the golden model "
        "is bit-exact with the firmware: *same accuracy* checks that.",
        "",
    ]
    rows = []
    for e in section["workloads"]:
        if e["status"] != "ok":
            rows.append([e["workload"], f"not run: {e['reason']}", "-", "-", "-", "-"])
            continue
        rows.append(
            [
                e["workload"],
                md.num(e["steps"]),
                md.num(e["board_steps_per_s"], 1),
                md.num(e["in_process_steps_per_s"], 1),
                md.num(e["board_to_in_process"]),
                "yes" if e["same_accuracy"] else "NO",
            ]
        )
    out.append(
        md.table(
            [
                "workload",
                "steps",
                f"{section['board']} steps/s",
                "in-process steps/s",
                f"{section['board']} / in-process",
                "same accuracy",
            ],
            rows,
            right=range(1, 5),
        )
    )
    return "\n".join([*out, ""])


# ---- 4. accuracy ---------------------------------------------------------------------------


def accuracy_entry(
    preps: list[Prepared], split: list[float], central: list[float]
) -> dict[str, Any]:
    mean_split = sum(split) / len(split)
    mean_central = sum(central) / len(central)
    c = preps[0].cfg
    return {
        "workload": preps[0].workload,
        "status": "ok",
        "epochs": c.epochs,
        "batch": c.batch,
        "lr": c.lr,
        "seeds": [p.seed for p in preps],
        "split_accuracy": split,
        "centralized_accuracy": central,
        "split_mean": mean_split,
        "centralized_mean": mean_central,
        "difference_points": (mean_split - mean_central) * 100.0,
        "split_to_centralized": md.ratio(mean_split, mean_central),
    }


def accuracy_markdown(section: dict[str, Any]) -> str:
    out = [
        "## 4. Accuracy",
        "",
        f"Test accuracy split-trained (int8 client on {section['board_text']}, Keras server) "
        "against the same model trained centralized in float Keras: same data shard, initial "
        "weights, data order, epochs, batch, learning rate and seed. Several seeds: the mean "
        "(each seed sets the initial weights and the data order).",
        "",
    ]
    rows = []
    for e in section["workloads"]:
        if e["status"] != "ok":
            rows.append([e["workload"], f"not run: {e['reason']}", *["-"] * 7])
            continue
        seeds = ", ".join(str(s) for s in e["seeds"])
        rows.append(
            [
                e["workload"],
                md.num(e["epochs"]),
                md.num(e["batch"]),
                f"{e['lr']:g}",
                seeds,
                md.num(e["split_mean"], 4),
                md.num(e["centralized_mean"], 4),
                f"{e['difference_points']:+.2f}",
                md.num(e["split_to_centralized"], 3),
            ]
        )
    out.append(
        md.table(
            [
                "workload",
                "epochs",
                "batch",
                "lr",
                "seeds",
                "split (int8 client)",
                "centralized (float)",
                "difference, points",
                "split / centralized",
            ],
            rows,
            right=(1, 2, 3, 5, 6, 7, 8),
        )
    )
    return "\n".join([*out, ""])
