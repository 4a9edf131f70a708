"""The guest's debug console on a socket chardev, against real QEMU 7.2:
``-chardev socket,...`` with ``-device isa-debugcon,chardev=``, and ``-debugcon
unix:...``; with ``wait=on`` start-up waits for the client (QEMU's line on
stderr) and the client gets every byte; the refusals of bad socket options."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest
from guest_kernel import BANNER, build_guest, pyqom_command, pyqom_env
from qemu_oracle import qemu_or_skip

BASE = ["-machine", "pc", "-accel", "tcg", "-display", "none", "-nodefaults", "-m", "128M"]


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> str:
    return build_guest(tmp_path_factory.mktemp("guest"))


def _console_over_socket(program: list[str], name: str, kernel: str, path: Path,
                         form: str) -> tuple[int, bytes, bytes]:
    if form == "chardev":
        console = ["-chardev", f"socket,id=c,path={path},server=on,wait=on",
                   "-device", "isa-debugcon,iobase=0x402,chardev=c"]
    else:
        console = ["-debugcon", f"unix:{path},server=on,wait=on",
                   "-global", "isa-debugcon.iobase=0x402"]
    process = subprocess.Popen(
        [*program, *BASE, "-kernel", kernel, "-append", "exit=1", "-device", "isa-debug-exit",
         *console], env=pyqom_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert process.stderr is not None
    try:
        # The socket file exists a moment before the program listens on it.
        deadline = time.monotonic() + 30
        while True:
            client = socket.socket(socket.AF_UNIX)
            client.settimeout(30)
            try:
                client.connect(str(path))
                break
            except (FileNotFoundError, ConnectionRefusedError):
                client.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        data = b""
        while chunk := client.recv(65536):
            data += chunk
        client.close()
        status = process.wait(30)
        errors = process.stderr.read().replace(str(path).encode(), b"SOCKET")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return status, errors.replace(b"qemu-system-x86_64: ", b"pyqom: "), data[data.find(BANNER):]


@pytest.mark.parametrize("form", ["chardev", "debugcon"])
def test_the_console_on_a_waiting_unix_socket(kernel: str, tmp_path: Path, form: str) -> None:
    qemu = qemu_or_skip()
    theirs = _console_over_socket([qemu], "qemu", kernel, tmp_path / "q.sock", form)
    mine = _console_over_socket(pyqom_command(), "pyqom", kernel, tmp_path / "p.sock", form)
    assert theirs[0] == 3 and theirs[2].startswith(BANNER) and theirs[2].endswith(b"exit 0x1\n")
    assert b"info: QEMU waiting for connection on: disconnected:unix:SOCKET,server=on" \
        in theirs[1]
    assert mine == theirs
    assert not (tmp_path / "p.sock").exists()     # removed when pyqom ends


def test_without_a_client_the_output_is_dropped(kernel: str, tmp_path: Path) -> None:
    qemu = qemu_or_skip()
    for program, path in (([qemu], tmp_path / "q.sock"), (pyqom_command(), tmp_path / "p.sock")):
        done = subprocess.run(
            [*program, *BASE, "-kernel", kernel, "-append", "exit=2", "-device",
             "isa-debug-exit", "-chardev", f"socket,id=c,path={path},server=on,wait=off",
             "-device", "isa-debugcon,iobase=0x402,chardev=c"],
            env=pyqom_env(), capture_output=True, timeout=60)
        assert (done.returncode, done.stdout, done.stderr) == (5, b"", b"")


@pytest.mark.parametrize("spec", [
    "socket,id=c",
    "socket,id=c,host=127.0.0.1",
    "socket,id=c,path={tmp}/missing/s,server=on,wait=off",
    "socket,id=c,path={tmp}/s,bogus=1",
])
def test_socket_chardev_refusals_are_qemus(tmp_path: Path, spec: str) -> None:
    qemu = qemu_or_skip()
    text = spec.format(tmp=tmp_path)
    theirs = subprocess.run([qemu, *BASE, "-S", "-chardev", text], capture_output=True,
                            timeout=30)
    mine = subprocess.run([*pyqom_command(), *BASE, "-S", "-chardev", text],
                          capture_output=True, timeout=30, env=pyqom_env())
    assert theirs.returncode == mine.returncode == 1
    assert mine.stderr == theirs.stderr.replace(b"qemu-system-x86_64: ", b"pyqom: ")
    assert not os.path.exists(tmp_path / "s")
