"""spec.py is the one definition: the committed ts_wire.h must be what gen_c makes of it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from wire_clib import ROOT

from tinysplit.core.protocol import gen_c, spec


def test_committed_header_is_up_to_date() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tinysplit.core.protocol.gen_c", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr


def test_check_fails_on_a_stale_header(tmp_path: Path) -> None:
    stale = tmp_path / "ts_wire.h"
    stale.write_text(gen_c.render().replace("2048u", "512u"))
    assert gen_c.main(["--check", "--output", str(stale)]) == 1
    assert gen_c.main(["--output", str(stale)]) == 0
    assert gen_c.main(["--check", "--output", str(stale)]) == 0


def test_constants_match_docs_protocol_md() -> None:
    assert (spec.MAX_RAW, spec.MAX_ENCODED) == (2088, 2097 + 1)
    assert spec.TRAIN_STEP_MAX_COUNT == 1018
    for cut in (1, 16, 64, 255, 1352, 2036):
        assert spec.smashed_per_frame(cut) == (2048 - 8) // (cut + 1)
        assert spec.grad_per_frame(cut) == (2048 - 4) // (cut + 4)
        assert 8 + spec.smashed_per_frame(cut) * (cut + 1) <= spec.MAX_PAYLOAD
        assert 4 + spec.grad_per_frame(cut) * (cut + 4) <= spec.MAX_PAYLOAD


def test_c_macros_evaluate_like_python(tmp_path: Path) -> None:
    cuts = (1, 10, 64, 200)
    src = tmp_path / "wire_values.c"
    lines = [
        "#include <stdio.h>",
        '#include "ts_wire.h"',
        "int main(void) {",
        '    printf("%u %u %u\\n", TS_WIRE_MAX_RAW, TS_WIRE_MAX_ENCODED, TS_HELLO_FIXED_SIZE);',
    ]
    for cut in cuts:
        lines.append(
            f'    printf("%u %u\\n", (unsigned)TS_SMASHED_PER_FRAME({cut}),'
            f" (unsigned)TS_GRAD_PER_FRAME({cut}));"
        )
    src.write_text("\n".join([*lines, "    return 0;", "}", ""]))
    exe = tmp_path / "wire_values"
    subprocess.run(
        [
            "gcc",
            "-std=c11",
            "-Wall",
            "-Werror",
            f"-I{ROOT / 'firmware/protocol'}",
            str(src),
            "-o",
            str(exe),
        ],
        check=True,
    )
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()
    expected = [spec.MAX_RAW, spec.MAX_ENCODED, spec.HELLO_FIXED_SIZE]
    for cut in cuts:
        expected += [spec.smashed_per_frame(cut), spec.grad_per_frame(cut)]
    assert list(map(int, out)) == expected
