"""pyqom's OSPM guest for the tests: rebuilt from guest/ when gcc, binutils and make
are there (CI installs them, so CI tests the rebuilt one), else the shipped copy."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


@contextlib.contextmanager
def booted_with_qmp_stdio(program: list[str], args: list[str], out: Path, *,
                          cwd: Path | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """``program`` started with ``args`` and ``-qmp stdio``, negotiated, once the
    guest (console in ``out``) printed ``ready``; killed on the way out if still
    running."""
    process = subprocess.Popen([*program, *args, "-qmp", "stdio"], cwd=cwd, env=pyqom_env(),
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    assert process.stdin is not None and process.stdout is not None
    try:
        process.stdout.readline()
        process.stdin.write(b'{"execute":"qmp_capabilities"}\n')
        process.stdin.flush()
        process.stdout.readline()
        deadline = time.monotonic() + 30
        while b"ready\n" not in transcript(out) and time.monotonic() < deadline:
            time.sleep(0.01)
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


async def connect_qmp(name: str, sock: Path, timeout: float = 30) -> Any:
    """A qemu.qmp client connected to ``sock`` once the program listens there
    (the socket file exists a moment before ``listen``: a connect in between is
    refused)."""
    from qemu.qmp import QMPClient

    deadline = time.monotonic() + timeout
    while True:
        client = QMPClient(name)
        try:
            if sock.exists():
                await client.connect(str(sock))
                return client
        except Exception:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listens on {sock}")
        await asyncio.sleep(0.02)
