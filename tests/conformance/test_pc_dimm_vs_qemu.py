"""The pc machine, pc-dimm and memory hotplug against real QEMU 7.2.

Each scenario starts QEMU 7.2 and a pyqom :class:`pyqom.vm.VM` with the
same command-line options, then runs the same QMP steps on both, in order
(state carries over), and every reply must be equal: the same return value,
or the same error class and message.  Start-up failures compare the stderr
message (after ``qemu-system-x86_64: `` and any ``-option text: ``) with
pyqom's :class:`qom.QomError` text and hint; warnings are compared too.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
from pyqom_side import PyqomQmp, normalise
from qemu_oracle import QemuOracle, qemu_command_line, stderr_messages

import qom
from plugins.monitor import VmControl
from pyqom.vm import VM

K, M, G = 1 << 10, 1 << 20, 1 << 30
RAM = "memory-backend-ram"
BASE = ("-m", "1G,slots=3,maxmem=4G")

Step = tuple[str, dict[str, Any]]


def ram(name: str, size: int) -> Step:
    return ("object-add", {"qom-type": RAM, "id": name, "size": size})


def file(name: str, size: int, **extra: Any) -> Step:
    return ("object-add", {"qom-type": "memory-backend-file", "id": name, "size": size,
                           "mem-path": "@TMP@", **extra})


def dimm(name: str | None, memdev: str | None, **props: Any) -> Step:
    arguments: dict[str, Any] = {"driver": "pc-dimm"}
    if name is not None:
        arguments["id"] = name
    if memdev is not None:
        arguments["memdev"] = memdev
    return ("device_add", {**arguments, **props})


def get(path: str, prop: str) -> Step:
    return ("qom-get", {"path": path, "property": prop})


QUERY: Step = ("query-memory-devices", {})
SUMMARY: Step = ("query-memory-size-summary", {})
REGION: Step = get("/machine", "device-memory-region-size")
MEMORY: Step = get("/machine", "memory")
PERIPHERAL: Step = ("qom-list", {"path": "/machine/peripheral"})
ANON: Step = ("qom-list", {"path": "/machine/peripheral-anon"})


@attrs.frozen
class Scenario:
    """Command-line options, then QMP steps."""

    name: str
    args: tuple[str, ...]
    steps: tuple[Step, ...] = ()


def _s(name: str, args: tuple[str, ...], *steps: Step) -> Scenario:
    return Scenario(name, args, steps)


SCENARIOS = [
    _s("rows-15-18-three-dimms-then-no-slot", BASE, REGION, MEMORY, SUMMARY,
       *(ram(f"mem{i}", G) for i in range(1, 5)),
       dimm("dimm1", "mem1"), dimm("dimm2", "mem2"), SUMMARY, dimm("dimm3", "mem3"),
       dimm("dimm4", "mem4"), QUERY, SUMMARY,
       get("dimm1", "addr"), get("dimm1", "slot"), get("dimm1", "hotplugged"),
       get("dimm1", "memdev"), get("dimm1", "size"), get("dimm1", "node"),
       get("dimm1", "realized"), get("dimm1", "parent_bus"), get("dimm1", "hotpluggable"),
       get("dimm1", "legacy-memdev"), get("dimm3", "addr"), PERIPHERAL),
    _s("rows-25-29-42-memdev-errors", BASE, ram("mem1", G), ram("mem2", G),
       dimm("dimm1", None), dimm("dimm1", "nosuch"), dimm("dimm1", "/machine"),
       dimm("dimm1", "pc.ram"), dimm("dimm1", ""), dimm("dimm1", "/objects/mem1"),
       dimm("dimm2", "mem1"), dimm("dimm1", "mem2"), dimm("dimm1", "mem1"),
       dimm("dimm1", "mem2", foo=1), dimm("d2", 5), PERIPHERAL, ANON, QUERY,
       ("object-del", {"id": "mem1"}), ("object-del", {"id": "mem2"}),
       ("object-del", {"id": "pc.ram"})),
    _s("rows-30-31-34-slots-and-nodes", BASE, ram("mem1", G), ram("mem2", G), ram("mem3", G),
       dimm("d1", "mem1", slot=3), dimm("d1", "mem1", slot=-2), dimm("d1", "mem1", slot=7),
       dimm("d1", "mem1", slot=1.5), dimm("d1", "mem1", slot="abc"),
       dimm("d1", "mem1", slot=True), dimm("d1", "mem1", node=1),
       dimm("d1", "mem1", node=-1), dimm("d1", "mem1", node=5),
       dimm("d1", "mem1", slot=0), dimm("d2", "mem2", slot=0), dimm("d2", "mem1", slot=0),
       dimm("d2", "mem2", slot=0, node=5), dimm("d2", "mem1", node=5),
       dimm("d2", "mem2", slot="2"), dimm("d3", "mem3", slot=None), QUERY),
    _s("rows-35-38-addresses", BASE, *(ram(f"mem{i}", G) for i in range(1, 4)),
       dimm("d1", "mem1", addr=4294967297), dimm("d1", "mem1", addr=2147483648),
       dimm("d1", "mem1", addr="0x100"), dimm("d1", "mem1", addr="5G"),
       dimm("d1", "mem1", addr=-1), dimm("d1", "mem1", addr=256, slot=7),
       dimm("d1", "mem1", addr=0x280000000), dimm("d1", "mem1", addr=0x240200000),
       dimm("dimm1", "mem1", addr=9 * G), dimm("d2", "mem2"),
       dimm("d3", "mem3", addr=0x100200000), dimm("d3", "mem3", addr=0x220000000),
       dimm("d3", "mem3", addr="0x140000000"), QUERY, SUMMARY),
    _s("row-39-capacity", ("-m", "1G,slots=2,maxmem=2G"), REGION, ram("mem1", G),
       ram("small", M), dimm("d1", "mem1"), dimm("d2", "small"), QUERY),
    _s("row-40-backend-size-alignment", BASE, ram("m3", 3 * M), ram("m64", 64),
       ram("m1", M), dimm("d1", "m3"), dimm("d1", "m64"), dimm("d1", "m1"),
       dimm("d1", "m3", addr=0x100000001), QUERY),
    _s("example-E-mixed-alignment", ("-m", "1G,slots=4,maxmem=3G"),
       ram("m1", 512 * M), file("f1", 4 * M + 4 * K), ram("m2", G), ram("m3", G),
       dimm("d1", "m1"), dimm("d2", "f1"), dimm("d3", "m2"), dimm("d4", "m3"), QUERY,
       SUMMARY),
    _s("example-E-too-big-first", ("-m", "1G,slots=4,maxmem=3G"), ram("big", 3 * G),
       dimm("d1", "big"), QUERY),
    _s("rows-45-48-after-realize", BASE, ram("mem1", G), ram("mem2", G),
       dimm("dimm1", "mem1"), ("object-del", {"id": "mem1"}),
       ("qom-set", {"path": "/machine/peripheral/dimm1", "property": "addr", "value": 0}),
       ("qom-set", {"path": "/machine/peripheral/dimm1", "property": "slot", "value": 1}),
       ("qom-set", {"path": "/machine/peripheral/dimm1", "property": "size", "value": 5}),
       ("qom-set", {"path": "/machine/peripheral/dimm1", "property": "memdev",
                    "value": "mem2"}),
       ("qom-set", {"path": "/machine/peripheral/dimm1", "property": "hotplugged",
                    "value": False}),
       ("qom-set", {"path": "/objects/mem1", "property": "size", "value": 2 * M}),
       ("device_del", {"id": "nosuch"}), ("device_del", {"id": "/objects/mem1"}),
       ("device_del", {"id": "mem1"}), ("device_del", {"id": "/machine"}),
       ("device_del", {"id": "dimm1"}), ("device_del", {"id": "/machine/peripheral/dimm1"}),
       QUERY, PERIPHERAL, ("object-del", {"id": "mem1"}), get("dimm1", "addr")),
    _s("notes-8c-anonymous-counter", BASE, *(ram(f"m{i}", 128 * M) for i in range(1, 5)),
       dimm(None, "m1"), ANON, dimm(None, "m2", foo=1), dimm(None, "nosuch"),
       dimm(None, "m2", slot="abc"), ("device_add", {"driver": "nosuch"}), dimm(None, "m2"),
       ANON, PERIPHERAL, get("/machine/peripheral-anon/device[0]", "slot"), QUERY,
       dimm("named", "m3", foo=1), dimm(None, "m3"), ANON, dimm(None, "m4"), ANON),
    _s("notes-8d-failed-anonymous-adds", ("-m", "1G,slots=16,maxmem=8G"),
       *(ram(f"m{i}", 128 * M) for i in range(1, 10)),
       ("device_add", {"driver": "device"}), dimm(None, "m1"), ANON,
       dimm(None, None), dimm(None, "m2"), ANON,
       dimm(None, "m9", node=5), dimm(None, "m3"), ANON,
       dimm(None, "m9", hotplugged=True), dimm(None, "m4"), ANON,
       dimm(None, "m9", bus="nosuch"), dimm(None, "m5"), ANON,
       dimm(None, "m9", size=5), dimm(None, "m9", slot=99), dimm(None, "m1"),
       dimm(None, "m6"), ANON, ("device_add", {"driver": "pc-dimm", "id": 5, "memdev": "m7"}),
       ("device_add", {"driver": "pc-dimm", "id": None, "memdev": "m8"}), ANON, PERIPHERAL,
       QUERY),
    _s("notes-8-error-precedence", BASE, ram("m1", 128 * M), ram("m2", 128 * M),
       dimm("dimm1", "m1"),
       dimm("dimm1", "m2", foo=1), dimm("1d", "m2", foo=1), dimm("1d", "nosuch"),
       dimm("", "m2"), dimm("d x", "m2"), ("device_add", {}), ("device_add", {"id": "x"}),
       ("device_add", {"driver": "nosuch", "id": "1d"}),
       ("device_add", {"driver": "nosuch", "id": "dimm1"}),
       ("device_add", {"driver": "memory-backend-ram"}),
       ("device_add", {"driver": "container"}),
       dimm("d2", "nosuch", foo=1), dimm("d2", "nosuch", slot="abc"),
       dimm("d2", "m2", slot="abc", foo=1), dimm("d2", "m2", foo=1, slot="abc"),
       dimm("d2", "m2", node=-1, slot="abc"), dimm("d2", "m2", addr="5G", slot="abc"),
       dimm("d2", "m2", bar=1, foo=1), dimm("d2", "m2", zzz=1, aaa=1),
       dimm("d2", "m2", size=5, foo=1), dimm("d2", "m2", hotpluggable=False),
       dimm("d2", "m2", slot=0, node=5), dimm("d2", "m1", slot=0), PERIPHERAL, ANON, QUERY),
    _s("placement-explicit-addr-6G", BASE, *(ram(f"m{i}", G) for i in range(1, 4)),
       dimm("d1", "m1", addr=6 * G), dimm("d2", "m2"), dimm("d3", "m3"), QUERY),
    _s("placement-explicit-slot-2", BASE, *(ram(f"m{i}", 256 * M) for i in range(1, 4)),
       dimm("d1", "m1", slot=2), dimm("d2", "m2"), dimm("d3", "m3"), QUERY),
    _s("placement-mixed-sizes", BASE, ram("m1", 512 * M), ram("m2", G), ram("m3", 256 * M),
       dimm("d1", "m1"), dimm("d2", "m2"), dimm("d3", "m3"), QUERY, SUMMARY),
    _s("row-78-file-first-fit", BASE, file("f1", 12 * K), file("f2", 4 * K), file("f3", M),
       dimm("d1", "f1", addr=0x100001000), dimm("d2", "f2"), dimm("d3", "f3"), QUERY,
       SUMMARY),
    _s("failed-capacity-consumes-nothing", ("-m", "1G,slots=3,maxmem=2G"),
       ram("m1", 768 * M), ram("m2", 512 * M), ram("m3", 256 * M),
       dimm("d1", "m1"), dimm("d2", "m2"), dimm("d3", "m3"), QUERY),
    _s("cold-plug-mix", ("-m", "2G,slots=4,maxmem=8G",
                         "-object", "memory-backend-ram,id=c1m,size=512M",
                         "-object", "memory-backend-ram,id=c2m,size=1G",
                         "-object", "memory-backend-ram,id=c3m,size=128M",
                         "-device", "pc-dimm,id=c1,memdev=c1m,slot=3",
                         "-device", "pc-dimm,id=c2,memdev=c2m,addr=0x1c0000000",
                         "-device", "pc-dimm,id=c3,memdev=c3m"),
       ram("h1m", G), dimm("h1", "h1m"), QUERY, SUMMARY, get("c1", "hotplugged")),
    _s("row-65-cold-anonymous", ("-m", "1G,slots=3,maxmem=4G",
                                 "-object", "memory-backend-ram,id=m0,size=512M",
                                 "-device", "pc-dimm,memdev=m0",
                                 "-object", "memory-backend-ram,id=m1,size=128M",
                                 "-device", "pc-dimm,memdev=m1"),
       QUERY, ANON, ram("m2", G), dimm(None, "m2"), ANON, QUERY),
    _s("example-I", ("-m", "4G,slots=2,maxmem=8G"), REGION, ram("m1", G), ram("m2", 2 * G),
       dimm("d1", "m1"), dimm("d2", "m2"), QUERY, SUMMARY),
    _s("example-J-cold-file-dimms", ("-m", "6G,slots=4,maxmem=10G",
                                     "-object", "memory-backend-file,id=f1,size=1G,"
                                                "mem-path=@TMP@",
                                     "-object", "memory-backend-file,id=f2,size=256M,"
                                                "mem-path=@TMP@,share=on",
                                     "-device", "pc-dimm,id=dimm1,memdev=f1",
                                     "-device", "pc-dimm,id=dimm2,memdev=f2"),
       REGION, QUERY, SUMMARY),
    _s("example-K-row-77", ("-m", "1G,slots=2,maxmem=4097M"), REGION,
       ram("m1", 2 * G), ram("m2", 1026 * M), ram("m3", G),
       dimm("d1", "m1"), dimm("d2", "m2"), dimm("d3", "m3"), QUERY),
    _s("row-76-relocated-phys-bits-48", ("-cpu", "qemu64,phys-bits=48",
                                         "-m", "1G,slots=256,maxmem=1T"),
       REGION, ram("m1", G), ram("m2", G), dimm("d1", "m1"), dimm("d2", "m2", slot=255),
       dimm("d3", "m1", slot=256), QUERY),
    _s("row-75-751G-not-relocated", ("-m", "1G,slots=256,maxmem=751G"), REGION,
       ram("m1", G), dimm("d1", "m1"), QUERY),
    _s("example-B-5G", ("-m", "5G,slots=2,maxmem=8G"), REGION, ram("m1", G),
       dimm("d1", "m1"), dimm("d2", "m1"), QUERY, SUMMARY),
    _s("example-C-3584M", ("-m", "3584M,slots=2,maxmem=8G"), REGION, ram("m1", G),
       dimm("d1", "m1"), QUERY),
    _s("example-D-3583M", ("-m", "3583M,slots=2,maxmem=8G"), REGION, ram("m1", G),
       dimm("d1", "m1"), QUERY),
    _s("example-H-max-ram-below-4g", ("-machine", "pc,max-ram-below-4g=512M",
                                      "-m", "1G,slots=3,maxmem=4G"),
       REGION, ram("m1", G), dimm("d1", "m1"), QUERY),
    _s("example-F-legacy-2.1", ("-machine", "pc-i440fx-2.1", "-m", "1G,slots=2,maxmem=3G"),
       REGION, ram("m1", 3 * M), ram("m2", G), dimm("d1", "m1"), dimm("d2", "m2"), QUERY),
    _s("example-G-and-L-region-sizes", ("-m", "1G,slots=256,maxmem=2G"), REGION, MEMORY),
    _s("example-L-1024", ("-m", "1024,slots=2,maxmem=4G"), REGION, MEMORY),
    _s("example-L-size-key", ("-m", "size=2G,slots=3,maxmem=5G"), REGION, MEMORY),
    _s("memory-merging", ("-m", "1G,slots=3,maxmem=4G", "-m", "2G", "-m", "maxmem=5G"),
       REGION, MEMORY, SUMMARY),
    _s("rows-32-33-no-slots", ("-m", "1G",), REGION, MEMORY, ram("m1", G),
       dimm("d1", "m1"), dimm("d1", "m1", slot=0), dimm("d1", "m1", slot=-1), QUERY),
    _s("row-32-maxmem-without-slots", ("-m", "1G,maxmem=2G"), REGION, MEMORY, ram("m1", G),
       dimm("d1", "m1"), dimm("d1", "m1", slot=1), SUMMARY),
    _s("rows-1-4-sizes", ("-m", "1024"), MEMORY, SUMMARY),
    _s("row-2-default", ("-m", "0"), MEMORY, SUMMARY),
    _s("row-3-8k-rounding", ("-m", "100k"), MEMORY),
    _s("row-4-fraction", ("-m", "1.5G"), MEMORY),
    _s("slots-zero-equal-maxmem", ("-m", "1G,slots=0,maxmem=1G"), REGION, MEMORY),
    _s("slots-hex", ("-m", "1G,slots=0x10,maxmem=2G"), REGION, MEMORY),
    _s("phys-bits-32", ("-cpu", "qemu64,phys-bits=32", "-m", "1G,slots=3,maxmem=4G"),
       REGION, ram("m1", G), dimm("d1", "m1"), QUERY),
    _s("introspection", BASE, ram("m1", G), dimm("dimm1", "m1"),
       ("device-list-properties", {"typename": "pc-dimm"}),
       ("qom-list", {"path": "dimm1"}),
       ("qom-list-properties", {"typename": "pc-dimm"})),
]

#: Replies compared as sets: QEMU's list order follows GLib hashing.
UNORDERED = {"qom-list", "qom-list-properties"}


def _fill(value: Any, tmp: str) -> Any:
    if isinstance(value, str):
        return value.replace("@TMP@", tmp)
    if isinstance(value, dict):
        return {key: _fill(item, tmp) for key, item in value.items()}
    return value


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_same_answers_as_qemu(scenario: Scenario, tmp_path: Path) -> None:
    args = tuple(_fill(arg, str(tmp_path)) for arg in scenario.args)
    oracle = QemuOracle(*args)
    try:
        with VM.from_args(list(args)) as vm:
            control = VmControl(vm)
            qmp = PyqomQmp(control)
            try:
                for number, (command, raw) in enumerate(scenario.steps):
                    arguments = _fill(raw, str(tmp_path))
                    expected = normalise(command, oracle.execute(command, arguments), UNORDERED)
                    actual = normalise(command, qmp.execute(command, arguments), UNORDERED)
                    assert (number, command, arguments, actual) == \
                        (number, command, arguments, expected)
            finally:
                qmp.close()
                control.close()
    finally:
        oracle.close()


# ---------------------------------------------------------------------------
# Start-up: errors (exit 1) and warnings
# ---------------------------------------------------------------------------

STARTUP: list[tuple[str, ...]] = [
    ("-m", "1G,maxmem=512M"),
    ("-m", "1G,slots=2,maxmem=1G"),
    ("-m", "1G,slots=2"),
    ("-m", "1G,slots=0"),
    ("-m", "1G,slots=257,maxmem=2G"),
    ("-m", "1G,slots=-1,maxmem=2G"),
    ("-m", "1G,slots=4294967297,maxmem=2G"),
    ("-m", "1G,slots=99999999999999999999999,maxmem=2G"),
    ("-m", "1G,slots=3,maxmem=4294967297"),
    ("-m", "1G,slots=3,maxmem=4096"),
    ("-m", "1G,slots=abc,maxmem=2G"),
    ("-m", "1G,slots=,maxmem=2G"),
    ("-m", "1GB"),
    ("-m", "1G,foo=1"),
    ("-m", "1.5"),
    ("-m", "size="),
    ("-m", "16E"),
    ("-m", "1G,maxmem=16E"),
    ("-m", "17592186044416"),
    ("-m", "0x400"),
    ("-m", "0x400M"),
    ("-m", "1G,slots=2,maxmem=0x2G"),
    ("-machine", "pc-i440fx-2.0", "-m", "1G,slots=3,maxmem=4G"),
    ("-machine", "pc-i440fx-2.0", "-m", "1G,maxmem=2G"),
    ("-m", "1G,slots=256,maxmem=752G"),
    ("-m", "1G,slots=3,maxmem=1T"),
    ("-m", "1G,slots=256,maxmem=1T"),
    ("-cpu", "qemu64,phys-bits=31"),
    ("-cpu", "qemu64,phys-bits=53"),
    ("-cpu", "qemu64,phys-bits=33", "-m", "1G,slots=3,maxmem=4G"),
    ("-m", "1G,slots=2,maxmem=3G", "-object", "memory-backend-ram,id=m0,size=5G",
     "-device", "pc-dimm,id=cd0,memdev=m0"),
    (*BASE, "-device", "pc-dimm,id=d1"),
    (*BASE, "-device", "nosuch"),
    (*BASE, "-device", "pc-dimm,id=d1,memdev=m1"),
    (*BASE, "-device", "pc-dimm,id=d1,memdev=pc.ram"),
    (*BASE, "-object", "memory-backend-ram,id=m1,size=128M",
     "-device", "pc-dimm,id=d1,memdev=m1,slot=abc"),
    (*BASE, "-object", "memory-backend-ram,id=m1,size=128M",
     "-device", "pc-dimm,id=1d,memdev=m1"),
    (*BASE, "-object", "memory-backend-ram,id=m1,size=128M",
     "-device", "pc-dimm,id=d1,memdev=m1,foo=1"),
    (*BASE, "-object", "memory-backend-ram,id=m1,size=128M",
     "-device", "pc-dimm,id=d1,memdev=m1,slot=7"),
    (*BASE, "-object", "memory-backend-ram,id=m1,size=128M",
     "-device", "pc-dimm,id=d1,memdev=m1,node=-1"),
    (*BASE, "-object", "memory-backend-ram,id=m1,size=128M",
     "-device", "pc-dimm,id=d1,memdev=m1,node=1"),
    (*BASE, "-object", "memory-backend-ram,id=m1,size=128M",
     "-device", "pc-dimm,id=d1,memdev=m1,addr=5G"),
    (*BASE, "-object", "memory-backend-ram,id=m1,size=3M",
     "-device", "pc-dimm,id=d1,memdev=m1"),
    (*BASE, "-object", "memory-backend-ram,id=m1,size=128M",
     "-device", "pc-dimm,id=d1,memdev=m1", "-device", "pc-dimm,id=d2,memdev=m1"),
    (*BASE, "-object", "memory-backend-ram,id=m1,size=128M",
     "-device", "pc-dimm,id=d1,memdev=m1", "-device", "pc-dimm,id=d1,memdev=m1"),
    ("-m", "1G", "-object", "memory-backend-ram,id=m1,size=128M",
     "-device", "pc-dimm,id=d1,memdev=m1"),
]


def _pyqom_startup(args: list[str]) -> tuple[int, list[str]]:
    """pyqom's exit status and stderr messages for a command line."""
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
def test_same_start_up_as_qemu(args: tuple[str, ...]) -> None:
    result = qemu_command_line(*args)
    expected = (result.returncode, stderr_messages(result.stderr, args))
    assert _pyqom_startup(list(args)) == expected
