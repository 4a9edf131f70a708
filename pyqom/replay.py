"""Replay a ``-x-record`` file (a pyqom addition, issue 14): a recorded session
becomes a regression test.

:func:`replay` starts a fresh program (pyqom by default, or any command line
such as ``["qemu-system-x86_64"]``) with the recorded options, each recorded
``-qmp`` monitor replaced by a unix socket of the replay's own (the bytes of
QMP are the same on every transport), then walks the recording in order:
it connects where a client connected, sends each line the client sent, reads
each line the program sent and compares it with the recorded one, and
disconnects where the client did.  It stops at the first difference.

Compared: the raw lines, with event timestamps blanked, the greeting's (and
``query-version``'s) ``package`` string blanked, and the answers whose list
order is GLib hash order in QEMU (``query-memdev``, ``qom-list``,
``qom-list-properties``) compared as multisets of entries.

``pyqom -x-replay FILE [-- PROGRAM ARGS...]`` is the command-line form (exit
status 0 when the replay matched, 1 at a difference);
:func:`assert_replays` is the pytest form.
"""

from __future__ import annotations

import json
import os
import re
import select
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

import attrs

from qom.reprs import FieldsValue

#: pyqom's own options, dropped for another program: (option, takes an argument)
PYQOM_ONLY_OPTIONS = {"-x-record": True, "-x-memory-map": True,
                      "-x-prealloc-progress": False}
#: monitor options the replay replaces by its own sockets
MONITOR_OPTIONS = ("-qmp", "-monitor")
#: commands whose answer lists are in GLib hash order in QEMU
HASH_ORDERED = frozenset({"query-memdev", "qom-list", "qom-list-properties"})

TIMESTAMP = re.compile(r'"timestamp": \{"seconds": -?\d+, "microseconds": -?\d+\}')
#: the ``package`` string of the greeting and of ``query-version``'s answer
PACKAGE = re.compile(r'^(\{"QMP": \{"version": \{.*|\{"return": \{"qemu": \{.*)'
                     r'"package": "(?:[^"\\]|\\.)*"')


@attrs.frozen(repr=False)
class Difference(FieldsValue):
    """The first place the replay differs from the recording.

    :ivar record: the recording's line number (1 is the header).
    :ivar monitor: which ``-qmp`` (from 0); ``connection``: which client.
    :ivar sent: the request the expected line answers (for an event, the last
        line sent on that connection; ``None`` before any).
    :ivar expected: the recorded line; ``got``: what the program sent, or a
        description in angle brackets (``<connection closed>``, ``<no answer>``).
    """

    record: int
    monitor: int
    connection: int
    sent: str | None
    expected: str
    got: str

    def describe(self, path: str) -> str:
        text = (f"{path}:{self.record}: first difference (monitor {self.monitor}, "
                f"connection {self.connection})\n")
        if self.sent is not None:
            text += f"  after sending: {self.sent.rstrip()}\n"
        return text + f"  expected: {self.expected.rstrip()}\n  got:      {self.got.rstrip()}\n"


@attrs.frozen(repr=False)
class ReplayResult(FieldsValue):
    """What a replay found: ``difference`` is ``None`` when every line matched.

    :ivar matched: how many recorded output lines matched.
    :ivar stderr: what the program wrote on stderr.
    """

    matched: int
    difference: Difference | None
    stderr: str

    @property
    def ok(self) -> bool:
        return self.difference is None


def read_recording(path: str | Path) -> tuple[list[str], list[tuple[int, dict[str, Any]]]]:
    """The recorded argv and the steps, each with its line number in the file."""
    lines = Path(path).read_text(encoding="ascii").splitlines()
    if not lines:
        raise ValueError(f"{path}: empty recording")
    header = json.loads(lines[0])
    if not isinstance(header, dict) or header.get("pyqom-record") != 1:
        raise ValueError(f"{path}: not a pyqom recording (no header line)")
    steps = [(number, json.loads(text)) for number, text in enumerate(lines[1:], start=2)
             if text.strip()]
    return list(header["argv"]), steps


