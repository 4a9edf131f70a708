"""pyqom's OSPM guest for the tests: rebuilt from guest/ when gcc, binutils and make
are there (CI installs them, so CI tests the rebuilt one), else the shipped copy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pyqom.guest import kernel_path

GUEST_SOURCE = Path(__file__).resolve().parents[2] / "guest"
#: the options both programs get for the guest's console and exit device
CONSOLE = ("-global", "isa-debugcon.iobase=0x402", "-device", "isa-debug-exit")
#: the first line of pyqom's guest: what comes before it is the firmware's (SeaBIOS's log)
BANNER = b"pyqom-guest 1\n"


def build_guest(directory: Path) -> str:
    """The guest built from source into ``directory``, or the shipped copy."""
    if all(shutil.which(tool) for tool in ("gcc", "ld", "objcopy", "make")) \
            and GUEST_SOURCE.is_dir():
        out = directory / "ospm.elf"
        subprocess.run(["make", "-s", "-C", str(GUEST_SOURCE), f"OUT={out}"], check=True,
                       capture_output=True)
        return str(out)
    shipped = kernel_path()
    if not os.path.exists(shipped):
        pytest.skip("no guest kernel: gcc, binutils and make build it (CI installs them)")
    return shipped


def pyqom_command() -> list[str]:
    return [sys.executable, "-m", "pyqom"]


def pyqom_env() -> dict[str, str]:
    return dict(os.environ, PYQOM_DISABLE_PLUGIN_AUTOLOAD="1")


def transcript(path: Path) -> bytes:
    """What the guest printed (from its banner on)."""
    data = path.read_bytes() if path.exists() else b""
    start = data.find(BANNER)
    return data[start:] if start >= 0 else b""
