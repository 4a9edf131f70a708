"""The QMP protocol: byte-level session checks, then a real qemu.qmp client over sockets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from qemu.qmp import ExecuteError, QMPClient

from plugins.monitor import EventLoop, VmControl, serve_qmp

NEG = '{"error": {"class": "CommandNotFound", "desc": "Expecting capabilities negotiation with \'qmp_capabilities\'"}}\r\n'


def test_greeting_and_negotiation(control: VmControl) -> None:
    from monitor_wire import Wire

    wire = Wire(control)
    assert wire.out[0] == (b'{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7},'
                           b' "package": "pyqom ' + wire.out[0].split(b'"pyqom ')[1])
    assert wire.out[0].endswith(b'"capabilities": ["oob"]}}\r\n')
    assert wire.send(b'{"execute":"query-status"}\n') == [NEG]
    assert wire.send(b'{"execute":"nosuch"}\n') == [NEG]
    assert wire.send(b'{"foo":1}\n') == [
        '{"error": {"class": "GenericError", "desc": "QMP input member \'foo\' is unexpected"}}\r\n']
    assert wire.send(b'{"execute":"qmp_capabilities","arguments":{"enable":["foo"]}}\n') == [
        '{"error": {"class": "GenericError", "desc": "Parameter \'null\' does not accept value \'foo\'"}}\r\n']
    assert wire.send(b'{"execute":"qmp_capabilities","arguments":{"enable":1}}\n') == [
        '{"error": {"class": "GenericError", "desc": "Invalid parameter type for \'enable\', expected: array"}}\r\n']
    assert wire.send(b'{"execute":"qmp_capabilities","id":5}\n') == ['{"return": {}, "id": 5}\r\n']
    assert wire.send(b'{"execute":"qmp_capabilities"}\n') == [
        '{"error": {"class": "CommandNotFound", "desc": "Capabilities negotiation is already complete, command ignored"}}\r\n']


@pytest.mark.parametrize(("data", "reply"), [
    # Recorded from QEMU 7.2.22.
    (b'1\n', '{"error": {"class": "GenericError", "desc": "QMP input must be a JSON object"}}'),
    (b'"str"\n', '{"error": {"class": "GenericError", "desc": "QMP input must be a JSON object"}}'),
    (b'[]\n', '{"error": {"class": "GenericError", "desc": "QMP input must be a JSON object"}}'),
    (b'null\n', '{"error": {"class": "GenericError", "desc": "QMP input must be a JSON object"}}'),
    (b'{}\n', '{"error": {"class": "GenericError", "desc": "QMP input lacks member \'execute\'"}}'),
    (b'{"execute":1}\n', '{"error": {"class": "GenericError", "desc": "QMP input member \'execute\' must be a string"}}'),
    (b'{"execute":"nosuch","id":1}\n', '{"id": 1, "error": {"class": "CommandNotFound", "desc": "The command nosuch has not been found"}}'),
    (b'{"execute":"query-status","arguments":[]}\n', '{"error": {"class": "GenericError", "desc": "QMP input member \'arguments\' must be an object"}}'),
    (b'{"execute":"query-status","arguments":null}\n', '{"error": {"class": "GenericError", "desc": "QMP input member \'arguments\' must be an object"}}'),
    (b'{"execute":"query-status","foo":1}\n', '{"error": {"class": "GenericError", "desc": "QMP input member \'foo\' is unexpected"}}'),
    (b'{"execute":"query-status","control":1}\n', '{"error": {"class": "GenericError", "desc": "QMP input member \'control\' is unexpected"}}'),
    (b'{"execute":"query-status","id":{"a":1}}\n', '{"return": {"status": "prelaunch", "singlestep": false, "running": false}, "id": {"a": 1}}'),
    (b'{"execute":"query-status","arguments":{"x":1}}\n', '{"error": {"class": "GenericError", "desc": "Parameter \'x\' is unexpected"}}'),
    (b'{"execute":"query-status","arguments":{"a":1},"id":"x"}\n', '{"id": "x", "error": {"class": "GenericError", "desc": "Parameter \'a\' is unexpected"}}'),
    (b'{"exec-oob":"query-status"}\n', '{"error": {"class": "GenericError", "desc": "QMP input member \'exec-oob\' is unexpected"}}'),
    (b'{"execute":"query-status","exec-oob":"x"}\n', '{"error": {"class": "GenericError", "desc": "QMP input member \'exec-oob\' is unexpected"}}'),
    (b'{"execute":"query-acpi-ospm-status"}\n', '{"return": [{"source": 0, "status": 0, "slot": "0", "slot-type": "DIMM"}, {"source": 0, "status": 0, "slot": "1", "slot-type": "DIMM"}, {"source": 0, "status": 0, "slot": "2", "slot-type": "DIMM"}]}'),
    (b'{"execute":"human-monitor-command","arguments":{"command-line":"info status"}}\n', '{"return": "VM status: paused (prelaunch)\\r\\n"}'),
])
def test_requests_recorded_from_qemu(wire, data: bytes, reply: str) -> None:
    assert wire.send(data) == [reply + "\r\n"]


def test_events_come_before_the_reply(wire) -> None:
    assert wire.send(b'{"execute":"cont","id":1}\n') == [
        '{"timestamp": {"seconds": 1700000000, "microseconds": 250000}, "event": "RESUME"}\r\n',
        '{"return": {}, "id": 1}\r\n']
    assert wire.send(b'{"execute":"quit"}\n') == [
        '{"timestamp": {"seconds": 1700000000, "microseconds": 250000}, "event": "SHUTDOWN", '
        '"data": {"guest": false, "reason": "host-qmp-quit"}}\r\n',
        '{"return": {}}\r\n']
    assert wire.session.finished


def test_unnegotiated_sessions_get_no_events(control: VmControl, wire) -> None:
    from monitor_wire import Wire

    other = Wire(control)
    wire.send(b'{"execute":"stop"}{"execute":"cont"}')
    assert len(other.out) == 1  # the greeting only


# -- real clients over sockets ----------------------------------------------------


@contextlib.contextmanager
def serving(control: VmControl, *addresses: str) -> Iterator[list]:
    """QMP monitors on ``addresses``, served by their event loop on a thread of its
    own (the clients below run asyncio on this one)."""
    loop = EventLoop()
    servers = [serve_qmp(control, loop, address) for address in addresses]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield servers
    finally:
        loop.stop()
        thread.join(10)
        for server in servers:
            server.close()
        loop.close()


def test_qemu_qmp_client_over_unix_sockets(control: VmControl, tmp_path: Path) -> None:
    """Two monitors (``-qmp unix:a -qmp unix:b``) share one VM; a second client of
    one monitor waits, as in QEMU, until the first leaves."""
    paths = [str(tmp_path / "a.sock"), str(tmp_path / "b.sock")]
    quit_answered = threading.Event()
    control.on_quit(quit_answered.set)

    async def scenario() -> None:
        first, second = QMPClient("one"), QMPClient("two")
        await first.connect(paths[0])
        await second.connect(paths[1])
        await first.execute("object-add", {"qom-type": "memory-backend-ram", "id": "m1",
                                           "size": 1 << 30})
        await second.execute("device_add", {"driver": "pc-dimm", "id": "d1",
                                            "memdev": "m1"})
        devices = await first.execute("query-memory-devices")
        assert devices[0]["data"]["addr"] == 1 << 32
        with pytest.raises(ExecuteError) as err:
            await second.execute("device_del", {"id": "nosuch"})
        assert err.value.error_class == "DeviceNotFound"
        text = await first.execute("human-monitor-command",
                                   {"command-line": "info memory_size_summary"})
        assert text == "base memory: 1073741824\r\nplugged memory: 1073741824\r\n"
        # A client queued behind ``second`` gets nothing until it leaves.
        reader, writer = await asyncio.open_unix_connection(paths[1])
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(reader.readline(), 0.2)
        await second.disconnect()
        assert b'"QMP"' in await asyncio.wait_for(reader.readline(), 5)
        # A client that leaves in the middle of a message harms no one.
        writer.write(b'{"execute": "qmp_capabilities"}\n{"execute": "query-st')
        await writer.drain()
        writer.close()
        await second.connect(paths[1])
        assert (await second.execute("query-status"))["status"] == "prelaunch"
        with second.listener("SHUTDOWN") as listener:
            await first.execute("quit")
            event = await asyncio.wait_for(listener.get(), 5)
        assert event["data"] == {"guest": False, "reason": "host-qmp-quit"}
        assert await asyncio.get_running_loop().run_in_executor(
            None, quit_answered.wait, 5)
        for client in (first, second):
            with contextlib.suppress(EOFError):  # the server hung up, as QEMU does
                await client.disconnect()

    with serving(control, *(f"unix:{path},server=on,wait=off" for path in paths)):
        asyncio.run(scenario())


def test_tcp_on_loopback(control: VmControl) -> None:
    async def scenario(address: tuple[str, int]) -> None:
        client = QMPClient("tcp")
        await client.connect(address)
        assert (await client.execute("query-version"))["qemu"]["major"] == 7
        await client.disconnect()

    with serving(control, "tcp:127.0.0.1:0,server=on,wait=off") as (server,):
        asyncio.run(scenario(server.sockname))


STDIO_SERVER = """
import sys
from pyqom.vm import VM
from plugins.monitor import run_monitors
vm = VM("1G", slots=3, maxmem="4G", autoload=False)
try:
    sys.exit(run_monitors(vm, qmp=["stdio"]))
