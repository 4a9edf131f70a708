"""QMP on a socket, byte for byte against real QEMU 7.2: the greeting, every reply and
every event arrive as the same bytes, ``\\r\\n`` line endings included (libvirt's
monitor parser waits for them).  Only the greeting's ``package`` and the values of
event timestamps are blanked; nothing is parsed before comparing.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from qemu_oracle import qemu_or_skip
from sockets import connect as connect_to
from sockets import free_port, wait_for

OPTIONS = ["-machine", "pc", "-m", "1G,slots=3,maxmem=4G", "-display", "none", "-nodefaults",
           "-S"]

#: (bytes sent, how many lines the answer has): replies, errors, events, a parse error
STEPS: list[tuple[bytes, int]] = [
    (b'{"execute":"qmp_capabilities"}\n', 1),
    (b'{"execute":"query-status","id":"a"}\n', 1),
    (b'{"execute":"object-add","arguments":{"qom-type":"memory-backend-ram","id":"m1",'
     b'"size":134217728}}\n', 1),
    (b'{"execute":"device_add","arguments":{"driver":"pc-dimm","id":"d1","memdev":"m1"}}\n',
     1),
    (b'{"execute":"query-memory-devices"}\n', 1),
    (b'{"execute":"device_add","arguments":{"driver":"pc-dimm","id":"d1","memdev":"m1"}}\n',
     1),
    (b'{"execute":"human-monitor-command","arguments":{"command-line":"info memdev"}}\n', 1),
    (b'{"execute":"nosuch","id":[1,{"x":"\\u00e9"}]}\n', 1),
    (b'{"execute":\n', 0),
    (b'}\n', 1),
    (b'{"execute":"cont"}\n', 2),     # RESUME, then the return
    (b'{"execute":"stop"}\n', 2),     # STOP, then the return
    # The return, then SHUTDOWN.  No newline after it: QEMU reads its monitor a
    # byte at a time and exits right after quit, so a byte it never read would
    # make the kernel reset the TCP connection before the client reads the reply.
    (b'{"execute":"quit"}', 2),
]

TIMESTAMP = re.compile(rb'"timestamp": \{"seconds": \d+, "microseconds": \d+\}')
PACKAGE = re.compile(rb'("package": )"(?:[^"\\]|\\.)*"')


def _blank(data: bytes) -> bytes:
    data = TIMESTAMP.sub(b'"timestamp": {"seconds": 0, "microseconds": 0}', data)
    return PACKAGE.sub(rb'\1"PACKAGE"', data)


def _read_lines(sock: socket.socket, count: int, buffer: bytearray) -> bytes:
    """Exactly ``count`` lines (each up to its ``\\n``), as raw bytes."""
    deadline = time.monotonic() + 20
    while buffer.count(b"\n") < count:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            break
        buffer += chunk
    end = 0
    for _ in range(count):
        end = buffer.index(b"\n", end) + 1
    taken = bytes(buffer[:end])
    del buffer[:end]
    return taken


def _transcript(argv: list[str], address: str, target: str | tuple[str, int],
                env: dict[str, str],
                ready: Path | None) -> list[bytes]:
    process = subprocess.Popen([*argv, *OPTIONS, "-qmp", address], env=env,
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    try:
        if ready is not None:
            wait_for(process, ready)
        sock = connect_to(target)
        buffer = bytearray()
        transcript = [_read_lines(sock, 1, buffer)]
        for data, count in STEPS:
            sock.sendall(data)
            transcript.append(_read_lines(sock, count, buffer))
        sock.settimeout(5)
        while chunk := sock.recv(65536):   # nothing follows quit's SHUTDOWN
            buffer += chunk
        transcript.append(bytes(buffer))
        sock.close()
        assert process.wait(20) == 0
        return transcript
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.fixture
def env() -> Iterator[dict[str, str]]:
    root = str(Path(__file__).resolve().parents[2])
    yield {**os.environ, "PYQOM_DISABLE_PLUGIN_AUTOLOAD": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}


@pytest.mark.parametrize("transport", ["unix", "tcp"])
def test_same_bytes_as_qemu(transport: str, tmp_path: Path, env: dict[str, str]) -> None:
    qemu = qemu_or_skip()
    transcripts = []
    for name, argv in (("qemu", [qemu, "-accel", "tcg"]),
                       ("pyqom", [sys.executable, "-m", "pyqom"])):
        if transport == "unix":
            path = tmp_path / f"{name}.sock"
            address, target, ready = f"unix:{path},server=on,wait=off", str(path), path
        else:
            port = free_port()
            address, target, ready = (f"tcp:127.0.0.1:{port},server=on,wait=off",
                                      ("127.0.0.1", port), None)
        transcripts.append([_blank(chunk) for chunk in _transcript(argv, address, target,
                                                                   env, ready)])
    expected, actual = transcripts
    assert all(line.endswith(b"\r\n") for chunk in expected[:-1]
               for line in chunk.splitlines(keepends=True))
    for number, (mine, theirs) in enumerate(zip(actual, expected, strict=True)):
        assert (number, mine) == (number, theirs)
