"""``-monitor stdio`` on a terminal, typed at like a person would, against real QEMU 7.2.

Both programs run in a pseudo-terminal of their own; the same keys go to each,
one key (or one short word) at a time, waiting for the output to settle in
between.  What the terminal receives must be the same bytes (readline's echo,
cursor movement, completion lists, command output, prompts), the terminal must
be in QEMU's mode while the monitor runs, and it must be back as it was after.
The keys stay within what both have (the commands and types pyqom models),
so completion candidates are the same sets.
"""

from __future__ import annotations

import os
import sys
import termios
from pathlib import Path

import pytest
from qemu_oracle import qemu_or_skip
from terminal import run_in_terminal

OPTIONS = ["-machine", "pc", "-m", "1G,slots=3,maxmem=4G", "-display", "none", "-nodefaults",
           "-S", "-monitor", "stdio"]

UP, DOWN, LEFT, RIGHT = b"\x1b[A", b"\x1b[B", b"\x1b[D", b"\x1b[C"

SESSIONS: dict[str, list[bytes]] = {
    "editing": [
        b"info", b" stat", LEFT, LEFT, b"X", b"\x01", b"\x05", b"\x7f", b"\x7f", b"us", b"\r",
        b"info status", b"\x01", RIGHT, RIGHT, b"\x1b[3~", b"\x04", b"\x1b[4~", b"\x7f",
        b"\x1b[1~", b"\x1b[F", b"\x1bOH", b"\x1bOF", b"\x15", b"\x0b", b"\x17", b"\x17",
        b"\x17", b"\r",
        b"\x04", b"\x04", b"info status", b"\x0c", b"\r",      # Ctrl-D on an empty line
        UP, UP, UP, DOWN, b"\x10", b"\x0e", b"\x0e", DOWN, b"\r",
        UP, b"\r", b"\xc3\xa9", b"\r", b"quit\r",
    ],
    "completion": [
        b"in", b"\t", b"memd", b"\t", b"\r", b"info memory-", b"\t", b"\r",
        b"info memory_", b"\t", b"\x15\x01\x0b", b"\x17\x17\x17", b"\r",
        b"object_add memory-backend-r", b"\t", b"id=m1,size=128M", b"\r",
        b"object_add memory-backend-f", b"\t", b"\x17\x17\r",
        b"object_add memory-backend-ram,id=m2,size=128M\r",
        b"object_del ", b"\t", b"m", b"\t", b"\x17", b"\x17", b"\r",
        b"device_add pc-d", b"\t", b"id=d1,memdev=m1", b"\r",
        b"device_add pc-dimm,id=d2,memdev=m2\r",
        b"device_del ", b"\t", b"\x17\x17\r", b"device_d", b"\t", b"\r",
        b"help device_d", b"\t", b"\r", b"qom-l", b"\t", b"/machine/peripheral", b"\r",
        b"info memory-devices\r", b"quit\r",
    ],
}


def _env() -> dict[str, str]:
    root = str(Path(__file__).resolve().parents[2])
    return {**os.environ, "PYQOM_DISABLE_PLUGIN_AUTOLOAD": "1", "TERM": "xterm",
            "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}


@pytest.mark.parametrize("name", list(SESSIONS))
def test_same_screen_as_qemu(name: str) -> None:
    qemu = qemu_or_skip()
    keys = SESSIONS[name]
    expected = run_in_terminal([qemu, "-accel", "tcg", *OPTIONS], keys, env=_env())
    actual = run_in_terminal([sys.executable, "-m", "pyqom", *OPTIONS], keys, env=_env())
    assert expected.status == 0
    assert actual.status == expected.status
    assert actual.output.split(b"\n") == expected.output.split(b"\n")
    assert actual.mode_running == expected.mode_running
    assert actual.mode_running != actual.mode_before
    assert actual.mode_after == actual.mode_before == expected.mode_after


def test_raw_mode_is_qemus() -> None:
    """Echo, canonical input and input translation off, signals and output processing on."""
    run = run_in_terminal([sys.executable, "-m", "pyqom", *OPTIONS], [b"quit\r"], env=_env())
    iflag, oflag, cflag, lflag, _, _, cc = run.mode_running
    assert not lflag & (termios.ECHO | termios.ICANON | termios.IEXTEN | termios.ECHONL)
    assert lflag & termios.ISIG and oflag & termios.OPOST
    assert not iflag & (termios.ICRNL | termios.IXON)
    assert cflag & termios.CSIZE == termios.CS8
    assert cc[termios.VMIN] in (1, b"\x01") and cc[termios.VTIME] in (0, b"\x00")
    assert run.status == 0 and run.mode_after == run.mode_before


def test_terminal_restored_after_a_signal() -> None:
    """Ctrl-C (ISIG stays on, as in QEMU) ends pyqom, and the terminal is given back."""
    run = run_in_terminal([sys.executable, "-m", "pyqom", *OPTIONS], [b"info st", b"\x03"],
                          env=_env())
    assert b"terminating on signal 2" in run.output
    assert run.status == 0 and run.mode_after == run.mode_before