finally:
    vm.close()
"""


def test_stdio_subprocess_framing_and_quit() -> None:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[3]),
               PYQOM_DISABLE_PLUGIN_AUTOLOAD="1")
    commands = (b'{"execute": "qmp_capabilities"}\n'
                b'{"execute": "query-status"} {"execute":\n "query-version", "id": 7}\n'
                b'{"execute": "quit"}\n')
    done = subprocess.run([sys.executable, "-c", STDIO_SERVER], input=commands,
                          capture_output=True, timeout=60, env=env)
    lines = done.stdout.decode().splitlines()
    assert done.returncode == 0, done.stderr
    assert done.stderr == b""
    assert json.loads(lines[0])["QMP"]["capabilities"] == ["oob"]
    assert lines[1] == '{"return": {}}'
    assert lines[2] == '{"return": {"status": "prelaunch", "singlestep": false, "running": false}}'
    assert lines[3].endswith(', "id": 7}')
    assert '"event": "SHUTDOWN"' in lines[4]
    assert lines[5] == '{"return": {}}'
    assert len(lines) == 6


def test_stdio_from_a_regular_file(tmp_path: Path) -> None:
    # ``pyqom -qmp stdio < commands.json``: QEMU reads the file like a pipe.
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[3]),
               PYQOM_DISABLE_PLUGIN_AUTOLOAD="1")
    commands = tmp_path / "commands.json"
    commands.write_bytes(b'{"execute": "qmp_capabilities"}\n{"execute": "query-memdev", "id": 1}\n'
                         b'{"execute": "quit"}\n{"execute": "query-status"}\n')
    with commands.open("rb") as stdin:
        done = subprocess.run([sys.executable, "-c", STDIO_SERVER], stdin=stdin,
                              capture_output=True, timeout=60, env=env)
    lines = done.stdout.decode().splitlines()
    assert (done.returncode, done.stderr) == (0, b"")
    assert lines[1] == '{"return": {}}'
    assert lines[2].startswith('{"return": [{"share": false') and lines[2].endswith('"id": 1}')
    assert '"event": "SHUTDOWN"' in lines[3]
    assert lines[4:] == ['{"return": {}}']
