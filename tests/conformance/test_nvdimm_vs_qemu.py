"""``nvdimm`` against real QEMU 7.2: start-up, QMP and HMP answers, and the ACPI tables.

Each scenario starts QEMU 7.2 and a pyqom :class:`pyqom.vm.VM` with the same
command line and runs the same QMP steps on both (state carries over); every
reply must be equal.  Start-up failures compare QEMU's stderr message with
pyqom's.  The tables: QEMU runs SeaBIOS for a moment, the tables it
installed are read back with ``pmemsave``, and pyqom's NFIT must equal them
byte for byte and its NVDIMM SSDT must equal them but for ``MEMA`` (the DSM
page's address, which each firmware picks) and the checksum; both
disassemble with iasl to the same text, ``MEMA`` aside.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pyqom_side import PyqomQmp, normalise
from qemu_oracle import QemuOracle, qemu_command_line, stderr_messages

import qom
from plugins.monitor import VmControl
from plugins.services import ACPI, services_of
from pyqom.vm import VM

M = 1 << 20
K = 1 << 10
NV = ("-M", "pc,nvdimm=on", "-m", "1G,slots=2,maxmem=4G")
Step = tuple[str, dict[str, Any]]


def ram(name: str, size: int) -> Step:
    return ("object-add", {"qom-type": "memory-backend-ram", "id": name, "size": size})


def nvdimm(name: str | None, memdev: str | None, **props: Any) -> Step:
    arguments: dict[str, Any] = {"driver": "nvdimm"}
    if name is not None:
        arguments["id"] = name
    if memdev is not None:
        arguments["memdev"] = memdev
    return ("device_add", {**arguments, **props})


def get(path: str, prop: str) -> Step:
    return ("qom-get", {"path": path, "property": prop})


def hmp(line: str) -> Step:
    return ("human-monitor-command", {"command-line": line})


QUERY: Step = ("query-memory-devices", {})
SUMMARY: Step = ("query-memory-size-summary", {})

COLD = (*NV, "-object", "memory-backend-ram,id=c1,size=128M",
        "-device", "nvdimm,id=nv1,memdev=c1,label-size=128K,uuid="
                   "12345678-9abc-def0-1234-56789abcdef0,unarmed=on,slot=1")

SCENARIOS: list[tuple[str, tuple[str, ...], tuple[Step, ...]]] = [
    ("cold-plugged", COLD, (
        QUERY, SUMMARY, hmp("info memory-devices"),
        *(get("nv1", prop) for prop in ("label-size", "uuid", "unarmed", "size", "addr",
                                        "slot", "node", "memdev", "hotplugged",
                                        "hotpluggable", "realized", "legacy-memdev",
                                        "parent_bus", "type", "nvdimm-memory[0]")),
        get("/machine", "nvdimm"), get("/machine", "nvdimm-persistence"),
        ("qom-set", {"path": "nv1", "property": "label-size", "value": 256 * K}),
        ("qom-set", {"path": "nv1", "property": "unarmed", "value": False}),
        ("device_del", {"id": "nv1"}), QUERY)),
    ("hot-plugged", NV, (
        ram("m1", 128 * M), ram("m2", 64 * M), ram("m3", 128 * M),
        nvdimm("n1", "m1", **{"label-size": 4096}),
        nvdimm("n1", "m1", **{"label-size": 128 * M}),
        nvdimm("n1", "m1", uuid="nope"), nvdimm("n1", "m1", uuid=5),
        nvdimm("n1", "m1", **{"label-size": "128K"}), nvdimm("n1", "m1", **{"label-size": -1}),
        nvdimm("n1", "m1", uuid="12345678-9ABC-DEF0-1234-56789ABCDEF0X"),
        nvdimm("n1", "m1", uuid="12345678-9ABC-DEF0-1234-56789ABCDEF0"), QUERY,
        hmp("info memory-devices"), get("n1", "label-size"),
        get("n1", "uuid"), get("n1", "size"),
        nvdimm("n2", "m2", **{"label-size": 2 * M}), QUERY, SUMMARY,
        nvdimm("n3", "m3"),
        ("device_del", {"id": "n2"}), QUERY,
        ram("m4", 128 * M), nvdimm("n4", "m4", node=1), nvdimm("n4", "m4", slot=0),
        nvdimm("n4", "m4", addr=0x100000000), nvdimm("n4", "m4", addr=0x140100000),
        nvdimm("n4", "m1"), nvdimm("n4", "m4", unarmed="yes"),
        ("query-acpi-ospm-status", {}),
        ("qom-get", {"path": "/machine/peripheral/n1/nvdimm-memory[0]", "property": "size"}))),
    ("hmp", ("-M", "pc,nvdimm=on", "-m", "1G,slots=3,maxmem=4G"), (
        hmp("object_add memory-backend-ram,id=m1,size=128M"),
        hmp("device_add nvdimm,id=n1,memdev=m1,label-size=256K,unarmed=on"),
        hmp("device_add nvdimm,id=n2,memdev=m1"),
        hmp("device_add nvdimm,id=n3,memdev=nosuch"),
        hmp("info memory-devices"), hmp("device_del n1"), QUERY,
        hmp("qom-get /machine/peripheral/n1 label-size"))),
    ("not-enabled", ("-m", "1G,slots=2,maxmem=4G"), (
        ram("m1", 128 * M), nvdimm("n1", "m1"), get("/machine", "nvdimm"), QUERY,
        ("device_add", {"driver": "pc-dimm", "id": "d1", "memdev": "m1"}), QUERY)),
    ("properties", NV, (
        ("device-list-properties", {"typename": "nvdimm"}),
        ("qom-list-properties", {"typename": "nvdimm"}),
        ram("m1", 128 * M), nvdimm("n1", "m1"), ("qom-list", {"path": "n1"}),
        ("qom-list-types", {"implements": "pc-dimm"}))),
    ("persistence", ("-M", "pc,nvdimm=on,nvdimm-persistence=cpu", "-m",
                     "1G,slots=2,maxmem=4G"), (
        get("/machine", "nvdimm-persistence"),)),
]

#: Replies compared as sets: QEMU's list order follows GLib hashing.
UNORDERED = {"qom-list", "qom-list-properties", "device-list-properties", "qom-list-types"}


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_same_answers_as_qemu(scenario: tuple[str, tuple[str, ...], tuple[Step, ...]]) -> None:
    _, args, steps = scenario
    oracle = QemuOracle(*args)
    try:
        with VM.from_args(list(args)) as vm:
            control = VmControl(vm)
            qmp = PyqomQmp(control)
            try:
                for number, (command, arguments) in enumerate(steps):
                    path = arguments.get("path")
                    if isinstance(path, str) and not path.startswith("/"):
                        arguments = {**arguments, "path": f"/machine/peripheral/{path}"}
                    expected = normalise(command, oracle.execute(command, arguments), UNORDERED)
                    actual = normalise(command, qmp.execute(command, arguments), UNORDERED)
                    assert (number, command, arguments, actual) == \
                        (number, command, arguments, expected)
            finally:
                qmp.close()
                control.close()
    finally:
        oracle.close()


MEM = ("-object", "memory-backend-ram,id=m1,size=128M")
STARTUP = [
    ("-M", "pc,nvdimm=foo"),
    ("-M", "pc,nvdimm-persistence=bad"),
    ("-m", "1G,slots=2,maxmem=4G", *MEM, "-device", "nvdimm,memdev=m1"),
    (*NV, *MEM, "-device", "nvdimm,memdev=m1,label-size=1K"),
    (*NV, *MEM, "-device", "nvdimm,memdev=m1,label-size=128M"),
    (*NV, *MEM, "-device", "nvdimm,memdev=m1,uuid=xyz"),
    (*NV, "-device", "nvdimm,id=n1"),
    ("-M", "pc,nvdimm=on", "-m", "1G", *MEM, "-device", "nvdimm,memdev=m1"),
    ("-M", "pc,nvdimm=on", "-no-acpi", "-m", "1G,slots=2,maxmem=4G", *MEM,
     "-device", "nvdimm,memdev=m1"),
    (*NV, "-object", "memory-backend-file,id=m1,size=128M,mem-path=@FILE@,readonly=on",
     "-device", "nvdimm,memdev=m1"),
    (*NV, "-object", "memory-backend-file,id=m1,size=128M,mem-path=@FILE@,readonly=on",
     "-device", "nvdimm,memdev=m1,unarmed=on"),
    (*NV, *MEM, "-device", "nvdimm,memdev=m1,slot=5"),
    (*NV, "-global", "PIIX4_PM.memory-hotplug-support=off", *MEM,
     "-device", "nvdimm,memdev=m1"),
    ("-global", "PIIX4_PM.memory-hotplug-support=off", "-m", "1G,slots=2,maxmem=4G", *MEM,
     "-device", "nvdimm,memdev=m1"),
    (*NV, *MEM, "-device", "nvdimm,memdev=m1,node=1"),
    (*NV, *MEM, "-device", "nvdimm,memdev=m1,addr=0x100000001"),
]


def _pyqom_startup(args: list[str]) -> tuple[int, list[str]]:
    lines: list[str] = []
    warn: Callable[[str], None] = lines.append
    status = 0
    try:
        VM.from_args(args, warn=warn).close()
    except qom.QomError as err:
        status = 1
        lines.append(str(err))
        if err.hint:
            lines.extend(err.hint.splitlines())
    return status, stderr_messages("\n".join(lines), args)


@pytest.mark.parametrize("args", STARTUP, ids=[" ".join(args) for args in STARTUP])
def test_same_start_up_as_qemu(args: tuple[str, ...], tmp_path: Path) -> None:
    backing = tmp_path / "backing"
    backing.write_bytes(bytes(128 * M))
    args = tuple(arg.replace("@FILE@", str(backing)) for arg in args)
    result = qemu_command_line(*args)
    expected = (result.returncode, stderr_messages(result.stderr, args))
    assert _pyqom_startup(list(args)) == expected


# ---------------------------------------------------------------------------
# The tables
# ---------------------------------------------------------------------------

#: how long SeaBIOS runs before the tables are read (it installs them well within)
FIRMWARE_SECONDS = 1.5


def _read(oracle: QemuOracle, tmp: Path, address: int, size: int) -> bytes:
    path = tmp / "mem.bin"
    reply = oracle.execute("pmemsave", {"val": address, "size": size, "filename": str(path)})
    assert "return" in reply, reply
    return path.read_bytes()


def qemu_tables(args: tuple[str, ...], tmp: Path) -> dict[str, bytes]:
    """The tables SeaBIOS installed on QEMU 7.2 for ``args``, by signature."""
    oracle = QemuOracle(*args)
    try:
        oracle.execute("cont")
        time.sleep(FIRMWARE_SECONDS)
        oracle.execute("stop")
        bios = _read(oracle, tmp, 0xE0000, 0x20000)
        at = bios.find(b"RSD PTR ")
        assert at >= 0, "no RSDP in the BIOS area"
        rsdt_address = struct.unpack_from("<I", bios, at + 16)[0]
        tables: dict[str, bytes] = {}

        def table(address: int) -> bytes:
            length = struct.unpack("<I", _read(oracle, tmp, address + 4, 4))[0]
            return _read(oracle, tmp, address, length)

        rsdt = table(rsdt_address)
        tables["RSDT"] = rsdt
        facp_address = struct.unpack_from("<I", rsdt, 36)[0]
        tables["DSDT"] = table(struct.unpack_from("<I", table(facp_address), 40)[0])
        order = []
        for (address,) in struct.iter_unpack("<I", rsdt[36:]):
            data = table(address)
            tables[data[:4].decode()] = data
            order.append(data[:4].decode())
        tables["order"] = " ".join(order).encode()
        return tables
    finally:
        oracle.close()


def pyqom_tables(args: tuple[str, ...]) -> dict[str, bytes]:
    """pyqom's tables for ``args``, by signature; ``order`` as the RSDT lists them."""
    with VM.from_args(list(args), autoload=False) as vm:
        listed = services_of(vm.machine).get(ACPI).tables()
        found = dict(listed)
        found["order"] = " ".join(signature for signature, _ in listed
                                  if signature not in ("RSDP", "FACS", "DSDT", "RSDT")).encode()
        return found


