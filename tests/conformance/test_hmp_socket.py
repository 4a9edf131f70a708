"""HMP over a unix socket, over plain TCP and over telnet, keys sent one at a time,
against real QEMU 7.2: the client receives the same bytes (telnet negotiation,
banner, readline echo, completion, history, output, prompts)."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from qemu_oracle import qemu_or_skip
from sockets import connect, free_port

OPTIONS = ["-machine", "pc", "-m", "1G,slots=3,maxmem=4G", "-display", "none", "-nodefaults",
           "-S"]

KEYS = [b"info memory_s", b"\t", b"\r", b"\x1b[A", b"\x1b[D", b"\x7f", b"r", b"\r",
        b"object_add memory-backend-r", b"\t", b"id=m1,size=64M\r",
        b"device_add pc-d", b"\t", b"id=d1,memdev=m1\r", b"device_del ", b"\t", b"\x17\x17\r",
        b"object_del ", b"\t", b"\x15\x17\x17", b"\r", b"quit\r"]


def _drain(sock: socket.socket, quiet: float = 0.15, limit: float = 5) -> bytes:
    out = bytearray()
    deadline = time.monotonic() + limit
    last = time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - last < quiet:
        ready, _, _ = select.select([sock], [], [], 0.02)
        if ready:
            chunk = sock.recv(65536)
            if not chunk:
                break
            out += chunk
            last = time.monotonic()
    return bytes(out)


def _session(argv: list[str], transport: str, tmp: Path, env: dict[str, str]) -> list[bytes]:
    if transport == "unix":
        path = tmp / f"{Path(argv[0]).name}.sock"
        address, target = f"unix:{path},server=on,wait=off", str(path)
    else:
        port = free_port()
        address, target = f"{transport}:127.0.0.1:{port},server=on,wait=off", ("127.0.0.1", port)
    process = subprocess.Popen([*argv, *OPTIONS, "-monitor", address], env=env,
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        sock = connect(target)
        transcript = [_drain(sock, quiet=0.3)]
        for key in KEYS:
            if transport == "telnet":   # a telnet client's commands are not input
                key = key.replace(b"\x17", b"\xff\xfb\x18\x17").replace(b"\x15", b"\xff\xff")
            sock.sendall(key)
            transcript.append(_drain(sock))
        sock.close()
        assert process.wait(20) == 0
        return transcript
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("transport", ["unix", "tcp", "telnet"])
def test_same_bytes_as_qemu(transport: str, tmp_path: Path) -> None:
    qemu = qemu_or_skip()
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYQOM_DISABLE_PLUGIN_AUTOLOAD": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    expected = _session([qemu, "-accel", "tcg"], transport, tmp_path, env)
    actual = _session([sys.executable, "-m", "pyqom"], transport, tmp_path, env)
    assert b"QEMU 7.2.22 monitor" in expected[0]
    # Whole streams, line by line: how the bytes were split in time depends on load.
    assert b"".join(actual).split(b"\n") == b"".join(expected).split(b"\n")
