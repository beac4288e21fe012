"""`tinysplit bench`, section 5: client flash and peak RAM per workload and board.

Planned: the export's memory plan (plan.json, what codegen computed). Linked: the image built
for each board, read from its linker map (the machinery of `tinysplit size`). A board the image
does not fit fails to link: it is listed with the linker's reason.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tinysplit.host.bench import markdown as md


def boards(quick: bool) -> list[str]:
    """Every board with a RAM/flash budget; --quick: the real boards and the emulated M4."""
    from tinysplit.core.boards import board_profile
    from tinysplit.host.board.size import sized_boards

    every = sized_boards()
    if not quick:
        return every
    return [b for b in every if board_profile(b).get("launcher") == "hardware" or b == "mps2_an386"]


def measure(
    workload: str, export_dir: Path, board_names: list[str], build_root: Path
) -> dict[str, Any]:
    from tinysplit.core.boards import board_profile
    from tinysplit.host.board.size import build_and_measure

    plan = json.loads((export_dir / "plan.json").read_text())
    ram_plan, flash_plan = int(plan["ram_peak"]), int(plan["flash"])
    sizes, failed = build_and_measure(board_names, export_dir, build_root)
    by_board = {s.board: s for s in sizes}
    rows = []
    for board in board_names:
        profile = board_profile(board)
        row: dict[str, Any] = {
            "board": board,
            "core": profile.get("core"),
            "ram_planned": ram_plan,
            "flash_planned": flash_plan,
            "ram_total": profile.get("ram_bytes"),
            "flash_total": profile.get("flash_bytes"),
        }
        s = by_board.get(board)
        if s is None:
            row.update(status="not linked", reason=failed.get(board, "?"), fits=False)
        else:
            row.update(
                status="ok",
                ram_linked=s.ram_used,
                flash_linked=s.flash_used,
                ram_linked_to_planned=md.ratio(s.ram_used, ram_plan),
                flash_linked_to_planned=md.ratio(s.flash_used, flash_plan),
                fits=s.fits,
            )
        rows.append(row)
    return {"workload": workload, "status": "ok", "plan_board": plan.get("board"), "boards": rows}


def _pct(used: int, total: int | None) -> str:
    return f"{100.0 * used / total:.1f} %" if total else "-"


def markdown(section: dict[str, Any]) -> str:
    out = [
        "## 5. Memory",
        "",
        "Client RAM (peak, training) and flash per workload and board: *plan* from the export's "
        "memory plan (`plan.json`), *linked* from the linker map of the image built for that "
        "board (`tinysplit size`), and linked/plan. One export per workload, built for every "
        "board: its data shard in flash is the one fitted to the flash of the board it was "
        f"exported for ({section['plan_board']}). Boards: {section['boards_text']}.",
        "",
    ]
    rows = []
    for w in section["workloads"]:
        if w["status"] != "ok":
            rows.append([w["workload"], f"not run: {w['reason']}", *["-"] * 9])
            continue
        for r in w["boards"]:
            head = [w["workload"], f"{r['board']} ({r['core']})", md.num(r["ram_planned"])]
            if r["status"] != "ok":
                flash = md.num(r["flash_planned"])
                rows.append([*head, "-", "-", "-", flash, "-", "-", "-", f"no: {r['reason']}"])
                continue
            rows.append(
                [
                    *head,
                    md.num(r["ram_linked"]),
                    md.num(r["ram_linked_to_planned"], 3),
                    _pct(r["ram_linked"], r["ram_total"]),
                    md.num(r["flash_planned"]),
                    md.num(r["flash_linked"]),
                    md.num(r["flash_linked_to_planned"], 3),
                    _pct(r["flash_linked"], r["flash_total"]),
                    "yes" if r["fits"] else "NO",
                ]
            )
    out.append(
        md.table(
            [
                "workload",
                "board",
                "RAM plan",
                "RAM linked",
                "linked / plan",
                "of board RAM",
                "flash plan",
                "flash linked",
                "linked / plan",
                "of board flash",
                "fits",
            ],
            rows,
            right=range(2, 10),
        )
    )
    return "\n".join([*out, ""])
