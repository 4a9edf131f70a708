"""``-x-record FILE`` (a pyqom addition, issue 14): every QMP exchange of a run,
written as it happens, for :mod:`pyqom.replay` to play back.

The file is JSON Lines.  The first line is the header::

    {"pyqom-record": 1, "argv": ["-m", "1G,slots=2,maxmem=4G", "-qmp", "stdio", ...]}

then one record per step, in the order the steps happened::

    {"monitor": 0, "connection": 0, "step": "connect"}
    {"monitor": 0, "connection": 0, "step": "out", "line": "{\\"QMP\\": ...}\\r\\n"}
    {"monitor": 0, "connection": 0, "step": "in", "line": "{\\"execute\\": ...}\\n"}
    {"monitor": 0, "connection": 0, "step": "close"}

``monitor`` counts the ``-qmp`` options from 0, ``connection`` counts the
clients of the whole run from 0.  ``line`` is one raw line with its ending,
bytes as Latin-1 code points (so any byte survives JSON); what a client sends
is recorded as it arrives, split at each ``\\n``, and the part of a line still
unfinished when the client goes is recorded as a last line without ending.
Events are ``out`` lines like replies, so the file tells which came first.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from typing import IO, Any

from plugins.monitor.transport import Session, SessionFactory

RECORD_VERSION = 1


class Recorder:
    """Writes one run's QMP exchanges to ``path`` (truncated), line-buffered, so
    what happened before a crash is in the file.

    :param argv: the command line of the run (the header).
    """

    def __init__(self, path: str, argv: Sequence[str]) -> None:
        self._file: IO[str] = open(path, "w", encoding="ascii", buffering=1)
        self._lock = threading.Lock()
        self._connections = 0
        self._put({"pyqom-record": RECORD_VERSION, "argv": list(argv)})

    def _put(self, record: dict[str, Any]) -> None:
        # Output may come from the command thread and input from the loop's.
        with self._lock:
            if not self._file.closed:
                self._file.write(json.dumps(record) + "\n")

    def step(self, monitor: int, connection: int, step: str, line: str | None = None) -> None:
        """Record one step of one connection."""
        record: dict[str, Any] = {"monitor": monitor, "connection": connection, "step": step}
        if line is not None:
            record["line"] = line
        self._put(record)

    def wrap(self, factory: SessionFactory, monitor: int) -> SessionFactory:
        """A session factory that records every session ``factory`` makes."""
        def make(write: Callable[[bytes], None]) -> Session:
            with self._lock:
                connection = self._connections
                self._connections += 1
            return RecordedSession(self, monitor, connection, factory, write)

        return make

    def close(self) -> None:
        with self._lock:
            self._file.close()


class _Lines:
    """Splits a byte stream into lines, each kept with its ``\\n``."""

    def __init__(self, emit: Callable[[str], None]) -> None:
        self._emit = emit
        self._pending = b""

    def feed(self, data: bytes) -> None:
        data = self._pending + data
        *lines, self._pending = data.split(b"\n")
        for line in lines:
            self._emit((line + b"\n").decode("latin-1"))

    def flush(self) -> None:
        if self._pending:
            self._emit(self._pending.decode("latin-1"))
            self._pending = b""


class RecordedSession:
    """A session that records its input and output, then hands both on."""

    def __init__(self, recorder: Recorder, monitor: int, connection: int,
                 factory: SessionFactory, write: Callable[[bytes], None]) -> None:
        self._recorder = recorder
        self._where = (monitor, connection)
        self._write = write
        self._in = _Lines(lambda line: recorder.step(*self._where, "in", line))
        self._out = _Lines(lambda line: recorder.step(*self._where, "out", line))
        self._out_lock = threading.Lock()
        recorder.step(monitor, connection, "connect")
        self._session = factory(self._recorded_write)

    def _recorded_write(self, data: bytes) -> None:
        with self._out_lock:
            self._out.feed(data)
        self._write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "peer_gone":
            setattr(self._session, name, value)
        else:
            object.__setattr__(self, name, value)

    def start(self) -> None:
        self._session.start()

    def feed(self, data: bytes) -> None:
        self._in.feed(data)
        self._session.feed(data)

    def close(self) -> None:
        self._in.flush()
        with self._out_lock:
            self._out.flush()
        self._session.close()
        self._recorder.step(*self._where, "close")

    @property
    def finished(self) -> bool:
        return self._session.finished
