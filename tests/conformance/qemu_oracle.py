"""Real QEMU 7.2 as a test oracle, driven with qemu.qmp's client over a unix socket."""

from __future__ import annotations

import asyncio
import itertools
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from qemu.qmp import ExecuteError, QMPClient

QEMU = "qemu-system-x86_64"


def qemu_or_skip() -> str:
    """The QEMU binary, or skip the test with the reason."""
    path = shutil.which(QEMU)
    if path is None:
        pytest.skip(f"{QEMU} not installed (Debian: apt-get install qemu-system-x86);"
                    " CI installs it")
    version = subprocess.run([path, "--version"], capture_output=True, text=True).stdout
    if "version 7.2" not in version:
        pytest.skip(f"the oracle must be QEMU 7.2, found: {version.splitlines()[:1]}")
    return path


class QemuOracle:
    """One paused QEMU (``-S``, TCG) answering QMP commands synchronously."""

    def __init__(self, *args: str) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="pyqom-oracle-")
        self._socket = str(Path(self._dir.name) / "qmp.sock")
        self._loop = asyncio.new_event_loop()
        self._client = QMPClient("pyqom-oracle")
        self._process = subprocess.Popen(
            [qemu_or_skip(), "-machine", "pc", "-accel", "tcg", "-S", "-display", "none",
             "-nodefaults", *args, "-qmp", f"unix:{self._socket},server=on,wait=on"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._loop.run_until_complete(self._connect())

    async def _connect(self, timeout: float = 30) -> None:
        """Connect once QEMU listens: its socket file exists a moment before
        ``listen``, and a connect in between is refused (seen under load)."""
        deadline = time.monotonic() + timeout
        while True:
            if Path(self._socket).exists():
                try:
                    await self._client.connect(self._socket)
                    return
                except Exception:
                    if time.monotonic() > deadline or self._process.poll() is not None:
                        raise
                    self._client = QMPClient("pyqom-oracle")
            elif time.monotonic() > deadline or self._process.poll() is not None:
                raise TimeoutError(f"QEMU does not listen on {self._socket}")
            await asyncio.sleep(0.05)

    @property
    def pid(self) -> int:
        """The QEMU process's id (for reading its ``/proc`` entries)."""
        return self._process.pid

    def execute(self, command: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        """The reply as ``{"return": ...}`` or ``{"error": {"class", "desc"}}``."""
        try:
            value = self._loop.run_until_complete(self._client.execute(command, arguments))
        except ExecuteError as err:
            return {"error": {"class": err.error_class, "desc": str(err)}}
        return {"return": value}

    def close(self) -> None:
        try:
            self._loop.run_until_complete(self._client.execute("quit"))
        except Exception:
            pass
        try:
            self._loop.run_until_complete(self._client.disconnect())
        except (EOFError, OSError):
            pass  # QEMU closed the connection as it quit
        finally:
            self._loop.close()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._dir.cleanup()


def qemu_command_line(*args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    """Start QEMU 7.2 as :class:`QemuOracle` does, with ``args``; quit at once if it starts.

    For start-up errors: QEMU exits 1 and prints ``qemu-system-x86_64: ...``
    lines on stderr (warnings too when it starts).  The result carries
    ``returncode`` and ``stderr``.
    """
    commands = '{"execute": "qmp_capabilities"}\n{"execute": "quit"}\n'
    return subprocess.run(
        [qemu_or_skip(), "-machine", "pc", "-accel", "tcg", "-S", "-display", "none",
         "-nodefaults", *args, "-qmp", "stdio"],
        input=commands, capture_output=True, text=True, timeout=timeout)


def stderr_messages(stderr: str, args: tuple[str, ...] | list[str]) -> list[str]:
    """QEMU's stderr lines without ``qemu-system-x86_64: `` and any ``-option text: ``.

    Hint lines (no program prefix) are kept as they are.
    """
    prefixes = [f"{option} {value}: " for option, value in itertools.pairwise(args)
                if option.startswith("-")]
    messages = []
    for line in stderr.splitlines():
        line = line.removeprefix(f"{QEMU}: ")
        for prefix in prefixes:
            if line.startswith(prefix):
                line = line[len(prefix):]
                break
        messages.append(line)
    return messages
