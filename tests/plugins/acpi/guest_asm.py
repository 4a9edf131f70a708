"""Assembling guest code for tests with GNU as (Intel syntax, 64-bit, flat binary)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def assemble(source: str, workdir: Path) -> bytes:
    """The flat machine code of ``source``; skips the test when binutils is missing."""
    if shutil.which("as") is None or shutil.which("objcopy") is None:
        pytest.skip("GNU as and objcopy (Debian's binutils) are needed to assemble guest code;"
                    " CI installs them")
    (workdir / "guest.s").write_text(source)
    subprocess.run(["as", "--64", "-o", str(workdir / "guest.o"), str(workdir / "guest.s")],
                   check=True)
    subprocess.run(["objcopy", "-O", "binary", "-j", ".text", str(workdir / "guest.o"),
                    str(workdir / "guest.bin")], check=True)
    return (workdir / "guest.bin").read_bytes()
