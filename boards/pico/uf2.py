"""Converts a flash image (.bin, loaded at 0x10000000) into a UF2 file for the RP2040 boot ROM.

    python boards/pico/uf2.py build/pico/tinysplit.bin build/pico/tinysplit.uf2

Hold BOOTSEL while plugging the Pico in and copy the .uf2 onto the RPI-RP2 drive; that is how
`make BOARD=pico` images are flashed without PlatformIO or a debug probe (PlatformIO makes its
own .uf2). UF2 (github.com/microsoft/uf2): 512-byte blocks, each carrying 256 bytes of flash
at its target address, tagged with the RP2040 family id. Standard library only.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

FLASH_BASE = 0x10000000
PAYLOAD = 256
MAGIC_START0 = 0x0A324655
MAGIC_START1 = 0x9E5D5157
MAGIC_END = 0x0AB16F30
FLAG_FAMILY_ID = 0x00002000
RP2040_FAMILY = 0xE48BFF56


def to_uf2(image: bytes, base: int = FLASH_BASE) -> bytes:
    blocks = [image[i : i + PAYLOAD] for i in range(0, len(image), PAYLOAD)]
    out = bytearray()
    for number, chunk in enumerate(blocks):
        header = struct.pack(
            "<8I",
            MAGIC_START0,
            MAGIC_START1,
            FLAG_FAMILY_ID,
            base + number * PAYLOAD,
            PAYLOAD,
            number,
            len(blocks),
            RP2040_FAMILY,
        )
        data = chunk.ljust(476, b"\0")
        out += header + data + struct.pack("<I", MAGIC_END)
    return bytes(out)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(f"usage: {argv[0]} IMAGE.bin OUT.uf2", file=sys.stderr)
        return 2
    Path(argv[2]).write_bytes(to_uf2(Path(argv[1]).read_bytes()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
