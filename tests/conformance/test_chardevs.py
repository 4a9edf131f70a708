"""Monitor chardevs against real QEMU 7.2: bad specs and unusable addresses give
QEMU's lines and exit status, client mode and ``wait=on`` behave as QEMU's, one
client is served at a time, and a signal ends the run as QEMU ends it."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from qemu_oracle import qemu_or_skip
from sockets import free_port, wait_for

BASE = ["-machine", "pc", "-m", "1G", "-display", "none", "-nodefaults", "-S"]


@pytest.fixture
def env() -> Iterator[dict[str, str]]:
    root = str(Path(__file__).resolve().parents[2])
    yield {**os.environ, "PYQOM_DISABLE_PLUGIN_AUTOLOAD": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}


def _programs() -> list[tuple[str, list[str]]]:
    return [("qemu-system-x86_64", [qemu_or_skip(), "-accel", "tcg"]),
            ("pyqom", [sys.executable, "-m", "pyqom"])]


def _run(argv: list[str], env: dict[str, str], timeout: float = 20) -> tuple[int, str, str]:
    done = subprocess.run(argv, capture_output=True, timeout=timeout, env=env,
                          stdin=subprocess.DEVNULL)
    # Decoded by hand: text mode would turn a stray \r\n into \n unseen.
    return (done.returncode, done.stdout.decode(errors="surrogateescape"),
            done.stderr.decode(errors="surrogateescape"))


def _same(results: list[tuple[str, tuple[int, str, str]]]) -> None:
    (qemu_name, qemu), (mine_name, mine) = results
    assert (mine[0], mine[1], mine[2].replace(f"{mine_name}: ", "PROG: ")) == (
        qemu[0], qemu[1], qemu[2].replace(f"{qemu_name}: ", "PROG: "))


@pytest.mark.parametrize("option", [
    ["-monitor", "stdio,foo=bar"], ["-qmp", "stdio,foo=bar"], ["-qmp", "foo"],
    ["-qmp", "none"], ["-qmp", "unix:"], ["-qmp", "tcp:127.0.0.1"],
    ["-qmp", "tcp:127.0.0.1,server=on,wait=off"],
    ["-qmp", "unix:/nonexistent-dir/x.sock,server=on,wait=off"],
    ["-qmp", "tcp:no-such-host.invalid:4444,server=on,wait=off"],
    ["-qmp", "tcp:[::1]:4444,server=on,wait=off"], ["-qmp", "tcp:::1:4444,server=on,wait=off"],
    ["-qmp", "tcp:127.0.0.1:abc,server=on,wait=off"], ["-qmp", "tcp:127.0.0.1:abc,server=on"],
    ["-qmp", "unix:@TMP@/x.sock,server=on,wait=off,foo=bar"],
    ["-qmp", "unix:@TMP@/nothing.sock"], ["-qmp", "unix:@TMP@/nothing.sock,server=off"],
    ["-monitor", "stdio", "-qmp", "stdio"], ["-qmp", "stdio", "-qmp", "stdio"],
    ["-qmp"],
])
def test_refused_as_qemu(option: list[str], tmp_path: Path, env: dict[str, str]) -> None:
    option = [part.replace("@TMP@", str(tmp_path)) for part in option]
    _same([(name, _run([*argv, *BASE, *option], env)) for name, argv in _programs()])


def test_port_in_use_and_refused_client(tmp_path: Path, env: dict[str, str]) -> None:
    with socket.socket() as busy:
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        _same([(name, _run([*argv, *BASE, "-qmp", f"tcp:127.0.0.1:{port},server=on,wait=off"],
                           env)) for name, argv in _programs()])
    free = free_port()
    _same([(name, _run([*argv, *BASE, "-qmp", f"tcp:127.0.0.1:{free}"], env))
           for name, argv in _programs()])


def _read_until(sock: socket.socket, marker: bytes, limit: float = 10) -> bytes:
    data = b""
    sock.settimeout(limit)
    while marker not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signal_ends_the_run(signum: int, tmp_path: Path, env: dict[str, str]) -> None:
    """stderr names the sender, negotiated clients get SHUTDOWN ``host-signal``, status 0."""
    outcomes = []
    for name, argv in _programs():
        path = tmp_path / f"{name}.sock"
        process = subprocess.Popen([*argv, *BASE, "-qmp", f"unix:{path},server=on,wait=off"],
                                   env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        wait_for(process, path)
        client = socket.socket(socket.AF_UNIX)
        client.connect(str(path))
        _read_until(client, b"\r\n")
        client.sendall(b'{"execute":"qmp_capabilities"}\n')
        _read_until(client, b"\r\n")
        process.send_signal(signum)
        received = _read_until(client, b"host-signal")
        client.close()
        status = process.wait(20)
        stdout, stderr = process.communicate()
        outcomes.append((status, stdout, stderr.replace(f"{name}: ", "PROG: "),
                         b'"event": "SHUTDOWN", "data": {"guest": false, "reason": '
                         b'"host-signal"}}\r\n' in received, path.exists()))
    qemu, mine = outcomes
    assert mine == qemu
    assert qemu[3] and not qemu[4]


def test_client_mode_connects_out_and_wait_on_waits(tmp_path: Path,
                                                     env: dict[str, str]) -> None:
    """``-qmp unix:PATH`` connects to a listener and greets it; ``server=on`` alone
    says it waits and starts nothing before its first client."""
    for name, argv in _programs():
        listen_path = tmp_path / f"{name}-listen.sock"
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(str(listen_path))
        listener.listen(1)
        wait_path = tmp_path / f"{name}-wait.sock"
        later_path = tmp_path / f"{name}-later.sock"
        process = subprocess.Popen(
            [*argv, *BASE, "-qmp", f"unix:{wait_path},server=on",
             "-qmp", f"unix:{later_path},server=on,wait=off", "-qmp", f"unix:{listen_path}"],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True)
        try:
            wait_for(process, wait_path)
            time.sleep(0.5)
            assert not later_path.exists(), name       # start-up waits for the client
            waiting = socket.socket(socket.AF_UNIX)
            waiting.connect(str(wait_path))
            assert b'"QMP"' in _read_until(waiting, b"\r\n"), name
            listener.settimeout(10)
            outgoing, _ = listener.accept()
            greeting = _read_until(outgoing, b"\r\n")
            assert greeting.startswith(b'{"QMP": {"version": {"qemu": {"micro": 22'), name
            outgoing.sendall(b'{"execute":"qmp_capabilities"}\n{"execute":"query-status"}\n')
            assert _read_until(outgoing, b"prelaunch").endswith(
                b'{"return": {}}\r\n{"return": {"status": "prelaunch", "singlestep": false, '
                b'"running": false}}\r\n'), name
            outgoing.close()
            time.sleep(0.3)
            assert process.poll() is None, name         # the peer left; the run goes on
            waiting.close()
            process.send_signal(signal.SIGTERM)
            assert process.wait(20) == 0
            first_line = process.stderr.readline()
            assert first_line == (f"{name}: -qmp unix:{wait_path},server=on: info: QEMU waiting "
                                  f"for connection on: disconnected:unix:{wait_path},server=on\n")
        finally:
            listener.close()
            if process.poll() is None:
                process.kill()
                process.wait()


def test_one_client_at_a_time(tmp_path: Path, env: dict[str, str]) -> None:
    """A second client is queued: nothing until the first leaves, then a greeting
    and the answers to what it sent meanwhile."""
    transcripts = []
    for name, argv in _programs():
        path = tmp_path / f"{name}.sock"
        process = subprocess.Popen([*argv, *BASE, "-qmp", f"unix:{path},server=on,wait=off"],
                                   env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        try:
            wait_for(process, path)
            first = socket.socket(socket.AF_UNIX)
            first.connect(str(path))
            greeting = _read_until(first, b"\r\n")
            second = socket.socket(socket.AF_UNIX)
            second.connect(str(path))
            second.sendall(b'{"execute":"qmp_capabilities"}\n')
            second.settimeout(0.5)
            with pytest.raises(TimeoutError):
                second.recv(1)
            first.close()
            queued = _read_until(second, b"{}}\r\n")
            transcripts.append((greeting.count(b"\r\n"), queued.split(b"\r\n")[1:]))
            second.close()
        finally:
            process.kill()
            process.wait()
    assert transcripts[0] == transcripts[1] == (1, [b'{"return": {}}', b""])


def test_commands_of_a_client_that_hung_up_are_dropped(tmp_path: Path,
                                                      env: dict[str, str]) -> None:
    """A client sends a slow command, then another and hangs up: the one still
    queued at the hang-up is dropped, as QEMU drops it."""
    outcomes = []
    for name, argv in _programs():
        paths = [tmp_path / f"{name}-{which}.sock" for which in ("a", "b")]
        process = subprocess.Popen(
            [*argv, *BASE, *(arg for path in paths
                             for arg in ("-qmp", f"unix:{path},server=on,wait=off"))],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        try:
            wait_for(process, *paths)
            leaving = socket.socket(socket.AF_UNIX)
            leaving.connect(str(paths[0]))
            _read_until(leaving, b"\r\n")
            leaving.sendall(b'{"execute":"qmp_capabilities"}\n')
            _read_until(leaving, b"\r\n")
            # 4 GiB takes well over the 0.05 s before the next request on any host:
            # "queued" is sure to arrive while "slow" runs (had "slow" finished,
            # whether a request sent just before a hang-up runs is a race, in
            # QEMU as in pyqom).
            leaving.sendall(
                b'{"execute":"object-add","arguments":{"qom-type":"memory-backend-ram",'
                b'"id":"slow","size":4294967296,"prealloc":true}}\n')
            time.sleep(0.05)
            leaving.sendall(
                b'{"execute":"object-add","arguments":{"qom-type":"memory-backend-ram",'
                b'"id":"queued","size":1048576}}\n')
            leaving.close()
            time.sleep(0.05)
            watcher = socket.socket(socket.AF_UNIX)
            watcher.connect(str(paths[1]))
            _read_until(watcher, b"\r\n", limit=60)
            watcher.sendall(b'{"execute":"qmp_capabilities"}\n')
            _read_until(watcher, b"\r\n", limit=60)   # waits for the slow command
            deadline = time.monotonic() + 30    # the slow command may still be running
            while True:
                watcher.sendall(b'{"execute":"qom-list","arguments":{"path":"/objects"}}\n')
                listing = _read_until(watcher, b"\r\n", limit=30)
                if b'"slow"' in listing or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            time.sleep(0.3)    # had the queued command run, it would have by now
            watcher.sendall(b'{"execute":"qom-list","arguments":{"path":"/objects"}}\n')
            listing = _read_until(watcher, b"\r\n")
            outcomes.append((b'"slow"' in listing, b'"queued"' in listing))
            watcher.close()
        finally:
            process.kill()
            process.wait()
    qemu, mine = outcomes
    # Neither runs the request still queued at the hang-up.  (QEMU, when its
    # dispatcher had not taken "slow" yet, drops that one too; pyqom starts each
    # command as it comes.)
    assert mine == (True, False)
    assert not qemu[1], qemu


@pytest.mark.parametrize("option", ["-qmp", "-monitor"])
def test_stdio_at_end_of_input_keeps_running(option: str, env: dict[str, str]) -> None:
    """``-qmp stdio < /dev/null`` (or ``-monitor``): QEMU neither exits nor goes
    deaf-and-silent at the end of its input; it runs until signalled."""
    outcomes = []
    for name, argv in _programs():
        process = subprocess.Popen([*argv, *BASE, option, "stdio"], env=env,
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
        time.sleep(1.5)
        alive = process.poll() is None
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=20)
        stdout = re.sub(rb'"package": "[^"]*"', b'"package": ""', stdout)
        outcomes.append((alive, process.returncode, stdout,
                         stderr.replace(f"{name}: ".encode(), b"PROG: ")))
    assert outcomes[0][0] and outcomes[1] == outcomes[0]
