"""``pyqom`` as a process, driven like QEMU: qemu.qmp's QMPClient over a unix socket,
and raw QMP lines over stdio."""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from qemu.qmp import ExecuteError, QMPClient

BASE = ["-machine", "pc", "-display", "none", "-nodefaults", "-S",
        "-m", "1G,slots=3,maxmem=4G"]


def pyqom(*args: str, **kwargs) -> subprocess.Popen:
    env = dict(os.environ, PYQOM_DISABLE_PLUGIN_AUTOLOAD="1")
    return subprocess.Popen([sys.executable, "-m", "pyqom", *args], env=env,
                            stdin=kwargs.pop("stdin", subprocess.DEVNULL),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def wait_for(path: Path, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 20
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f"pyqom exited: {process.stderr.read()}")
        if time.monotonic() > deadline:
            raise AssertionError("pyqom did not open its QMP socket")
        time.sleep(0.05)


def test_qmp_client_over_a_unix_socket(tmp_path: Path) -> None:
    socket = tmp_path / "qmp.sock"
    process = pyqom(*BASE, "-qmp", f"unix:{socket},server=on,wait=off")
    try:
        wait_for(socket, process)

        async def session() -> None:
            client = QMPClient("test")
            await client.connect(str(socket))
            assert client.greeting._asdict()["QMP"]["version"]["qemu"] == {
                "micro": 22, "minor": 2, "major": 7}
            await client.execute("object-add", {"qom-type": "memory-backend-ram", "id": "mem1",
                                                "size": 1 << 30})
            await client.execute("device_add", {"driver": "pc-dimm", "id": "dimm1",
                                                "memdev": "mem1"})
            devices = await client.execute("query-memory-devices")
            assert devices[0]["data"]["addr"] == 4294967296
            with pytest.raises(ExecuteError) as err:
                await client.execute("object-del", {"id": "mem1"})
            assert str(err.value) == "object 'mem1' is in use, can not be deleted"
            with pytest.raises(ExecuteError) as err:
                await client.execute("device_add", {"driver": "pc-dimm", "memdev": "nosuch"})
            assert err.value.error_class == "DeviceNotFound"
            summary = await client.execute("query-memory-size-summary")
            assert summary == {"base-memory": 1 << 30, "plugged-memory": 1 << 30}
            await client.execute("quit")
            await client.disconnect()  # the connection is still up, as with QEMU

        asyncio.run(session())
        assert process.wait(timeout=20) == 0
        assert process.stderr.read() == ""
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_raw_qmp_over_stdio() -> None:
    lines = [{"execute": "qmp_capabilities", "id": 1},
             {"execute": "query-status"},
             {"execute": "nosuch"},
             {"execute": "quit"}]
    process = pyqom(*BASE, "-qmp", "stdio", stdin=subprocess.PIPE)
    out, err = process.communicate("".join(json.dumps(line) + "\n" for line in lines),
                                   timeout=30)
    replies = [json.loads(line) for line in out.splitlines()]
    assert replies[0]["QMP"]["capabilities"] == ["oob"]
    assert replies[1] == {"return": {}, "id": 1}
    assert replies[2] == {"return": {"status": "prelaunch", "singlestep": False,
                                     "running": False}}
    assert replies[3] == {"error": {"class": "CommandNotFound",
                                    "desc": "The command nosuch has not been found"}}
    assert replies[4]["event"] == "SHUTDOWN"
    assert replies[4]["data"] == {"guest": False, "reason": "host-qmp-quit"}
    assert replies[5] == {"return": {}}
    assert process.returncode == 0 and err == ""


def test_bad_command_line_exits_1_before_any_greeting() -> None:
    process = pyqom("-m", "1G,slots=2", "-qmp", "stdio", stdin=subprocess.PIPE)
    out, err = process.communicate("", timeout=30)
    assert (process.returncode, out, err) == (1, "", "pyqom: slots specified but no max-size\n")


def test_sigterm_without_monitors_ends_the_run() -> None:
    process = pyqom(*BASE)
    time.sleep(1.5)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 0
    sender = Path("/proc/self/cmdline").read_bytes().split(b"\0")[0].decode()
    assert process.stderr.read() == (
        f"pyqom: terminating on signal 15 from pid {os.getpid()} ({sender})\n")


def test_qmp_shell_works_against_pyqom(tmp_path: Path) -> None:
    shell = Path(sys.executable).parent / "qmp-shell"
    if not shell.exists():
        pytest.skip("qmp-shell (from qemu.qmp) is not installed next to this Python")
    socket = tmp_path / "qmp.sock"
    process = pyqom(*BASE, "-qmp", f"unix:{socket},server=on,wait=off")
    try:
        wait_for(socket, process)
        commands = ("object-add qom-type=memory-backend-ram id=mem1 size=1073741824\n"
                    "device_add driver=pc-dimm id=dimm1 memdev=mem1\n"
                    "query-memory-size-summary\n"
                    "quit\n")
        done = subprocess.run([str(shell), str(socket)], input=commands, capture_output=True,
                              text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stdout + done.stderr
        assert "Connected to QEMU 7.2.22" in done.stdout
        assert ('{"return": {"base-memory": 1073741824, "plugged-memory": 1073741824}}'
                in done.stdout)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_unix_socket_never_replaces_a_user_file(tmp_path: Path) -> None:
    """Beyond QEMU 7.2 (which replaces whatever is at the path): only a stale socket
    is removed; a regular file or a live socket stays, and bind's error is given."""
    precious = tmp_path / "notes.txt"
    precious.write_text("keep me")
    process = pyqom(*BASE, "-qmp", f"unix:{precious},server=on,wait=off")
    assert process.wait(timeout=20) == 1
    assert process.stderr.read() == (f"pyqom: -qmp unix:{precious},server=on,wait=off: Failed "
                                     f"to bind socket to {precious}: Address already in use\n")
    assert precious.read_text() == "keep me"
    live = tmp_path / "live.sock"
    first = pyqom(*BASE, "-qmp", f"unix:{live},server=on,wait=off")
    try:
        wait_for(live, first)
        second = pyqom(*BASE, "-qmp", f"unix:{live},server=on,wait=off")
        assert second.wait(timeout=20) == 1
        assert "Address already in use" in second.stderr.read()
        assert live.exists() and first.poll() is None
    finally:
        first.terminate()
        first.wait(timeout=20)
    assert not live.exists()
    stale = tmp_path / "stale.sock"
    leftover = socket.socket(socket.AF_UNIX)
    leftover.bind(str(stale))
    leftover.close()
    third = pyqom(*BASE, "-qmp", f"unix:{stale},server=on,wait=off")
    try:
        wait_for(stale, third)
        time.sleep(0.3)
        assert third.poll() is None
    finally:
        third.terminate()
        assert third.wait(timeout=20) == 0


def _fake_distribution(root: Path, module: str, source: str) -> dict[str, str]:
    """A distribution with one ``qom`` entry point, importable from ``root``."""
    (root / f"{module}.py").write_text(source)
    info = root / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[qom]\n{module} = {module}\n")
    env = dict(os.environ)
    env.pop("PYQOM_DISABLE_PLUGIN_AUTOLOAD", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    return env


@pytest.mark.parametrize(("source", "message"), [
    ("import no_such_module_anywhere\n",
     "plugin 'badplugin': cannot load badplugin: ModuleNotFoundError: No module named "
     "'no_such_module_anywhere'"),
    ("raise RuntimeError('broken\\nplugin')\n",
     "plugin 'badplugin': cannot load badplugin: RuntimeError: broken plugin"),
    ("from plugins import hookimpl\n\n@hookimpl\ndef qom_register_typez(registry):\n    pass\n",
     "plugin 'badplugin': unknown hook 'qom_register_typez'"),
])
def test_a_broken_plugin_is_one_line_naming_it(tmp_path: Path, source: str,
                                               message: str) -> None:
    env = _fake_distribution(tmp_path, "badplugin", source)
    done = subprocess.run([sys.executable, "-m", "pyqom", *BASE], env=env,
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert (done.returncode, done.stdout, done.stderr) == (1, "", f"pyqom: {message}\n")
    env["PYQOM_DISABLED_PLUGINS"] = "badplugin"     # blocked, it is never imported
    done = subprocess.run([sys.executable, "-m", "pyqom", *BASE, "-version"], env=env,
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert (done.returncode, done.stderr) == (0, "")


def test_a_signal_ends_the_run_during_a_long_command() -> None:
    """A signal while a command holds the event loop (an 8 GiB preallocation) ends
    pyqom within a moment, with QEMU's message and status 0, as it ends QEMU."""
    process = pyqom(*BASE, "-qmp", "stdio", stdin=subprocess.PIPE)
    assert process.stdout.readline().startswith('{"QMP"')
    process.stdin.write('{"execute":"qmp_capabilities"}\n')
    process.stdin.flush()
    assert process.stdout.readline() == '{"return": {}}\n'
    process.stdin.write('{"execute":"object-add","arguments":{"qom-type":"memory-backend-ram",'
                        '"id":"m","size":8589934592,"prealloc":true}}\n')
    process.stdin.flush()
    time.sleep(0.3)
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 0
    assert time.monotonic() - started < 5
    assert process.stderr.read().startswith("pyqom: terminating on signal 15 from pid ")


def test_a_long_command_does_not_freeze_the_other_monitors(tmp_path: Path) -> None:
    """While one client's 8 GiB preallocation runs, another monitor greets its client
    and echoes its typing; its command is answered after the long one."""
    qmp_path, hmp_path = tmp_path / "qmp.sock", tmp_path / "hmp.sock"
    process = pyqom(*BASE, "-qmp", f"unix:{qmp_path},server=on,wait=off",
                    "-monitor", f"unix:{hmp_path},server=on,wait=off")
    try:
        wait_for(hmp_path, process)
        slow = socket.socket(socket.AF_UNIX)
        slow.connect(str(qmp_path))
        slow.settimeout(60)
        reader = slow.makefile("rb")
        reader.readline()
        slow.sendall(b'{"execute":"qmp_capabilities"}\n')
        reader.readline()
        slow.sendall(b'{"execute":"object-add","arguments":{"qom-type":"memory-backend-ram",'
                     b'"id":"big","size":8589934592,"prealloc":true}}\n')
        sent = time.monotonic()
        time.sleep(0.05)
        human = socket.socket(socket.AF_UNIX)
        human.connect(str(hmp_path))
        human.settimeout(60)
        banner = b""
        while not banner.endswith(b"(qemu) "):
            banner += human.recv(4096)
        human.sendall(b"i")
        echoed = human.recv(4096)
        # The long command's reply is not there yet: the greeting and the echo
        # came while it ran (unless the whole preallocation was quicker than that).
        still_running = not select.select([slow], [], [], 0)[0]
        replied = reader.readline()
        answered = time.monotonic() - sent
        assert replied == b'{"return": {}}\r\n' and echoed == b"i\x1b[K"
        assert still_running or answered < 0.5, answered
        human.close()
        slow.close()
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.mark.parametrize("progress", [False, True])
def test_prealloc_progress_only_when_asked(progress: bool) -> None:
    """``-x-prealloc-progress`` (a pyqom addition) says how far a 1 GiB prealloc has
    come; without it stderr stays as QEMU's, empty."""
    extra = ["-x-prealloc-progress"] if progress else []
    done = subprocess.run(
        [sys.executable, "-m", "pyqom", *extra, *BASE, "-object",
         "memory-backend-ram,id=m,size=1G,prealloc=on", "-qmp", "stdio"],
        input='{"execute":"qmp_capabilities"}\n{"execute":"quit"}\n', capture_output=True,
        text=True, timeout=60, env=dict(os.environ, PYQOM_DISABLE_PLUGIN_AUTOLOAD="1"))
    assert done.returncode == 0
    lines = done.stderr.splitlines()
    if not progress:
        assert lines == []
        return
    percents = [int(line.removeprefix("pyqom: prealloc: ").removesuffix("% of 1024 MiB"))
                for line in lines]
    assert len(percents) >= 5 and percents == sorted(set(percents)) and percents[-1] == 100
