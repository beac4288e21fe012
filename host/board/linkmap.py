"""RAM and flash use of a firmware image, read from the GNU ld map file (-Wl,-Map=...).

The sums match `arm-none-eabi-size`: flash_used = its text + data, ram_used = its data + bss.
"""

from __future__ import annotations

import re
from pathlib import Path

from tinysplit.core.errors import BadInput

# Output sections that take no memory on the target (debug info and notes at address 0).
_NOT_ALLOCATED = re.compile(r"^\.(debug|zdebug|comment|ARM\.attributes|gnu\.attributes|stab|line)")
# RAM sections that are not loaded from flash even if ld prints a "load address" for them.
_BSS_LIKE = {".bss", ".noinit", ".heap"}

_HEX = r"0x[0-9a-fA-F]+"
_SECTION = re.compile(
    rf"^(\.\S+|/DISCARD/)(?:\s+({_HEX})\s+({_HEX})(?:\s+load address ({_HEX}))?)?\s*$"
)
_WRAPPED = re.compile(rf"^\s+({_HEX})\s+({_HEX})(?:\s+load address ({_HEX}))?\s*$")
_REGION = re.compile(rf"^(\S+)\s+({_HEX})\s+({_HEX})")


def _regions(lines: list[str]) -> dict[str, tuple[int, int]]:
    """The MEMORY regions: name -> (origin, length)."""
    regions: dict[str, tuple[int, int]] = {}
    try:
        start = lines.index("Memory Configuration")
    except ValueError:
        return regions
    for line in lines[start + 1 :]:
        if line.startswith("Linker script and memory map"):
            break
        match = _REGION.match(line)
        if match and match.group(1) != "*default*":
            regions[match.group(1)] = (int(match.group(2), 16), int(match.group(3), 16))
    return regions


def _output_sections(lines: list[str]) -> list[tuple[str, int, int, int | None]]:
    """(name, address, size, load address or None) of each output section in the memory map."""
    try:
        start = lines.index("Linker script and memory map")
    except ValueError:
        return []
    sections = []
    body = lines[start + 1 :]
    for i, line in enumerate(body):
        match = _SECTION.match(line)
        if not match:
            continue
        name, addr, size, load = match.groups()
        if addr is None:  # a long name: address and size are on the next line
            wrapped = _WRAPPED.match(body[i + 1]) if i + 1 < len(body) else None
            if wrapped is None:
                continue  # an empty section ld prints without address
            addr, size, load = wrapped.groups()
        sections.append((name, int(addr, 16), int(size, 16), int(load, 16) if load else None))
    return sections


def ram_flash_from_map(map_path: Path) -> dict[str, int]:
    """Bytes used, from an ld map file.

    Keys: vectors, text (code and other read-only sections, and the alignment padding between
    sections), rodata, data, bss (with .noinit),
    stack, ram_used (data + bss + stack), flash_used (vectors + text + rodata + data's initial
    values), ram_size and flash_size (the RAM and FLASH regions of the linker script).
    """
    try:
        lines = Path(map_path).read_text().splitlines()
    except OSError as error:
        raise BadInput(
            f"cannot read the linker map {map_path}: {error.strerror}; build first"
        ) from error
    regions = _regions(lines)
    if "RAM" not in regions or "FLASH" not in regions:
        raise BadInput(
            f"{map_path} is not a GNU ld map with FLASH and RAM regions: rebuild with -Map"
        )

    def inside(region: str, addr: int) -> bool:
        origin, length = regions[region]
        return origin <= addr < origin + length

    usage = dict.fromkeys(("vectors", "text", "rodata", "data", "bss", "stack"), 0)
    flash_end = regions["FLASH"][0]  # the end of the image in flash, padding included
    for name, addr, size, load in _output_sections(lines):
        if size == 0 or name == "/DISCARD/" or _NOT_ALLOCATED.match(name):
            continue
        if inside("RAM", addr):
            if name == ".stack":
                usage["stack"] += size
            elif name in _BSS_LIKE or load is None or load == addr:
                usage["bss"] += size
            else:
                usage["data"] += size
                if load is not None and inside("FLASH", load):
                    flash_end = max(flash_end, load + size)
        elif inside("FLASH", addr):
            flash_end = max(flash_end, addr + size)
            if name == ".isr_vector":
                usage["vectors"] += size
            elif name.startswith(".rodata"):
                usage["rodata"] += size
            else:
                usage["text"] += size
    # What aligning a section leaves between two (code aligned to 64 B after the vectors) is
    # flash the image takes too: counted with the code.
    usage["text"] += max(
        0,
        flash_end
        - regions["FLASH"][0]
        - sum(usage[k] for k in ("vectors", "text", "rodata", "data")),
    )
    usage["ram_used"] = usage["data"] + usage["bss"] + usage["stack"]
    usage["flash_used"] = usage["vectors"] + usage["text"] + usage["rodata"] + usage["data"]
    usage["ram_size"] = regions["RAM"][1]
    usage["flash_size"] = regions["FLASH"][1]
    return usage
