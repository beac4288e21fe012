"""Every real board's firmware (boards/<board>, the files platformio.ini builds) built with
Debian's toolchain from the digits export: it links, fits the board's RAM and flash (from the
linker map), and has the layout its boot path needs. Nothing here runs the images: the emulated
boards (tests/e2e/test_emulated_boards.py) run the same core and Cortex-M layer."""

from __future__ import annotations

import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tinysplit.core.boards import board_profile, boards_run_by
from tinysplit.core.paths import source_root
from tinysplit.host.board.build import build_firmware
from tinysplit.host.board.launch import DEFAULT_BAUDRATE
from tinysplit.host.board.linkmap import ram_flash_from_map
from tinysplit.host.board.size import format_table, measure

REAL_BOARDS = boards_run_by("hardware")
# (start of the image, vector table): where each boot path looks for the vector table. The
# STM32s boot from flash at 0x08000000; the Nano 33 BLE's bootloader keeps the first 64 KiB and
# jumps to 0x10000; on the RP2040 boot2 fills the first 256 bytes and jumps to what follows.
VECTORS = {
    "disco_f746ng": (0x0800_0000, 0x0800_0000),
    "nano33ble": (0x0001_0000, 0x0001_0000),
    "nucleo_f446re": (0x0800_0000, 0x0800_0000),
    "pico": (0x1000_0000, 0x1000_0100),
}


@pytest.fixture(scope="module")
def images(digits_export: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {
        b: build_firmware(b, digits_export, tmp_path_factory.mktemp(f"build-{b}"))
        for b in REAL_BOARDS
    }


def symbols(elf: Path) -> dict[str, int]:
    out = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True).stdout
    return {f[2]: int(f[0], 16) for f in (line.split() for line in out.splitlines()) if len(f) == 3}


def disassembly(elf: Path) -> str:
    return subprocess.run(
        ["arm-none-eabi-objdump", "-d", str(elf)], capture_output=True, text=True
    ).stdout


def test_the_four_real_boards() -> None:
    assert sorted(REAL_BOARDS) == sorted(VECTORS)


def test_every_real_board_fits_with_the_reference_workload(images: dict[str, Path]) -> None:
    sizes = [measure(b, images[b]) for b in REAL_BOARDS]
    print("\n" + format_table(sizes))  # the CI log's size table (`tinysplit size --all-boards`)
    assert [s.board for s in sizes if not s.fits] == []


@pytest.mark.parametrize("board", REAL_BOARDS)
def test_linker_regions_are_the_profile_memory_and_match_size(
    board: str, images: dict[str, Path]
) -> None:
    elf = images[board]
    usage = ram_flash_from_map(elf.with_suffix(".map"))
    profile = board_profile(board)
    assert (usage["ram_size"], usage["flash_size"]) == (
        profile["ram_bytes"],
        profile["flash_bytes"],
    )
    out = subprocess.run(["arm-none-eabi-size", str(elf)], capture_output=True, text=True).stdout
    text, data, bss = (int(v) for v in out.splitlines()[1].split()[:3])
    assert usage["ram_used"] == data + bss
    # the map counts the padding that aligns one section after another; `size` does not
    assert text + data <= usage["flash_used"] < text + data + 64
    assert usage["stack"] == 4096  # the export's planned stack, at the bottom of RAM


@pytest.mark.parametrize("board", REAL_BOARDS)
def test_vector_table_is_where_the_boot_path_looks(board: str, images: dict[str, Path]) -> None:
    elf = images[board]
    addr = symbols(elf)
    image_start, vectors = VECTORS[board]
    assert addr["ts_vectors"] == vectors
    image = elf.with_suffix(".bin").read_bytes()
    offset = vectors - image_start
    initial_sp, reset = struct.unpack_from("<II", image, offset)
    assert initial_sp == addr["__stack_top"] == addr["ts_stack"] + 4096
    assert reset == addr["Reset_Handler"] | 1  # Thumb


def test_pico_boot2_checksum_is_sealed_and_uf2_made(images: dict[str, Path]) -> None:
    sys.path.insert(0, str(source_root() / "boards" / "pico"))
    try:
        import boot2_crc
        import uf2
    finally:
        sys.path.pop(0)
    assert boot2_crc.crc32_mpeg2(b"123456789") == 0x0376E6E7  # CRC-32/MPEG-2 check value
    image = images["pico"].with_suffix(".bin").read_bytes()
    (sealed,) = struct.unpack_from("<I", image, 252)
    assert sealed == boot2_crc.crc32_mpeg2(image[:252]) != 0
    blocks = images["pico"].with_suffix(".uf2").read_bytes()
    assert len(blocks) == 512 * -(-len(image) // 256)
    assert blocks == uf2.to_uf2(image)
    magic0, magic1, _flags, target, size, number, _total, family = struct.unpack_from("<8I", blocks)
    assert (magic0, magic1, target, size, number, family) == (
        0x0A324655, 0x9E5D5157, 0x1000_0000, 256, 0, 0xE48BFF56,
    )  # fmt: skip


def test_no_fused_multiply_add_anywhere(images: dict[str, Path]) -> None:
    """Bit-identical float results on every board rest on -ffp-contract=off: no vfma/vfms."""
    for board, elf in images.items():
        assert not re.search(r"\tvfn?m[as]\.", disassembly(elf)), board


def test_m0plus_image_is_soft_float(images: dict[str, Path]) -> None:
    listing = disassembly(images["pico"])
    assert not re.search(r"\tv(add|sub|mul|div|mov|ldr|str|cvt)", listing)  # no FPU on an M0+
    assert {"__aeabi_fadd", "__aeabi_fmul"} <= set(symbols(images["pico"]))


@pytest.mark.parametrize("board", REAL_BOARDS)
def test_image_names_the_board_and_uses_the_host_baud(board: str, images: dict[str, Path]) -> None:
    profile = board_profile(board)
    name = profile["name"].encode()
    assert name in images[board].with_suffix(".bin").read_bytes()  # ts_board_name() in HELLO
    baud = subprocess.run(
        ["make", "-s", "-C", str(source_root()), f"BOARD={board}", "print-UART_BAUD"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert int(baud) == profile["uart_baud"] == DEFAULT_BAUDRATE