def replay_options(argv: Sequence[str], sockets: Sequence[str], *, pyqom: bool) -> list[str]:
    """The recorded options with the monitors replaced by ``sockets`` (one
    ``-qmp unix:...,server=on,wait=off`` per recorded QMP monitor), and for
    another program than pyqom, pyqom's own options left out."""
    options: list[str] = []
    index = 0
    while index < len(argv):
        option = argv[index]
        name = "-" + option.lstrip("-")
        if name in MONITOR_OPTIONS or name == "-x-record":
            index += 2
            continue
        if not pyqom and name in PYQOM_ONLY_OPTIONS:
            index += 2 if PYQOM_ONLY_OPTIONS[name] else 1
            continue
        options.append(option)
        index += 1
    for path in sockets:
        options += ["-qmp", f"unix:{path},server=on,wait=off"]
    return options


def _blank(line: str) -> str:
    return PACKAGE.sub(r'\1"package": ""', TIMESTAMP.sub(
        '"timestamp": {"seconds": 0, "microseconds": 0}', line))


def _is_reply(line: str) -> bool:
    try:
        value = json.loads(line)
    except ValueError:
        return False
    return isinstance(value, dict) and ("return" in value or "error" in value)


def _command_of(line: str | None) -> str | None:
    try:
        value = json.loads(line) if line else None
    except ValueError:
        return None
    return value.get("execute") if isinstance(value, dict) else None


def lines_match(expected: str, got: str, sent: str | None) -> bool:
    """Whether ``got`` matches the recorded ``expected`` (see the module docs)."""
    expected, got = _blank(expected), _blank(got)
    if expected == got:
        return True
    if _command_of(sent) in HASH_ORDERED:
        try:
            old, new = json.loads(expected), json.loads(got)
        except ValueError:
            return False
        if isinstance(old, dict) and isinstance(new, dict) and old.keys() == new.keys():
            entries = [sorted(json.dumps(item) for item in reply.get("return", []))
                       if isinstance(reply.get("return"), list) else reply
                       for reply in (old, new)]
            return entries[0] == entries[1] and expected.endswith("\r\n") == got.endswith("\r\n")
    return False