def _without_mema(ssdt: bytes) -> bytes:
    """The SSDT with its checksum and ``MEMA``'s value zeroed."""
    data = bytearray(ssdt)
    data[9] = 0
    at = data.rfind(b"\x08MEMA\x0c")
    assert at >= 0, "no Name (MEMA, ...) in the SSDT"
    data[at + 6:at + 10] = bytes(4)
    return bytes(data)


TABLE_LINES = [
    COLD,
    (*NV, "-object", "memory-backend-ram,id=c1,size=256M",
     "-device", "nvdimm,memdev=c1,label-size=256K,node=0"),
    ("-M", "pc,nvdimm=on,nvdimm-persistence=mem-ctrl", "-m", "512M,slots=4,maxmem=8G",
     "-object", "memory-backend-ram,id=c1,size=1G", "-device", "nvdimm,id=nv1,memdev=c1"),
    NV,
    # Several: QEMU lists them in its GLib hash tables' order (named ones, then
    # anonymous ones), which pyqom replays.
    (*NV, "-object", "memory-backend-ram,id=c1,size=256M",
     "-object", "memory-backend-ram,id=c2,size=130M",
     "-device", "nvdimm,id=nv1,memdev=c1", "-device", "nvdimm,id=nv2,memdev=c2,"
                                                    "label-size=256K,node=0"),
    ("-M", "pc,nvdimm=on", "-m", "1G,slots=12,maxmem=16G",
     *(arg for i in range(12) for arg in (
         "-object", f"memory-backend-ram,id=c{i},size=4M",
         "-device", f"nvdimm,memdev=c{i},label-size=128K" + (f",id=dimm{i}" if i % 3 else "")))),
]


