"""A guest that runs: ``pyqom -kernel`` boots pyqom's OSPM guest on its CPU thread
while QMP serves; ``-S``/``cont``/``stop`` start and pause it; a DIMM plugged
while it is paused is onlined once it goes on; ``device_del`` completes when
it ejects.  (tests/conformance/test_guest.py compares all of it with QEMU.)"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from pathlib import Path

import pytest
from guest_kernel import (
    CONSOLE,
    build_guest,
    connect_qmp,
    pyqom_command,
    pyqom_env,
    transcript,
)
from qemu.qmp import ExecuteError


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> str:
    return build_guest(tmp_path_factory.mktemp("guest"))


async def _until(predicate, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.01)


def test_paused_start_cont_stop_plug_and_eject(kernel: str, tmp_path: Path) -> None:
    sock, out = tmp_path / "qmp.sock", tmp_path / "guest.out"
    process = subprocess.Popen(
        [*pyqom_command(), "-machine", "pc", "-display", "none", "-nodefaults", "-S",
         "-m", "128M,slots=2,maxmem=1G", "-kernel", kernel, "-debugcon", f"file:{out}",
         *CONSOLE, "-qmp", f"unix:{sock},server=on,wait=off"],
        env=pyqom_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    async def session() -> list[tuple[str, object]]:
        client = await connect_qmp("test", sock)
        events: list[tuple[str, object]] = []

        async def collect() -> None:
            async for event in client.events:
                events.append((event["event"], event.get("data")))

        collector = asyncio.ensure_future(collect())
        assert (await client.execute("query-status"))["status"] == "prelaunch"
        await asyncio.sleep(0.2)
        assert transcript(out) == b""                  # -S: not one instruction yet
        await client.execute("cont")
        await _until(lambda: b"ready\n" in transcript(out))
        for _ in range(50):                            # the monitor answers while it polls
            assert (await client.execute("query-status"))["running"] is True
        await client.execute("stop")
        assert (await client.execute("query-status"))["status"] == "paused"
        await client.execute("object-add", {"qom-type": "memory-backend-ram", "id": "m1",
                                            "size": 128 << 20})
        await client.execute("device_add", {"driver": "pc-dimm", "id": "d1", "memdev": "m1"})
        await asyncio.sleep(0.2)
        assert b"insert slot" not in transcript(out)   # paused: the guest did not see it
        await client.execute("cont")
        await _until(lambda: any(kind == "ACPI_DEVICE_OST" for kind, _ in events))
        assert b"online slot 0\n" in transcript(out)
        await client.execute("device_del", {"id": "d1"})
        await _until(lambda: any(kind == "DEVICE_DELETED" for kind, _ in events))
        assert await client.execute("query-memory-devices") == []
        await client.execute("quit")
        await _until(lambda: process.poll() is not None)
        collector.cancel()
        await asyncio.gather(collector, return_exceptions=True)
        with contextlib.suppress(EOFError):
            await client.disconnect()
        return events

    try:
        events = asyncio.run(session())
    finally:
        if process.poll() is None:
            process.kill()
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    assert [kind for kind, _ in events] == [
        "RESUME", "STOP", "RESUME", "ACPI_DEVICE_OST", "ACPI_DEVICE_OST", "DEVICE_DELETED",
        "SHUTDOWN"]
    assert transcript(out).endswith(b"ejected slot 0\n")


def test_isa_debug_exit_ends_pyqom_with_its_status(kernel: str, tmp_path: Path) -> None:
    out = tmp_path / "guest.out"
    done = subprocess.run(
        [*pyqom_command(), "-machine", "pc", "-display", "none", "-nodefaults", "-m", "64M",
         "-kernel", kernel, "-append", "exit=0x7f", "-debugcon", f"file:{out}", *CONSOLE],
        env=pyqom_env(), capture_output=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (0xFF, b"", b"")
    assert transcript(out).endswith(b"exit 0x7f\n")
    assert b'cmdline "' + kernel.encode() + b' exit=0x7f"\n' in transcript(out)


@pytest.mark.parametrize("append", ["", "spin", "hammer"])
def test_failing_commands_are_answered_while_the_guest_runs(kernel: str, tmp_path: Path,
                                                            append: str) -> None:
    """QEMU 7.2 can stall its monitor on a failing device_add while a guest
    busy-polls; pyqom's command thread takes turns with the CPU thread, whether
    the guest polls GPE0 (with pause), stores in a loop, or reads a device
    register with no pause at all (``hammer``: the machine lock at every read)."""
    sock, out = tmp_path / "qmp.sock", tmp_path / "guest.out"
    process = subprocess.Popen(
        [*pyqom_command(), "-machine", "pc", "-display", "none", "-nodefaults",
         "-m", "128M,slots=2,maxmem=1G", "-kernel", kernel, "-append", append,
         "-debugcon", f"file:{out}", *CONSOLE, "-qmp", f"unix:{sock},server=on,wait=off"],
        env=pyqom_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    async def session() -> None:
        client = await connect_qmp("test", sock)
        await _until(lambda: {"": b"ready\n", "spin": b"spinning\n",
                              "hammer": b"hammering\n"}[append] in transcript(out))
        for _ in range(20):
            with pytest.raises(ExecuteError) as err:
                await asyncio.wait_for(
                    client.execute("device_add", {"driver": "pc-dimm", "id": "d1",
                                                  "memdev": "nosuch"}), 10)
            assert "nosuch" in str(err.value)
        assert (await client.execute("query-status"))["status"] == "running"
        await client.execute("quit")
        with contextlib.suppress(EOFError):
            await client.disconnect()

    try:
        asyncio.run(session())
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_the_python_api_runs_the_guest_beside_the_program(kernel: str, tmp_path: Path) -> None:
    """``VM.from_args`` with ``-kernel``, then ``vm.cpu.resume()``: the guest runs on
    its own thread while the program plugs a DIMM, and sees it."""
    from pyqom import VM

    out = tmp_path / "guest.out"
    vm = VM.from_args(["-m", "128M,slots=2,maxmem=1G", "-kernel", kernel, "-chardev",
                       f"file,id=c,path={out}", "-device", "isa-debugcon,iobase=0x402,chardev=c"],
                      autoload=False)
    try:
        vm.cpu.resume()
        asyncio.run(_until(lambda: b"ready\n" in transcript(out)))
        vm.object_add("memory-backend-ram", "m1", size=128 << 20)
        vm.device_add("pc-dimm", "d1", memdev="m1")
        asyncio.run(_until(lambda: b"online slot 0\n" in transcript(out)))
        vm.cpu.pause()
        assert vm.query_memory_devices()[0]["data"]["addr"] == 1 << 32
    finally:
        vm.close()


def _api_vm(kernel: str, out: Path, append: str = ""):
    from pyqom import VM

    vm = VM.from_args(["-m", "128M,slots=2,maxmem=1G", "-kernel", kernel, "-append", append,
                       "-chardev", f"file,id=c,path={out}",
                       "-device", "isa-debugcon,iobase=0x402,chardev=c"], autoload=False)
    vm.cpu.resume()
    asyncio.run(_until(lambda: b"ready\n" in transcript(out)))
    return vm


def test_device_del_returns_a_future_of_the_eject(kernel: str, tmp_path: Path) -> None:
    """No polling for DEVICE_DELETED (a pyqom addition): ``vm.onlined`` and the
    future ``vm.device_del`` returns, from sync and asyncio code."""
    vm = _api_vm(kernel, tmp_path / "guest.out")
    try:
        vm.object_add("memory-backend-ram", "m1", size=128 << 20)
        vm.device_add("pc-dimm", "d1", memdev="m1")
        assert vm.onlined("d1").result(20)["status"] == 0
        assert vm.onlined("d1").result(0)["source"] == 1     # settled already: at once
        deleted = vm.device_del("d1").result(20)
        assert deleted == {"device": "d1", "path": "/machine/peripheral/d1"}
        assert vm.query_memory_devices() == []
        vm.device_add("pc-dimm", "d1", memdev="m1")         # the same id again

        async def unplug() -> dict:
            await asyncio.wrap_future(vm.onlined("d1"))
            return await asyncio.wait_for(asyncio.wrap_future(vm.device_del("d1")), 20)

        assert asyncio.run(unplug())["device"] == "d1"
        with pytest.raises(Exception, match="Device 'nosuch' not found"):
            vm.device_del("nosuch")
    finally:
        vm.close()


def test_device_del_by_path_of_a_dimm_without_id(kernel: str, tmp_path: Path) -> None:
    """A DIMM with no id is named by its QOM path; its events by path and slot."""
    vm = _api_vm(kernel, tmp_path / "guest.out")
    try:
        vm.object_add("memory-backend-ram", "m1", size=128 << 20)
        device = vm.device_add("pc-dimm", memdev="m1")
        path = device.canonical_path
        assert path == "/machine/peripheral-anon/device[1]"   # [0]: the isa-debugcon
        assert vm.onlined(path).result(20)["slot"] == "0"
        assert vm.device_del(path).result(20) == {"path": path}
        assert vm.query_memory_devices() == []
    finally:
        vm.close()


def test_a_refused_eject_fails_the_future(kernel: str, tmp_path: Path) -> None:
    vm = _api_vm(kernel, tmp_path / "guest.out", "ost-fail")
    try:
        vm.object_add("memory-backend-ram", "m1", size=128 << 20)
        vm.device_add("pc-dimm", "d1", memdev="m1")
        with pytest.raises(Exception, match=r"did not online 'd1' \(_OST status 0x1\)"):
            vm.onlined("d1").result(20)
        with pytest.raises(Exception, match=r"refused to eject 'd1' \(_OST status 0x1\)"):
            vm.device_del("d1").result(20)
        assert len(vm.query_memory_devices()) == 1
    finally:
        vm.close()


@pytest.mark.parametrize(("append", "expected"), [
    ("", '{"return": {"device": "d1", "path": "/machine/peripheral/d1"}}'),
    ("never-eject", '{"error": {"class": "GenericError", "desc": '
                    '"Device \'d1\' was not deleted within 0.5 s"}}'),
    ("ost-fail", '{"error": {"class": "GenericError", "desc": '
                 '"the guest refused to eject \'d1\' (_OST status 0x1)"}}'),
])
def test_x_device_del_wait(kernel: str, tmp_path: Path, append: str, expected: str) -> None:
    """QMP ``x-device-del-wait`` (a pyqom addition) for clients without an event loop."""
    out = tmp_path / "guest.out"
    process = subprocess.Popen(
        [*pyqom_command(), "-machine", "pc", "-display", "none", "-nodefaults",
         "-m", "128M,slots=2,maxmem=1G", "-kernel", kernel, "-append", append,
         "-debugcon", f"file:{out}", *CONSOLE, "-qmp", "stdio"],
        env=pyqom_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdin is not None and process.stdout is not None
    try:
        def ask(line: bytes) -> bytes:
            process.stdin.write(line + b"\n")
            process.stdin.flush()
            while b'"event"' in (reply := process.stdout.readline()):
                pass
            return reply

        process.stdout.readline()
        ask(b'{"execute":"qmp_capabilities"}')
        asyncio.run(_until(lambda: b"ready\n" in transcript(out)))
        ask(b'{"execute":"object-add","arguments":{"qom-type":"memory-backend-ram",'
            b'"id":"m1","size":134217728}}')
        ask(b'{"execute":"device_add","arguments":{"driver":"pc-dimm","id":"d1",'
            b'"memdev":"m1"}}')
        asyncio.run(_until(lambda: b"ost slot 0 event 0x1" in transcript(out)))
        reply = ask(b'{"execute":"x-device-del-wait","arguments":{"id":"d1","timeout":0.5}}')
        assert reply == expected.encode() + b"\r\n"
        ask(b'{"execute":"quit"}')
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
