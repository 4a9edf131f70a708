"""The example devices through pyqom's QMP, HMP and guest port I/O."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pyqom_example_devices import plugin

from plugins.monitor import HmpSession, QmpSession, VmControl
from pyqom import VM

G = 1 << 30


def _qmp(control: VmControl, *commands: dict) -> list[dict]:
    out: list[bytes] = []
    session = QmpSession(control, out.append)
    session.feed(b'{"execute":"qmp_capabilities"}')
    for command in commands:
        session.feed(json.dumps(command).encode())
    assert all(line.endswith(b"\r\n") for line in out)
    return [json.loads(line) for line in out[1:]]


@pytest.fixture
def control():
    vm = VM.from_args(["-m", "1G,slots=2,maxmem=5G",
                       "-object", "memory-backend-ram,id=m1,size=1G",
                       "-device", "example-memdev,id=x1,memdev=m1",
                       "-device", "example-ports,id=p1"], plugins=[plugin], autoload=False)
    control = VmControl(vm)
    yield control
    control.close()
    vm.close()


def test_a_slotless_memory_device_is_placed_mapped_and_listed(control) -> None:
    (devices,) = _qmp(control, {"execute": "query-memory-devices"})
    assert devices["return"] == [{"type": "example-memdev", "data": {
        "id": "x1", "memaddr": 4 * G, "size": G, "memdev": "/objects/m1"}}]
    vm = control.vm
    vm.write(4 * G, b"example")
    assert vm.tree.objects.child("m1").host_memory.view[:7].tobytes() == b"example"
    hmp = HmpSession(control)
    hmp.run_line("info memory-devices")
    assert hmp.take_output() == ('Memory device [example-memdev]: "x1"\r\n'
                                 "  memaddr: 0x100000000\r\n  size: 1073741824\r\n"
                                 "  memdev: /objects/m1\r\n")
    (summary,) = _qmp(control, {"execute": "query-memory-size-summary"})
    assert summary["return"] == {"base-memory": G, "plugged-memory": G}


def test_a_slotless_device_cannot_be_unplugged_the_guest_has_no_slot_to_eject(control) -> None:
    (reply,) = _qmp(control, {"execute": "device_del", "arguments": {"id": "x1"}})
    assert reply["error"]["desc"] == (
        "acpi: device unplug request for not supported device type: example-memdev")


def test_a_hot_plugged_slotless_device_and_a_dimm_share_the_region(control) -> None:
    replies = _qmp(control,
                   {"execute": "object-add", "arguments": {
                       "qom-type": "memory-backend-ram", "id": "m2", "size": G}},
                   {"execute": "device_add", "arguments": {
                       "driver": "pc-dimm", "id": "d1", "memdev": "m2"}},
                   {"execute": "query-memory-devices"})
    kinds = [(entry["type"], entry["data"].get("addr", entry["data"].get("memaddr")))
             for entry in replies[-1]["return"]]
    assert kinds == [("example-memdev", 4 * G), ("dimm", 5 * G)]


def test_a_pc_dimm_subtype_reports_its_kind_and_its_ssdt(control) -> None:
    replies = _qmp(control,
                   {"execute": "object-add", "arguments": {
                       "qom-type": "memory-backend-ram", "id": "m2", "size": G}},
                   {"execute": "device_add", "arguments": {
                       "driver": "example-dimm", "id": "e1", "memdev": "m2"}},
                   {"execute": "query-memory-devices"},
                   {"execute": "x-query-acpi-tables"})
    entry = replies[2]["return"][1]
    assert entry["type"] == "example-dimm" and entry["data"]["slot"] == 0
    signatures = [table["signature"] for table in replies[3]["return"]]
    assert signatures.count("SSDT") == 1
    import base64

    ssdt = next(base64.b64decode(t["data"]) for t in replies[3]["return"]
                if t["signature"] == "SSDT")
    assert ssdt[16:24] == b"EXDIMMS\x00" and b"EXD0" in ssdt and b"PYQM0001" in ssdt


def test_the_port_device_answers_guest_in_and_out(control) -> None:
    # mov dx,0x700; mov al,0x5a; out dx,al; out dx,al; in al,dx; mov bl,al;
    # inc dx; in al,dx; mov cl,al; hlt
    code = bytes([0x66, 0xBA, 0x00, 0x07, 0xB0, 0x5A, 0xEE, 0xEE, 0xEC, 0x88, 0xC3,
                  0x66, 0xFF, 0xC2, 0xEC, 0x88, 0xC1, 0xF4])
    result = control.vm.run(code, load_at=0x1000)
    assert result.registers["rbx"] & 0xFF == 0x5A
    assert result.registers["rcx"] & 0xFF == 2
    (reply,) = _qmp(control, {"execute": "device_add", "arguments": {
        "driver": "example-ports", "iobase": "0x710"}})
    assert reply["error"]["desc"] == "Parameter 'driver' expects a pluggable device type"


def test_the_pyqom_command_finds_the_devices_through_the_entry_point(tmp_path: Path) -> None:
    """A real pyqom process with the installed distribution, over a QMP socket."""
    from importlib import metadata

    from qemu.qmp import QMPClient

    if os.environ.get("PYQOM_DISABLE_PLUGIN_AUTOLOAD"):
        pytest.skip("entry-point autoloading is switched off in this run")
    try:
        metadata.distribution("pyqom-example-devices")
    except metadata.PackageNotFoundError:
        pytest.skip("the distribution is not installed (its entry point is what is tested)")
    sock = tmp_path / "qmp.sock"
    process = subprocess.Popen(
        [sys.executable, "-m", "pyqom", "-m", "1G,slots=1,maxmem=3G", "-display", "none",
         "-nodefaults", "-S", "-object", "memory-backend-ram,id=m1,size=1G",
         "-device", "example-memdev,id=x1,memdev=m1",
         "-qmp", f"unix:{sock},server=on,wait=on"], stderr=subprocess.PIPE)

    async def talk() -> list:
        client = QMPClient("example")
        for _ in range(200):
            if sock.exists():
                break
            await asyncio.sleep(0.05)
        await client.connect(str(sock))
        devices = await client.execute("query-memory-devices")
        await client.execute("quit")
        await client.disconnect()
        return devices

    try:
        devices = asyncio.run(talk())
    finally:
        assert process.wait(timeout=20) == 0, process.stderr.read()
    assert [entry["type"] for entry in devices] == ["example-memdev"]
