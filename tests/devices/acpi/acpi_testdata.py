"""Where the QEMU 7.2 tables are cached, and how disassemblies are compared.

``data/<config>/<SIG>.dat`` (``data/dump_qemu_tables.py`` regenerates them
from a real QEMU run); :data:`CONFIGS` maps each directory to its ``-m``
argument.  A module of its own (not conftest) so test modules can import it.
"""

from __future__ import annotations

import re
from pathlib import Path

DATA = Path(__file__).parent / "data"
CONFIGS = {
    "m1G-slots3-maxmem4G": "1G,slots=3,maxmem=4G",
    "m5G-slots2-maxmem8G": "5G,slots=2,maxmem=8G",
    "m1G": "1G",
}


def qemu_tables(config: str) -> dict[str, bytes]:
    """The tables QEMU 7.2 installed for ``config``, by signature."""
    return {path.stem: path.read_bytes() for path in (DATA / config).glob("*.dat")}


def normalise(dsl: str) -> str:
    """Drop iasl's header comment (dates, checksums) and trailing spaces."""
    text = re.sub(r"\A\s*/\*.*?\*/\s*", "", dsl, count=1, flags=re.S)
    return "\n".join(line.rstrip() for line in text.splitlines()).strip() + "\n"


def memory_hotplug_part(dsl: str) -> str:
    """The memory-hotplug AML of a DSDT disassembly: ``\\_SB.PCI0.MHPD`` to ``\\_GPE._E03``.

    Resource-tag names iasl invents (``_Y01``) count templates from the top of
    the whole table, so they are renumbered from 0 within the part.
    """
    lines = dsl.splitlines()
    start = lines.index("    Device (\\_SB.PCI0.MHPD)")
    handler = next(i for i, line in enumerate(lines)
                   if line.startswith("    Method (\\_GPE._E03,"))
    end = lines.index("    }", handler)
    part = "\n".join(lines[start:end + 1]) + "\n"
    tags: dict[str, str] = {}
    return re.sub(r"_Y[0-9A-F]{2}",
                  lambda m: tags.setdefault(m[0], f"_Y{len(tags):02X}"), part)