@pytest.fixture(scope="module")
def iasl_path() -> str:
    path = shutil.which("iasl")
    if path is None:
        pytest.skip("iasl not installed (Debian: apt-get install acpica-tools); CI installs it")
    return path


def _disassemble(iasl: str, data: bytes, tmp: Path, name: str) -> str:
    path = tmp / f"{name}.dat"
    path.write_bytes(data)
    done = subprocess.run([iasl, "-d", str(path)], capture_output=True, text=True, cwd=tmp)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    # iasl's remarks are part of the comparison: QEMU's SSDT draws one (ODAT,
    # a field read as a buffer), so an equal table must draw the same.
    remarks = "".join(line.split("(")[0] + "\n" for line in output.splitlines()
                      if re.search(r"\b(Error|Warning)\b", line))
    text = remarks + path.with_suffix(".dsl").read_text()
    text = re.sub(r"/\*.*?\*/\s*", "", text, count=1, flags=re.S)
    # The table's own checksum line and MEMA's value differ by placement only.
    text = re.sub(r"Checksum +0x[0-9A-F]{2}", "Checksum", text)
    text = re.sub(r"(Name \(MEMA, )0x[0-9A-F]+", r"\1@", text)
    text = re.sub(r"\[Checksum\].*", "", text)
    return "\n".join(line.rstrip() for line in text.splitlines()).strip() + "\n"


