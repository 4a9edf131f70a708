"""Socket helpers for the tests that start QEMU and pyqom as processes."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A loopback TCP port nothing listens on (now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(process: subprocess.Popen[Any], *paths: Path, timeout: float = 10) -> None:
    """Wait until every path exists (a unix socket is listening), or the process ended."""
    deadline = time.monotonic() + timeout
    while not all(path.exists() for path in paths) and process.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.025)


def connect(target: str | tuple[str, int], timeout: float = 10) -> socket.socket:
    """Connect to a unix path or a (host, port), retrying until something listens."""
    family = socket.AF_UNIX if isinstance(target, str) else socket.AF_INET
    deadline = time.monotonic() + timeout
    while True:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.connect(target)
            return sock
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            if time.monotonic() > deadline:
                raise AssertionError(f"nothing listens on {target}") from None
            time.sleep(0.025)
