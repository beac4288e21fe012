"""Seals the RP2040 boot2 checksum into a linked ELF (the post-link step of boards/pico).

    python boards/pico/boot2_crc.py build/pico/tinysplit.elf

The boot ROM runs the first 256 bytes of flash only if their last 4 bytes are the CRC-32
(polynomial 0x04C11DB7, initial value 0xFFFFFFFF, no reflection, no final XOR; RP2040 datasheet
2.8.1.3.1) of the first 252, little-endian. The section `.boot2` (boards/pico/boot2.S) is found
through the ELF section headers and patched in place, so the .bin/.uf2 made from the ELF carry
it. Standard library only: the Makefile runs it with any python3, PlatformIO with its own.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

BOOT2_SECTION = ".boot2"
BOOT2_BYTES = 256
CRC_OFFSET = 252


def crc32_mpeg2(data: bytes) -> int:
    """CRC-32/MPEG-2: what the RP2040 boot ROM computes over boot2."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else (crc << 1)
            crc &= 0xFFFFFFFF
    return crc


def boot2_file_offset(elf: bytes) -> int:
    """File offset of the .boot2 section in a 32-bit little-endian ELF."""
    if elf[:4] != b"\x7fELF" or elf[4] != 1 or elf[5] != 1:
        raise ValueError("not a 32-bit little-endian ELF file")
    (shoff,) = struct.unpack_from("<I", elf, 0x20)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x2E)

    def header(index: int) -> tuple[int, int, int]:
        name, _type, _flags, _addr, offset, size = struct.unpack_from(
            "<IIIIII", elf, shoff + index * shentsize
        )
        return name, offset, size

    _, strtab, _ = header(shstrndx)
    for index in range(shnum):
        name, offset, size = header(index)
        end = elf.index(b"\0", strtab + name)
        if elf[strtab + name : end].decode() == BOOT2_SECTION:
            if size != BOOT2_BYTES:
                raise ValueError(f"{BOOT2_SECTION} is {size} bytes, not {BOOT2_BYTES}")
            return offset
    raise ValueError(f"no {BOOT2_SECTION} section: was boards/pico/boot2.S linked in?")


def seal(path: Path) -> int:
    """Writes the checksum into the ELF at `path`; returns it."""
    elf = bytearray(path.read_bytes())
    offset = boot2_file_offset(bytes(elf))
    crc = crc32_mpeg2(bytes(elf[offset : offset + CRC_OFFSET]))
    struct.pack_into("<I", elf, offset + CRC_OFFSET, crc)
    path.write_bytes(bytes(elf))
    return crc


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} IMAGE.elf", file=sys.stderr)
        return 2
    try:
        seal(Path(argv[1]))
    except (OSError, ValueError) as error:
        print(f"boot2_crc: {argv[1]}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