@pytest.mark.parametrize("args", TABLE_LINES, ids=[" ".join(a) for a in TABLE_LINES])
def test_nfit_and_ssdt_equal_qemus(args: tuple[str, ...], tmp_path: Path,
                                   iasl_path: str) -> None:
    expected = qemu_tables(args, tmp_path)
    actual = pyqom_tables(args)
    assert actual["order"] == expected["order"]
    assert ("NFIT" in actual) == ("NFIT" in expected)
    if "NFIT" in expected:
        assert actual["NFIT"] == expected["NFIT"]
        assert (_disassemble(iasl_path, actual["NFIT"], tmp_path, "ours-nfit")
                == _disassemble(iasl_path, expected["NFIT"], tmp_path, "qemu-nfit"))
    assert _without_mema(actual["SSDT"]) == _without_mema(expected["SSDT"])
    assert (_disassemble(iasl_path, actual["SSDT"], tmp_path, "ours-ssdt")
            == _disassemble(iasl_path, expected["SSDT"], tmp_path, "qemu-ssdt"))
    assert actual["SRAT"] == expected["SRAT"]
    # pyqom's DSDT is not QEMU's (README), but its NVDIMM hotplug handler is.
    assert (_gpe_handler(_disassemble(iasl_path, actual["DSDT"], tmp_path, "ours-dsdt"))
            == _gpe_handler(_disassemble(iasl_path, expected["DSDT"], tmp_path, "qemu-dsdt")))


def _gpe_handler(dsl: str) -> list[str]:
    """``Method (_E04 ...) { ... }`` of a DSDT disassembly, without indentation."""
    lines = [line.strip() for line in dsl.splitlines()]
    start = next(i for i, line in enumerate(lines) if line.startswith("Method (_E04"))
    end = lines.index("}", start + 2)
    return lines[start:end + 1]
