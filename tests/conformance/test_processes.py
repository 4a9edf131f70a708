"""Whole processes against real QEMU 7.2: the same command line, the same bytes in.

Each scenario starts ``qemu-system-x86_64 -accel tcg <options> -qmp stdio``
and ``python -m pyqom <options> -qmp stdio`` side by side, writes the same
byte stream to both (``qmp_capabilities``, the scenario's lines, ``quit``)
and compares what comes out:

* the exit status;
* stderr, with the program name at the start of a line (``qemu-system-x86_64: ``
  or ``pyqom: ``) made the same;
* stdout as raw bytes, line by line with each line's ending (QMP ends every
  line in ``\r\n``), so key order, spacing and escapes are checked as well.

Only the values of event timestamps and the greeting's ``package`` string are
normalised, in the raw text.  Each process gets its own scratch directory (its
working directory, with the same layout), and that directory's path is
written as ``@TMP@`` in every answer.  Lists whose order is GLib hash order
in QEMU are compared as multisets of their entries' raw text: ``qom-list``
and ``qom-list-properties`` entries, ``query-memdev`` entries and the blocks
of HMP ``info memdev``.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest
from qemu_oracle import qemu_or_skip

K, M, G = 1 << 10, 1 << 20, 1 << 30
RAM = "memory-backend-ram"
FILE = "memory-backend-file"
BASE = ("-m", "1G,slots=3,maxmem=4G")
COMMON = ("-display", "none", "-nodefaults", "-S")
TIMEOUT = 30
#: extra runs of a QEMU that failed to start and lost its greeting (a race in QEMU)
QEMU_RETRIES = 6


# ---------------------------------------------------------------------------
# Building the byte stream
# ---------------------------------------------------------------------------

def qmp(command: str, arguments: dict[str, Any] | None = None) -> str:
    """One QMP command as a JSON line."""
    message: dict[str, Any] = {"execute": command}
    if arguments is not None:
        message["arguments"] = arguments
    return json.dumps(message)


def hmp(command_line: str) -> str:
    """An HMP command through ``human-monitor-command``."""
    return qmp("human-monitor-command", {"command-line": command_line})


def ram(name: str, size: int, **extra: Any) -> str:
    """``object-add`` of a ram backend."""
    return qmp("object-add", {"qom-type": RAM, "id": name, "size": size, **extra})


def file(name: str, size: int, path: str, **extra: Any) -> str:
    """``object-add`` of a file backend at ``@TMP@/path``."""
    return qmp("object-add", {"qom-type": FILE, "id": name, "size": size,
                              "mem-path": f"@TMP@/{path}", **extra})


def dimm(name: str | None, memdev: str | None, **props: Any) -> str:
    """``device_add`` of a pc-dimm (``None`` leaves the key out)."""
    arguments: dict[str, Any] = {"driver": "pc-dimm"}
    if name is not None:
        arguments["id"] = name
    if memdev is not None:
        arguments["memdev"] = memdev
    return qmp("device_add", {**arguments, **props})


def get(path: str, prop: str) -> str:
    """``qom-get``."""
    return qmp("qom-get", {"path": path, "property": prop})


def put(path: str, prop: str, value: Any) -> str:
    """``qom-set``."""
    return qmp("qom-set", {"path": path, "property": prop, "value": value})


def qlist(path: str) -> str:
    """``qom-list``."""
    return qmp("qom-list", {"path": path})


def odel(name: str) -> str:
    """``object-del``."""
    return qmp("object-del", {"id": name})


def ddel(name: str) -> str:
    """``device_del``."""
    return qmp("device_del", {"id": name})


QUERY = qmp("query-memory-devices")
MEMDEV = qmp("query-memdev")
SUMMARY = qmp("query-memory-size-summary")
OSPM = qmp("query-acpi-ospm-status")
PERIPHERAL = qlist("/machine/peripheral")
ANON = qlist("/machine/peripheral-anon")
INFO_DEVICES = hmp("info memory-devices")
INFO_MEMDEV = hmp("info memdev")
INFO_SUMMARY = hmp("info memory_size_summary")


@attrs.frozen
class Scenario:
    """Command-line options and the lines sent after ``qmp_capabilities``."""

    name: str
    args: tuple[str, ...]
    lines: tuple[str, ...] = ()
    #: ``False``: the lines are sent before any ``qmp_capabilities``.
    negotiate: bool = True
    machine: str = "pc"
    #: the start-up error comes so early in QEMU's board init that its monitor
    #: thread often loses the race to print the greeting (see :func:`run_both`)
    greeting_race: bool = False


def _s(name: str, args: Sequence[str], *lines: str, negotiate: bool = True,
       machine: str = "pc") -> Scenario:
    return Scenario(name, tuple(args), tuple(lines), negotiate, machine)


def _startup(name: str, *args: str, machine: str = "pc",
             greeting_race: bool = False) -> Scenario:
    return Scenario(name, args, (), True, machine, greeting_race)


def _cold(*options: str) -> tuple[str, ...]:
    """BASE plus ``-object``/``-device`` pairs given as ``kind=text``."""
    out = list(BASE)
    for option in options:
        kind, _, text = option.partition(" ")
        out += [kind, text]
    return tuple(out)


# ---------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------

STARTUP = [
    _startup("row-05-maxmem-below-ram", "-m", "1G,maxmem=512M"),
    _startup("row-06-maxmem-equal-with-slots", "-m", "1G,slots=2,maxmem=1G"),
    _startup("row-07-slots-without-maxmem", "-m", "1G,slots=2"),
    _startup("row-08-too-many-slots", "-m", "1G,slots=257,maxmem=2G"),
    _startup("row-09-maxmem-unaligned", "-m", "1G,slots=3,maxmem=4294967297"),
    _startup("row-10-maxmem-bytes", "-m", "1G,slots=3,maxmem=4096"),
    _startup("row-11-slots-not-a-number", "-m", "1G,slots=abc,maxmem=2G"),
    _startup("row-12-size-suffix-GB", "-m", "1GB"),
    _startup("row-13-unknown-m-key", "-m", "1G,foo=1"),
    _startup("row-14-old-machine", "-m", "1G,slots=3,maxmem=4G", machine="pc-i440fx-2.0"),
    _startup("row-71-fraction-without-suffix", "-m", "1.5"),
    _startup("row-72-object-bad-size", *BASE, "-object", f"{RAM},id=m1,size=1Q"),
    _startup("row-73-file-missing-dir", *BASE, "-object",
             f"{FILE},id=fm1,size=256M,mem-path=@TMP@/nonexistent/dir/file"),
    _startup("row-74-duplicate-object", *BASE, "-object", f"{RAM},id=m1,size=256M",
             "-object", f"{RAM},id=m1,size=256M"),
    _startup("row-75-752G-phys-bits", "-m", "1G,slots=256,maxmem=752G"),
    _startup("row-66-cold-dimm-too-big", "-m", "1G,slots=2,maxmem=3G",
             "-object", f"{RAM},id=m0,size=5G", "-device", "pc-dimm,id=cd0,memdev=m0"),
    _startup("object-errors-size-0-and-bad-id", *BASE, "-object", f"{RAM},id=m1,size=0"),
    _startup("object-bad-id", *BASE, "-object", f"{RAM},id=1m,size=1M"),
    _startup("object-reserved-pc-ram", *BASE, "-object", f"{RAM},id=pc.ram,size=1M",
             greeting_race=True),
    _startup("device-without-memdev", *_cold("-device pc-dimm,id=d1")),
    _startup("device-unknown-driver", *_cold("-device nosuch")),
    _startup("device-memdev-not-found", *_cold("-device pc-dimm,id=d1,memdev=m1")),
    _startup("device-busy-pc-ram", *_cold("-device pc-dimm,id=d1,memdev=pc.ram")),
    _startup("device-bad-slot", *_cold(f"-object {RAM},id=m1,size=128M",
                                       "-device pc-dimm,id=d1,memdev=m1,slot=7")),
    _startup("device-bad-node", *_cold(f"-object {RAM},id=m1,size=128M",
                                       "-device pc-dimm,id=d1,memdev=m1,node=1")),
    _startup("device-bad-id", *_cold(f"-object {RAM},id=m1,size=128M",
                                     "-device pc-dimm,id=1d,memdev=m1")),
    _startup("device-duplicate-id", *_cold(f"-object {RAM},id=m1,size=128M",
                                           "-device pc-dimm,id=d1,memdev=m1",
                                           "-device pc-dimm,id=d1,memdev=m1")),
    _startup("device-unknown-property", *_cold(f"-object {RAM},id=m1,size=128M",
                                               "-device pc-dimm,id=d1,memdev=m1,foo=1")),
    _startup("device-size-alignment", *_cold(f"-object {RAM},id=m1,size=3M",
                                             "-device pc-dimm,id=d1,memdev=m1")),
    _startup("cpu-phys-bits-out-of-range", *BASE, "-cpu", "qemu64,phys-bits=60",
             greeting_race=True),
    _startup("machine-unknown-property", *BASE, machine="pc,foo=1"),
    _startup("no-acpi-cold-dimm", "-no-acpi", *_cold(f"-object {RAM},id=m1,size=128M",
                                                     "-device pc-dimm,memdev=m1")),
]

SESSIONS = [
    _s("rows-15-18-hot-add-three-then-no-slot", BASE,
       get("/machine", "device-memory-region-size"), SUMMARY,
       *(ram(f"mem{i}", G) for i in range(1, 5)),
       dimm("dimm1", "mem1"), dimm("dimm2", "mem2"), SUMMARY, dimm("dimm3", "mem3"),
       dimm("dimm4", "mem4"), QUERY, SUMMARY, PERIPHERAL),
    _s("row-37-explicit-addr-then-auto", BASE, ram("m1", G), ram("m2", G), ram("m3", G),
       dimm("dimm1", "m1", addr=9 * G), dimm("d2", "m2"), dimm("d3", "m3", addr=5 * G),
       QUERY, get("d3", "slot")),
    _s("explicit-slot-then-auto", BASE, *(ram(f"m{i}", 256 * M) for i in range(1, 4)),
       dimm("d1", "m1", slot=2), dimm("d2", "m2"), dimm("d3", "m3"), QUERY, INFO_DEVICES),
    _s("rows-25-29-42-memdev-errors", BASE, ram("mem1", G), ram("mem2", G),
       dimm("dimm1", None), dimm("dimm1", "nosuch"), dimm("dimm1", "/machine"),
       dimm("dimm1", "pc.ram"), dimm("dimm1", ""), dimm("dimm1", "mem1"),
       dimm("dimm2", "mem1"), dimm("dimm1", "mem2"), dimm("dimm1", "mem2", foo=1), QUERY),
    _s("rows-30-31-34-slot-and-node-errors", BASE, ram("mem1", G), ram("mem2", G),
       dimm("d1", "mem1", slot=3), dimm("d1", "mem1", slot=-2), dimm("d1", "mem1", slot=1.5),
       dimm("d1", "mem1", node=1), dimm("d1", "mem1", node=-1), dimm("d1", "mem1", slot=0),
       dimm("d2", "mem2", slot=0), dimm("d2", "mem2", slot="2"), QUERY),
    _s("rows-35-38-address-errors", BASE, ram("mem1", G), ram("mem2", G),
       dimm("d1", "mem1", addr=4294967297), dimm("d1", "mem1", addr=2147483648),
       dimm("d1", "mem1", addr="5G"), dimm("dimm1", "mem1"),
       dimm("d2", "mem2", addr=0x100200000), QUERY),
    _s("row-39-capacity", ("-m", "1G,slots=2,maxmem=2G"), ram("mem1", G), ram("small", M),
       dimm("d1", "mem1"), dimm("d2", "small"), QUERY, SUMMARY),
    _s("row-40-backend-size-alignment", BASE, ram("m3", 3 * M), ram("m64", 64),
       dimm("d1", "m3"), dimm("d1", "m64"), QUERY),
    _s("rows-32-33-no-slots", ("-m", "1G"), ram("m1", G), dimm("d1", "m1"),
       dimm("d1", "m1", slot=0), QUERY, SUMMARY),
    _s("file-backend-hot-add", BASE, file("f1", 4 * M, "f1"), dimm("fd1", "f1"),
       get("/objects/f1", "mem-path"), get("f1", "size"), QUERY, MEMDEV, INFO_MEMDEV,
       SUMMARY),
    _s("row-78-file-first-fit", BASE, file("f1", 12 * K, "a"), file("f2", 4 * K, "b"),
       file("f3", M, "c"), dimm("d1", "f1", addr=0x100001000), dimm("d2", "f2"),
       dimm("d3", "f3"), QUERY, SUMMARY),
    _s("row-41-mixed-alignment", ("-m", "1G,slots=4,maxmem=3G"), ram("m1", 512 * M),
       file("f1", 4 * M + 4 * K, "f1"), ram("m2", G), dimm("d1", "m1"), dimm("d2", "f1"),
       dimm("d3", "m2"), QUERY),
    _s("file-backend-errors", BASE,
       file("f1", 64 * M, "nonexistent/dir/file"),
       qmp("object-add", {"qom-type": FILE, "id": "f2", "size": 64 * M}),
       file("f3", 64 * M, "f3", align=3 * M), file("f4", 64 * M, "f4", align=2 * K),
       file("f5", 64 * M, "f5"), MEMDEV),
    _s("rows-45-50-object-del-and-qom-set", BASE, ram("mem1", G), ram("mem2", G),
       dimm("dimm1", "mem1"), odel("mem1"), odel("nosuch"), odel("pc.ram"), odel("mem2"),
       odel("mem2"), put("/machine/peripheral/dimm1", "addr", 0),
       put("/machine/peripheral/dimm1", "size", 5),
       put("/machine/peripheral/dimm1", "memdev", "mem2"),
       put("/objects/mem1", "size", 2 * M), put("/objects/mem1", "share", True),
       put("/objects/mem1", "merge", False), get("/objects/mem1", "merge"),
       put("/objects/mem1", "merge", "off"), MEMDEV),
    _s("device-del-dimm-stays", BASE, ram("mem1", G), dimm("dimm1", "mem1"),
       ddel("dimm1"), ddel("/machine/peripheral/dimm1"), ddel("nosuch"),
       ddel("/objects/mem1"), ddel("/machine"), ddel(""), qmp("device_del", {}),
       QUERY, PERIPHERAL, odel("mem1"), OSPM),
    _s("object-add-errors-rows-19-24", BASE, ram("mem1", G), ram("mem1", G),
       ram("1mem", G), ram("z", 0), qmp("object-add", {"qom-type": RAM, "id": "x"}),
       qmp("object-add", {"qom-type": "memory-backend", "id": "x", "size": M}),
       qmp("object-add", {"qom-type": "nosuch", "id": "x"}),
       qmp("object-add", {"id": "x", "size": M}), ram("x", "1G"), ram("x", 1.5),
       ram("x", M, dump="yes"), ram("x", M, foo=1), ram("x", M, policy="bind"),
       ram("x", M, policy="nosuch"), ram("x", M, **{"host-nodes": [0]}),
       ram("x", M, **{"prealloc-threads": 0}), ram("m.1-_x", M), MEMDEV),
    _s("qom-get-values", BASE, ram("mem1", G, merge=False), dimm("dimm1", "mem1", slot=1),
       get("/machine", "device-memory-region-size"), get("/machine", "memory"),
       get("dimm1", "addr"), get("dimm1", "slot"), get("dimm1", "memdev"),
       get("dimm1", "hotplugged"), get("dimm1", "hotpluggable"), get("dimm1", "realized"),
       get("dimm1", "node"), get("dimm1", "size"), get("mem1", "merge"),
       get("mem1", "policy"), get("mem1", "host-nodes"), get("mem1", "nosuch"),
       get("/nosuch", "size"), get("", "size"), get("/machine/peripheral", "type")),
    _s("qom-list-modelled-objects", BASE, ram("mem1", G), file("f1", 4 * M, "f1"),
       dimm("dimm1", "mem1"), dimm(None, "f1"), qlist("/objects"), qlist("/objects/mem1"),
       qlist("/objects/f1"), qlist("dimm1"), PERIPHERAL, ANON, qlist("/nosuch"),
       qlist(""), qmp("qom-list", {})),
    _s("qom-list-types", BASE,
       qmp("qom-list-types", {"implements": "memory-backend"}),
       qmp("qom-list-types", {"implements": "memory-backend", "abstract": True}),
       qmp("qom-list-types", {"implements": "memory-backend-ram"}),
       qmp("qom-list-types", {"implements": "nosuch"}),
       qmp("qom-list-types", {"implements": 5}),
       qmp("qom-list-types", {"bogus": 1})),
    _s("introspection-properties", BASE,
       qmp("qom-list-properties", {"typename": RAM}),
       qmp("qom-list-properties", {"typename": FILE}),
       qmp("qom-list-properties", {"typename": "nosuch"}),
       qmp("device-list-properties", {"typename": "pc-dimm"}),
       qmp("device-list-properties", {"typename": RAM}),
       qmp("device-list-properties", {"typename": "nosuch"})),
    _s("query-acpi-ospm-status", BASE, OSPM, ram("m1", G), dimm("d1", "m1", slot=2), OSPM),
    _s("query-status-and-summary", BASE, qmp("query-status"), SUMMARY,
       qmp("stop"), qmp("query-status")),
    _s("cold-plug-then-hot-plug", ("-m", "2G,slots=4,maxmem=8G",
                                   "-object", f"{RAM},id=c1m,size=512M",
                                   "-object", f"{RAM},id=c2m,size=1G",
                                   "-device", "pc-dimm,id=c1,memdev=c1m,slot=3",
                                   "-device", "pc-dimm,id=c2,memdev=c2m,addr=0x1c0000000"),
       ram("h1m", G), dimm("h1", "h1m"), QUERY, SUMMARY, MEMDEV, INFO_DEVICES,
       get("c1", "hotplugged"), OSPM),
    _s("cold-file-and-anonymous", ("-m", "1G,slots=3,maxmem=4G",
                                   "-object", f"{FILE},id=f1,size=128M,mem-path=@TMP@/f1",
                                   "-device", "pc-dimm,memdev=f1"),
       QUERY, ANON, INFO_DEVICES, MEMDEV),
    _s("row-75-751G-starts", ("-m", "1G,slots=256,maxmem=751G"),
       get("/machine", "device-memory-region-size")),
    _s("protocol-errors", BASE,
       '{"execute": "query-memory-devices"',
       '}',
       '{"execute": }',
       '[1, 2]',
       '"hello"',
       '{"arguments": {}}',
       '{"execute": 5}',
       '{"execute": "nosuch"}',
       '{"execute": "query-memdev", "arguments": {"x": 1}}',
       '{"execute": "query-memdev", "arguments": []}',
       '{"execute": "object-del", "arguments": {"id": 5}}',
       '{"execute": "object-del"}',
       '{"execute": "query-memdev", "id": "abc"}',
       '{"execute": "query-memdev", "id": {"x": [1]}}',
       '{"execute": "nosuch", "id": 7}',
       '{"execute": "query-memdev", "extra": 1}',
       '{"execute": "qmp_capabilities"}',
       '{"execute": "human-monitor-command", "arguments": {"command-line": 5}}'),
    _s("commands-before-capabilities", BASE,
       QUERY, qmp("nosuch"), '{"execute": "query-memdev", "id": 1}', "{",
       "}", qmp("qmp_capabilities", {"enable": ["nosuch"]}),
       qmp("qmp_capabilities", {"enable": 5}), qmp("qmp_capabilities"), QUERY,
       qmp("qmp_capabilities"),
       negotiate=False),
    _s("hmp-info-commands", BASE, INFO_DEVICES, INFO_MEMDEV, INFO_SUMMARY,
       ram("m1", G), ram("m2", 512 * M, share=True), dimm("d1", "m1"), dimm(None, "m2"),
       INFO_DEVICES, INFO_MEMDEV, INFO_SUMMARY),
    _s("hmp-object-add-errors", BASE, hmp("object_add memory-backend-ram,id=h1,size=64M"),
       hmp("object_add memory-backend-ram,id=h1,size=64M"),
       hmp("object_add memory-backend-ram,id=h2,size=1Q"),
       hmp("object_add memory-backend-ram,id=1h,size=1M"),
       hmp("object_add memory-backend-ram,id=h,size=64M,prealloc=on,reserve=off"),
       hmp("object_add memory-backend-ram,id=h,size=64M,policy=bind"),
       hmp("object_add memory-backend-ram,id=x,size=1M,foo=1"),
       hmp("object_add memory-backend-ram,id=x,size=1M,dump=maybe"),
       hmp("object_add nosuch,id=x"), hmp("object_add"),
       hmp("object_add memory-backend-ram,id=x"),
       hmp("object_add memory-backend-ram,id=h3,size=1.5M,merge=y"), INFO_MEMDEV),
    _s("hmp-file-backend-errors", BASE,
       hmp("object_add memory-backend-file,id=h,size=64M,mem-path=@TMP@/f,align=3M"),
       hmp("object_add memory-backend-file,id=h,size=64M,mem-path=@TMP@/f,align=2K"),
       hmp("object_add memory-backend-file,id=h,size=64M,mem-path=@TMP@/no/such/f"),
       hmp("object_add memory-backend-memfd,id=h,size=64M,hugetlb=on,hugetlbsize=3M"),
       hmp("object_add memory-backend-file,id=h,size=4M,mem-path=@TMP@/f"),
       INFO_MEMDEV),
    _s("hmp-device-and-object-del", BASE, ram("h1", 128 * M),
       hmp("device_add pc-dimm,id=hd1,memdev=h1"), hmp("device_add pc-dimm,id=hd2,memdev=h1"),
       hmp("device_add pc-dimm,id=hd2,memdev=m9"), hmp("device_add pc-dimm,id=hd2"),
       hmp("device_add pc-dimm,id=hd2,memdev=h1,slot=9"), hmp("device_add nosuch"),
       hmp("object_del h1"), hmp("object_del nosuch"), hmp("object_del"),
       hmp("device_del hd1"), hmp("device_del nosuch"), hmp("object_del h1"),
       INFO_DEVICES),
    _s("hmp-device-add-bad-id-on-stderr", BASE, ram("h1", 128 * M),
       hmp("device_add pc-dimm,id=1d,memdev=h1"), QUERY),
    _s("hmp-qom-commands", BASE, ram("m1", 128 * M), dimm("d1", "m1"),
       hmp("qom-get /objects/m1 size"), hmp("qom-get /objects/m1 policy"),
       hmp("qom-get /objects/m1 host-nodes"), hmp("qom-get /machine memory"),
       hmp("qom-get /objects/m1 nosuch"), hmp("qom-get /nosuch size"),
       hmp("qom-set /objects/m1 merge off"), hmp("qom-get m1 merge"),
       hmp("qom-set /objects/m1 merge maybe"), hmp("qom-set /objects/m1 size 1"),
       hmp("qom-get d1 addr"), hmp("qom-get d1 memdev")),
    _s("id-echo-and-quit-order", BASE, '{"execute": "query-memory-devices", "id": 1}',
       '{"execute": "object-add", "id": "a", "arguments": '
       '{"qom-type": "memory-backend-ram", "id": "m1", "size": 1073741824}}',
       '{"execute": "device_add", "id": ["b"], "arguments": '
       '{"driver": "pc-dimm", "id": "d1", "memdev": "m1"}}',
       '{"execute": "query-memory-devices", "id": {"n": 2}}',
       '{"execute": "object-del", "id": null, "arguments": {"id": "m1"}}'),
    _s("device-add-type-coercion", BASE, ram("m1", 128 * M), ram("m2", 128 * M),
       dimm("d1", "m1", slot="1", addr="0x100000000"), dimm("d2", 5),
       dimm("d2", "m2", slot=None), dimm("d2", "m2", node=-1), dimm("d2", "m2", size=5),
       qmp("device_add", {"driver": "pc-dimm", "id": 5, "memdev": "m2"}), QUERY, ANON),
    _s("memfd-backend-hot-add", BASE,
       qmp("object-add", {"qom-type": "memory-backend-memfd", "id": "mf", "size": 64 * M}),
       dimm("d1", "mf"), QUERY, MEMDEV, get("mf", "seal")),
    _s("query-memory-size-summary-after-unplug-request", ("-m", "512M,slots=2,maxmem=2G"),
       ram("m1", 256 * M), dimm("d1", "m1"), ddel("d1"), SUMMARY, INFO_SUMMARY),
    _s("row-44-hotplug-support-off", ("-global", "PIIX4_PM.memory-hotplug-support=off",
                                      *BASE), ram("m1", G), dimm("d1", "m1"), QUERY, OSPM),
    _s("row-43-no-acpi", ("-no-acpi", *BASE), ram("m1", G), dimm("d1", "m1"), QUERY),
    _s("nothing-after-quit", BASE, ram("m1", G), qmp("quit"), QUERY, qmp("nosuch")),
    _s("backend-policy-and-live-qom-set", BASE,
       ram("b1", 64 * M, policy="bind", **{"host-nodes": [0]}),
       ram("b2", 64 * M, policy="preferred", **{"host-nodes": [0]}),
       ram("b3", 64 * M, policy="interleave", **{"host-nodes": [0]}),
       put("b1", "dump", False), put("b1", "prealloc-threads", 4),
       get("b1", "prealloc-threads"), put("b1", "policy", "default"),
       put("b1", "host-nodes", [0]), put("b1", "reserve", False), put("b1", "nosuch", 1),
       put("b1", "dump", "no"), get("b1", "host-nodes"), get("b1", "policy"),
       MEMDEV, INFO_MEMDEV),
    _s("hmp-info-status-numa-and-qom-list", BASE, ram("m1", G), dimm("d1", "m1"),
       hmp("info status"), hmp("info numa"), hmp("qom-list /machine/peripheral"),
       hmp("qom-list /nosuch"), hmp("info nosuch"), hmp("nosuch"), hmp(""),
       hmp("device_del"), hmp("stop"), hmp("info status")),
    _s("anonymous-dimm-by-path", BASE, ram("m1", G), ram("m2", G), dimm(None, "m1"),
       ddel("/machine/peripheral-anon/device[0]"), dimm(None, "m2", slot=0),
       dimm(None, "m2"), ANON, QUERY, INFO_DEVICES, OSPM),
    _s("protocol-framing", BASE,
       '{"execute": "query-status"} {"execute": "query-memory-devices", "id": "x"}',
       '   ', '{"execute": "query-status",', ' "id": 3}',
       '{"exec-oob": "query-status"}',
       '{"execute": "query-status", "exec-oob": "query-status"}',
       '{"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}}',
       '{"execute": "query-status", "arguments": null}',
       '{"execute": "query-status", "control": {}}',
       '{"execute": "qom-get", "arguments": {"path": "/machine", "property": "memory"}, '
       '"id": [1, {"a": null}]}',
       '{"execute": "object-add", "arguments": {"qom-type": "memory-backend-ram", '
       r'"id": "u\u00e9", "size": 1048576}}',
       r'{"execute": "query-status", "id": "\ud83d\ude00"}',
       '{"execute": "query-status", "id": 1e400}',
       '{"execute": "query-status", "id": -0.5}',
       '{"execute": "query-status", "id": 18446744073709551616}',
       "{'execute': 'query-status'}",
       '{"execute": "query-status"}]'),
    _s("sizes-on-the-command-line", ("-m", "100k"), SUMMARY, get("/machine", "memory")),
    _s("default-ram-size", ("-m", "0"), SUMMARY, MEMDEV, INFO_MEMDEV),
    _s("row-55-file-size-mismatch", BASE, file("f1", 0x401000, "x"), odel("f1"),
       hmp("object_add memory-backend-file,id=h,size=64M,mem-path=@TMP@/x"),
       file("f2", 64 * M, "x"), file("f3", 0x401000, "x", share=True, readonly=True),
       get("f3", "mem-path"), get("f3", "readonly"), get("f3", "share"), MEMDEV),
    _s("re-add-after-object-del", BASE, ram("m1", G), odel("m1"), ram("m1", 512 * M),
       dimm("d1", "m1"), ddel("d1"), odel("m1"), get("d1", "size"), QUERY,
       qmp("qom-list-properties", {"typename": "memory-backend-memfd"})),
    _s("slot-255-of-256", ("-m", "1G,slots=256,maxmem=751G"), ram("m1", G), ram("m2", G),
       dimm("d1", "m1", slot=255), dimm("d2", "m2", slot=256), dimm("d2", "m2"), QUERY,
       SUMMARY),
    _s("memfd-errors", BASE,
       qmp("object-add", {"qom-type": "memory-backend-memfd", "id": "h", "size": 64 * M,
                          "hugetlb": True, "hugetlbsize": 3 * M}),
       qmp("object-add", {"qom-type": "memory-backend-memfd", "id": "h", "size": 64 * M,
                          "seal": "yes"}),
       qmp("object-add", {"qom-type": "memory-backend-memfd", "id": "h", "size": 64 * M,
                          "seal": False, "share": False}),
       get("h", "seal"), get("h", "hugetlb"), get("h", "share"), MEMDEV),
    _s("hmp-odd-corners", BASE, ram("m1", 128 * M),
       hmp("device_add pc-dimm,help"), hmp("object_add memory-backend-ram,help"),
       hmp("object_add memory-backend-file,id=x,help"),
       hmp("object_add qom-type=memory-backend,help"),
       hmp("qom-set -j /objects/m1 merge false"), hmp("qom-set -j /objects/m1 merge off"),
       hmp("qom-get /objects/m1 merge"), hmp("info memory-devices extra"),
       hmp("object_del m1 extra"), hmp("device_add pc-dimm,id=d1,memdev=m1,slot=x"),
       hmp("device_add pc-dimm,memdev=m1,node=1"), hmp("device_add pc-dimm,memdev=m1"),
       hmp("info memory-devices")),
    _s("share-and-reserve", BASE, ram("m1", 64 * M, share=True, reserve=False),
       ram("m2", 64 * M, prealloc=True, reserve=False), ram("m3", 64 * M, dump=False),
       MEMDEV, INFO_MEMDEV),
]

#: hostile input that once took a pyqom monitor down (issue 16): QEMU answers each
HOSTILE = [
    _s("hostile-huge-integers", BASE,
       '{"execute":"query-status","id":' + "1" * 5000 + "}",
       '{"execute":"query-status","id":-' + "9" * 5000 + "}",
       '{"execute":"query-status","id":"after"}'),
    _s("hostile-deep-nesting", BASE,
       '{"execute":"query-status","id":' + "[" * 1023 + "]" * 1023 + "}",
       '{"execute":"query-status","id":' + '{"a":' * 600 + "1" + "}" * 600 + "}",
       '{"execute":"query-status","id":' + "[" * 1024 + "]" * 1024 + "}",
       '{"execute":"query-status","id":"after"}'),
    _s("hostile-long-numbers", BASE, ram("m1", 128 * M),
       hmp("object_add memory-backend-ram,id=m2,size=" + "1" * 100000),
       hmp("device_add pc-dimm,id=d1,memdev=m1,slot=" + "1" * 100000),
       hmp("device_add pc-dimm,id=d1,memdev=m1,addr=0x" + "f" * 100000),
       hmp("object_add memory-backend-ram,id=m3,size=1." + "5" * 100000 + "K"),
       qmp("device_add", {"driver": "pc-dimm", "id": "d2", "memdev": "m1",
                          "slot": "1" * 100000}),
       QUERY, MEMDEV),
    _s("hostile-deep-keys", BASE,
       hmp("object_add memory-backend-ram,id=m1,size=1G," + "a" + ".a" * 1500 + "=1"),
       hmp("object_add memory-backend-ram,id=m1,size=1G,x" + ".0" * 1500 + "=1"),
       MEMDEV),
]

SCENARIOS = STARTUP + SESSIONS + HOSTILE


# ---------------------------------------------------------------------------
# Running both processes
# ---------------------------------------------------------------------------

@attrs.frozen
class Outcome:
    """What one process did with the byte stream."""

    status: int
    stdout: str
    stderr: str


def _stream(scenario: Scenario, tmp: Path) -> bytes:
    lines = list(scenario.lines)
    if scenario.negotiate:
        lines.insert(0, qmp("qmp_capabilities"))
    lines.append(qmp("quit"))
    return "".join(f"{line}\n" for line in lines).replace("@TMP@", str(tmp)).encode()


def _run(argv: list[str], stream: bytes, cwd: Path, env: dict[str, str]) -> Outcome:
    result = subprocess.run(argv, input=stream, capture_output=True, cwd=cwd, env=env,
                            timeout=TIMEOUT)
    # surrogateescape keeps every byte: nothing invalid is replaced before comparing.
    return Outcome(result.returncode, result.stdout.decode(errors="surrogateescape"),
                   result.stderr.decode(errors="surrogateescape"))


def _argv(scenario: Scenario, tmp: Path) -> list[str]:
    args = [arg.replace("@TMP@", str(tmp)) for arg in scenario.args]
    return ["-machine", scenario.machine, *COMMON, *args, "-qmp", "stdio"]


def run_both(scenario: Scenario, tmp_path: Path) -> tuple[Outcome, Outcome]:
    """Run QEMU and pyqom concurrently; each in its own scratch directory.

    QEMU 7.2 sends the QMP greeting from its monitor I/O thread while the main
    thread goes on with board init: when that fails, the greeting usually
    makes it to stdout before ``exit(1)``, but under load it can be lost.
    A failed QEMU run without its greeting is run again (``QEMU_RETRIES`` times)
    when pyqom printed one.  (Errors raised at the very start of board init,
    ``Scenario.greeting_race``, lose it most of the time; the test accepts
    pyqom's greeting there when QEMU never printed one.)
    """
    qemu = qemu_or_skip()
    dirs = {name: tmp_path / name for name in ("qemu", "pyqom")}
    for path in dirs.values():
        path.mkdir()
    env = {**os.environ, "PYQOM_DISABLE_PLUGIN_AUTOLOAD": "1"}
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        expected = pool.submit(_run, [qemu, "-accel", "tcg", *_argv(scenario, dirs["qemu"])],
                               _stream(scenario, dirs["qemu"]), dirs["qemu"], env)
        actual = pool.submit(_run, [sys.executable, "-m", "pyqom",
                                    *_argv(scenario, dirs["pyqom"])],
                             _stream(scenario, dirs["pyqom"]), dirs["pyqom"], env)
        qemu_outcome = expected.result()
        for _ in range(QEMU_RETRIES):
            if qemu_outcome.status == 0 or qemu_outcome.stdout or '"QMP"' not in \
                    actual.result().stdout:
                break
            qemu_outcome = _run([qemu, "-accel", "tcg", *_argv(scenario, dirs["qemu"])],
                                _stream(scenario, dirs["qemu"]), dirs["qemu"], env)
        return _normalise(qemu_outcome, dirs["qemu"]), _normalise(actual.result(), dirs["pyqom"])


# ---------------------------------------------------------------------------
# Normalising
# ---------------------------------------------------------------------------

PROGRAM = re.compile(r"^(qemu-system-x86_64|pyqom): ", re.MULTILINE)


def _normalise(outcome: Outcome, tmp: Path) -> Outcome:
    return Outcome(outcome.status, outcome.stdout.replace(str(tmp), "@TMP@"),
                   PROGRAM.sub("PROG: ", outcome.stderr.replace(str(tmp), "@TMP@")))


def _is_hash_ordered_list(value: Any) -> bool:
    """Entries of ``qom-list``, ``qom-list-properties``, ``qom-list-types``, ``query-memdev``.

    (``device-list-properties`` keeps qdev's declaration order: entries with
    ``default-value`` stay ordered.)
    """
    return (isinstance(value, list) and bool(value)
            and all(isinstance(item, dict) for item in value)
            and ((all("name" in item for item in value)
                  and not any("default-value" in item for item in value))
                 or all("policy" in item and "host-nodes" in item for item in value)))


def _reject(constant: str) -> Any:
    raise ValueError(constant)


TIMESTAMP = re.compile(r'"timestamp": \{"seconds": -?\d+, "microseconds": -?\d+\}')
PACKAGE = re.compile(r'^(\{"QMP": \{"version": \{.*"package": )"(?:[^"\\]|\\.)*"')


def _lines(text: str) -> list[str]:
    """The lines of ``text``, each with its own ending (``\r\n``, ``\n`` or none)."""
    return re.findall(r"[^\n]*\n|[^\n]+$", text)


def _array_entries(text: str, start: int) -> tuple[list[str], int]:
    """The raw text of each element of the JSON array opening at ``text[start]``,
    and the index just after its closing bracket."""
    entries: list[str] = []
    depth, begin, index, in_string = 0, start + 1, start, False
    while True:
        char = text[index]
        if in_string:
            if char == "\\":
                index += 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
            if depth == 0:
                entries.append(text[begin:index].strip())
                return [entry for entry in entries if entry], index + 1
        elif char == "," and depth == 1:
            entries.append(text[begin:index].strip())
            begin = index + 1
        index += 1


def _canonical(line: str) -> str:
    """The raw line with timestamps and the package blanked, and the entries of a
    GLib-hash-ordered list (or the blocks of ``info memdev``) sorted as raw text."""
    line = PACKAGE.sub(r'\1"PACKAGE"', TIMESTAMP.sub(
        '"timestamp": {"seconds": 0, "microseconds": 0}', line))
    try:
        value = json.loads(line, parse_constant=_reject)
    except (ValueError, RecursionError):  # not strict JSON, or nested past json's limit
        return line
    if not isinstance(value, dict):
        return line
    result = value.get("return")
    head = '{"return": '
    if _is_hash_ordered_list(result) and line.startswith(head + "["):
        entries, end = _array_entries(line, len(head))
        return head + "[" + ", ".join(sorted(entries)) + "]" + line[end:]
    if isinstance(result, str) and result.startswith("memory backend: "):
        string_end = line.rindex('"')
        body = line[len(head) + 1:string_end]
        content, blank, _ = body.rpartition("\\r\\n\\r\\n")
        blocks = re.split(r"(?=memory backend: )", content + "\\r\\n" if blank else body)
        return (head + '"' + "".join(sorted(block for block in blocks if block))
                + ("\\r\\n" if blank else "") + line[string_end:])
    return line


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_same_process_as_qemu(scenario: Scenario, tmp_path: Path) -> None:
    """Exit status, stderr and stdout's bytes, line endings included, are QEMU 7.2's."""
    expected, actual = run_both(scenario, tmp_path)
    assert (actual.status, actual.stderr) == (expected.status, expected.stderr)
    if scenario.greeting_race and expected.status and not expected.stdout:
        lines = _lines(actual.stdout)
        assert len(lines) == 1 and lines[0].endswith("\r\n") and '"QMP"' in json.loads(
            lines[0]), lines
        return
    actual_lines = _lines(actual.stdout)
    expected_lines = _lines(expected.stdout)
    for number, (mine, theirs) in enumerate(zip(actual_lines, expected_lines, strict=False)):
        assert (number, _canonical(mine)) == (number, _canonical(theirs))
    assert len(actual_lines) == len(expected_lines), (actual_lines, expected_lines)


def test_raw_entries_of_a_hash_ordered_list() -> None:
    """The multiset comparison keeps each entry's raw bytes (spacing, escapes)."""
    line = '{"return": [{"name": "b,]", "type": "x"}, {"name": "a", "type": "y"}]}\r\n'
    swapped = '{"return": [{"name": "a", "type": "y"}, {"name": "b,]", "type": "x"}]}\r\n'
    assert _canonical(line) == _canonical(swapped)
    assert _canonical(line) != _canonical(swapped.replace('"a"', '"\\u0061"'))
    assert _canonical(line) != _canonical(swapped.replace("\r\n", "\n"))


def test_at_least_forty_scenarios() -> None:
    """Issue 5 asks for at least 40 end-to-end scenarios."""
    assert len(SCENARIOS) >= 40
    assert len({scenario.name for scenario in SCENARIOS}) == len(SCENARIOS)