class _Client:
    """One replayed QMP connection: lines in with a deadline, bytes out."""

    def __init__(self, path: str, deadline: float, running: Callable[[], bool]) -> None:
        while True:
            self.sock = socket.socket(socket.AF_UNIX)
            try:
                self.sock.connect(path)
                break
            except OSError:   # not listening yet: the program is still starting
                self.sock.close()
                if time.monotonic() > deadline or not running():
                    raise
                time.sleep(0.02)
        self.buffer = b""
        self.closed = False
        self.sent: list[str] = []
        self.replies = 0

    def send(self, line: str) -> None:
        self.sent.append(line)
        self.sock.sendall(line.encode("latin-1"))

    def request_of(self, recorded: str) -> str | None:
        """The line a recorded reply answers: the n-th line sent for the n-th
        reply (one request per line, as clients send them); for an event or the
        greeting, the last line sent."""
        if not _is_reply(recorded):
            return self.sent[-1] if self.sent else None
        self.replies += 1
        if self.replies <= len(self.sent):
            return self.sent[self.replies - 1]
        return self.sent[-1] if self.sent else None

    def read_line(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if self.closed or left <= 0:
                return "<connection closed>" if self.closed else "<no answer>"
            if select.select([self.sock], [], [], left)[0]:
                data = self.sock.recv(65536)
                if not data:
                    self.closed = True
                self.buffer += data
        line, _, self.buffer = self.buffer.partition(b"\n")
        return (line + b"\n").decode("latin-1")

    def close(self) -> None:
        self.sock.close()


def replay(path: str | Path, program: Sequence[str] | None = None, *,
           timeout: float = 10.0) -> ReplayResult:
    """Replay the recording at ``path`` against a fresh ``program`` (default:
    this Python's pyqom) and return what it found."""
    argv, steps = read_recording(path)
    monitors = sorted({step["monitor"] for _, step in steps})
    is_pyqom = program is None
    command = list(program) if program is not None else [sys.executable, "-m", "pyqom"]
    with tempfile.TemporaryDirectory(prefix="pyqom-replay-") as scratch:
        sockets = {monitor: os.path.join(scratch, f"qmp{monitor}.sock") for monitor in monitors}
        options = replay_options(argv, [sockets[m] for m in monitors], pyqom=is_pyqom)
        stderr_path = Path(scratch) / "stderr"
        with open(stderr_path, "wb") as stderr:
            process = subprocess.Popen([*command, *options], stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=stderr)
        difference: Difference | None = Difference(0, 0, 0, None, "<a replay>", "<none>")
        try:
            matched, difference = _walk(steps, sockets, timeout,
                                        lambda: process.poll() is None)
        finally:
            _stop(process, grace=5.0 if difference is None else 0.0)
        return ReplayResult(matched, difference, stderr_path.read_text(errors="replace"))


def _walk(steps: list[tuple[int, dict[str, Any]]], sockets: dict[int, str],
          timeout: float, running: Callable[[], bool]) -> tuple[int, Difference | None]:
    clients: dict[int, _Client] = {}
    matched = 0
    try:
        for number, step in steps:
            monitor, connection, kind = step["monitor"], step["connection"], step["step"]
            if kind == "connect":
                try:
                    clients[connection] = _Client(sockets[monitor], time.monotonic() + timeout,
                                                  running)
                except OSError as err:
                    return matched, Difference(number, monitor, connection, None,
                                               "<a connection>", f"<cannot connect: {err}>")
                continue
            client = clients[connection]
            if kind == "in":
                try:
                    client.send(step["line"])
                except OSError:
                    return matched, Difference(number, monitor, connection, step["line"],
                                               "<the line taken>", "<connection closed>")
            elif kind == "out":
                got = client.read_line(timeout)
                request = client.request_of(step["line"])
                if not lines_match(step["line"], got, request):
                    return matched, Difference(number, monitor, connection, request,
                                               step["line"], got)
                matched += 1
            elif kind == "close":
                client.close()
    finally:
        for client in clients.values():
            client.close()
    return matched, None


def _stop(process: subprocess.Popen[bytes], grace: float) -> None:
    """Let a program that was told to quit end (``grace`` seconds); end one that
    was not, or whose replay went wrong."""
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def assert_replays(path: str | Path, program: Sequence[str] | None = None, *,
                   timeout: float = 10.0) -> ReplayResult:
    """For pytest: replay ``path`` and fail with the first difference."""
    result = replay(path, program, timeout=timeout)
    if result.difference is not None:
        raise AssertionError(result.difference.describe(str(path))
                             + (f"  stderr: {result.stderr.strip()}\n" if result.stderr else ""))
    return result


def _split(args: Sequence[str]) -> Iterator[list[str]]:
    if "--" in args:
        at = list(args).index("--")
        yield list(args[:at])
        yield list(args[at + 1:])
    else:
        yield list(args)
        yield []


def replay_main(args: Sequence[str], out: TextIO, err: TextIO) -> int:
    """``pyqom -x-replay FILE [-- PROGRAM ARGS...]``: 0 when it matched, 1 otherwise."""
    own, program = _split(args)
    if len(own) != 1:
        err.write("pyqom: -x-replay FILE [-- PROGRAM ARGS...]\n")
        return 1
    try:
        result = replay(own[0], program or None)
    except (OSError, ValueError, KeyError) as error:
        err.write(f"pyqom: -x-replay {own[0]}: {error}\n")
        return 1
    if result.difference is None:
        out.write(f"{own[0]}: replayed, {result.matched} lines matched\n")
        return 0
    out.write(result.difference.describe(own[0]))
    return 1
