"""host/board/build.py and host/board/linkmap.py: the Makefile contract, clear failures, memory
figures."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from echo_support import build_echo

from tinysplit.core.boards import board_profile
from tinysplit.core.errors import BuildError, ToolMissing
from tinysplit.core.paths import source_root
from tinysplit.host.board.build import build_firmware
from tinysplit.host.board.linkmap import ram_flash_from_map


def berkeley_size(elf: Path) -> tuple[int, int, int]:
    """(text, data, bss) as arm-none-eabi-size prints them."""
    out = subprocess.run(["arm-none-eabi-size", str(elf)], capture_output=True, text=True)
    text, data, bss = (int(v) for v in out.stdout.splitlines()[1].split()[:3])
    return text, data, bss


def test_mps2_image_memory_matches_size_and_fits(echo_images: dict[str, Path]) -> None:
    elf = echo_images["mps2_an386"]
    usage = ram_flash_from_map(elf.with_suffix(".map"))
    text, data, bss = berkeley_size(elf)
    # `size` leaves out the padding that aligns a section (code at 64 B after the vectors); the
    # map's figure counts it, as the .bin (below) holds it.
    assert text + data <= usage["flash_used"] < text + data + 64
    assert usage["ram_used"] == data + bss
    assert usage["data"] == data > 0  # the app's writable banner string
    assert usage["stack"] == 4096  # ECHO_STACK_BYTES, from the app, at the bottom of RAM
    profile = board_profile("mps2_an386")
    assert (usage["ram_size"], usage["flash_size"]) == (
        profile["ram_bytes"],
        profile["flash_bytes"],
    )
    assert usage["ram_used"] < 128 * 1024 and usage["flash_used"] < 512 * 1024
    assert elf.with_suffix(".bin").stat().st_size == usage["flash_used"]


def test_initial_sp_is_the_top_of_the_app_stack(echo_images: dict[str, Path]) -> None:
    elf = echo_images["mps2_an386"]
    symbols = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True).stdout
    addr = {line.split()[2]: int(line.split()[0], 16) for line in symbols.splitlines()}
    assert addr["ts_stack"] == addr["__stack_bottom"] == 0x2000_0000
    assert addr["__stack_top"] == 0x2000_0000 + 4096
    vector0 = int.from_bytes(elf.with_suffix(".bin").read_bytes()[:4], "little")
    assert vector0 == addr["__stack_top"]


def test_too_big_image_fails_to_link_with_a_clear_message(tmp_path: Path) -> None:
    with pytest.raises(BuildError) as caught:
        build_echo("mps2_an386", tmp_path, extra_cflags="-DECHO_PAD_BYTES=204800")
    first_line = str(caught.value).splitlines()[0]
    assert first_line.startswith("firmware does not fit board mps2_an386: RAM overflowed by")
    assert "smaller model" in first_line
    assert "RAM overflow" in str(caught.value)  # the linker script's ASSERT, in the log below


def test_missing_stack_fails_to_link_with_a_clear_message(tmp_path: Path) -> None:
    with pytest.raises(BuildError) as caught:
        build_echo("mps2_an386", tmp_path, extra_cflags="-DECHO_NO_STACK")
    first_line = str(caught.value).splitlines()[0]
    assert "no stack" in first_line and "TS_BOARD_DEFINE_STACK" in first_line


def test_compile_error_shows_the_compiler_output(tmp_path: Path) -> None:
    with pytest.raises(BuildError) as caught:
        build_echo("native", tmp_path, extra_cflags="-DECHO_STACK_BYTES=0")
    message = str(caught.value)
    first_line = message.splitlines()[0]
    assert first_line == "firmware for board native did not compile: fix the first error below"
    assert "stack bytes must be positive" in message


def test_unknown_board(tmp_path: Path) -> None:
    unknown = r"unknown board 'nope': choose one of .*mps2_an386.*native"
    with pytest.raises(BuildError, match=unknown):
        build_firmware("nope", None, tmp_path)


def test_missing_cross_compiler_is_tool_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    make = shutil.which("make")
    assert make is not None
    os.symlink(make, bin_dir / "make")
    monkeypatch.setenv("PATH", str(bin_dir))
    with pytest.raises(ToolMissing) as caught:
        build_echo("mps2_an386", tmp_path / "build")
    assert str(caught.value) == (
        "arm-none-eabi-gcc not found: run scripts/setup.sh "
        "(installs gcc-arm-none-eabi and libnewlib-arm-none-eabi)"
    )


def test_missing_make_is_tool_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolMissing, match=r"^make not found: run scripts/setup.sh"):
        build_echo("native", tmp_path / "build")


def test_source_root_has_the_makefile() -> None:
    assert (source_root() / "Makefile").is_file()
    assert (source_root() / "boards" / "mps2_an386" / "linker.ld").is_file()


MAP_SAMPLE = """\
Memory Configuration

Name             Origin             Length             Attributes
FLASH            0x00000000         0x00080000         xr
RAM              0x20000000         0x00020000         xrw
*default*        0x00000000         0xffffffff

Linker script and memory map

.isr_vector     0x00000000       0x40
 *(.isr_vector)
 .isr_vector    0x00000000       0x40 startup.o
.text           0x00000040      0x100
 .text.main     0x00000040      0x100 app.o
.rodata         0x00000140       0x20
.ARM.extab
 *(.ARM.extab*)
.ARM.exidx      0x00000160        0x8
.stack          0x20000000     0x1000
 .stack         0x20000000     0x1000 app.o
.data           0x20001000       0x10 load address 0x00000168
.bss            0x20001010      0x200 load address 0x00000178
.a_very_long_output_section_name
                0x20001210        0x4 load address 0x00000178
.debug_info     0x00000000     0x1234
.comment        0x00000000       0x26
"""


def test_linkmap_parses_wrapped_and_empty_sections(tmp_path: Path) -> None:
    path = tmp_path / "sample.map"
    path.write_text(MAP_SAMPLE)
    assert ram_flash_from_map(path) == {
        "vectors": 0x40,
        "text": 0x100 + 0x8,
        "rodata": 0x20,
        "data": 0x10 + 0x4,  # the long name has a load address in flash: initialized data
        "bss": 0x200,
        "stack": 0x1000,
        "ram_used": 0x14 + 0x200 + 0x1000,
        "flash_used": 0x40 + 0x108 + 0x20 + 0x14,
        "ram_size": 0x20000,
        "flash_size": 0x80000,
    }


def test_linkmap_rejects_a_file_that_is_not_a_map(tmp_path: Path) -> None:
    path = tmp_path / "x.map"
    path.write_text("hello\n")
    with pytest.raises(Exception, match="not a GNU ld map"):
        ram_flash_from_map(path)


def test_another_export_into_the_same_build_dir_rebuilds_the_model_objects(
    digits_export: Path, tmp_path: Path
) -> None:
    """Building export B where export A was built must not link A's objects: B's model hash is
    in the image, A's is not (the app and model objects depend on build/.../model.id)."""
    import json

    from tinysplit.codegen.export import export_client

    other = tmp_path / "digits-seed1"
    export_client("digits-mlp", None, other, seed=1)
    build = tmp_path / "build"
    for first, second in ((digits_export, other), (other, digits_export)):
        build_firmware("native", first, build)
        image = build_firmware("native", second, build).read_bytes()
        want, stale = (
            bytes.fromhex(json.loads((d / "manifest.json").read_text())["model_hash"])
            for d in (second, first)
        )
        assert want in image and stale not in image
