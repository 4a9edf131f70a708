"""Drive a monitor program in a pseudo-terminal as a person at a keyboard would."""

from __future__ import annotations

import os
import pty
import select
import signal
import termios
import time
from collections.abc import Sequence
from typing import Any

import attrs


@attrs.frozen
class TerminalRun:
    """What a program showed on its terminal.

    :ivar output: every byte it wrote, as the terminal received it.
    :ivar mode_running: the terminal's termios while the program ran.
    :ivar mode_before: the terminal's termios before the program started.
    :ivar mode_after: the terminal's termios after it exited.
    :ivar status: the exit status.
    """

    output: bytes
    mode_before: list[Any]
    mode_running: list[Any]
    mode_after: list[Any]
    status: int


def _drain(fd: int, out: bytearray, quiet: float, limit: float) -> None:
    """Read until nothing came for ``quiet`` seconds (at most ``limit`` seconds)."""
    deadline = time.monotonic() + limit
    last = time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - last < quiet:
        ready, _, _ = select.select([fd], [], [], 0.02)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: the program closed the terminal
                return
            if not chunk:
                return
            out += chunk
            last = time.monotonic()


def run_in_terminal(argv: Sequence[str], keys: Sequence[bytes], *,
                    env: dict[str, str] | None = None, ready: bytes = b"(qemu) ",
                    timeout: float = 30) -> TerminalRun:
    """Start ``argv`` on a new pseudo-terminal (80x24), wait for ``ready``, type
    each entry of ``keys`` once the output of the previous one has settled, and
    wait for the program to exit."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the terminal is its stdin, stdout and stderr
        try:
            os.execvpe(argv[0], list(argv), env if env is not None else dict(os.environ))
        finally:
            os._exit(127)
    out = bytearray()
    try:
        mode_before = termios.tcgetattr(fd)
        deadline = time.monotonic() + timeout
        while ready not in out and time.monotonic() < deadline:
            _drain(fd, out, 0.05, 0.5)
        mode_running = termios.tcgetattr(fd)
        for key in keys:
            os.write(fd, key)
            _drain(fd, out, 0.15, 5)
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            _drain(fd, out, 0.05, 0.2)
        else:
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
        mode_after = termios.tcgetattr(fd)
        _drain(fd, out, 0.05, 0.5)
        return TerminalRun(bytes(out), mode_before, mode_running, mode_after,
                           os.waitstatus_to_exitcode(status))
    finally:
        os.close(fd)
