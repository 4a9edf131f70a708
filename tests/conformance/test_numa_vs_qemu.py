"""Issue 12 (-smp, -numa, -machine memory-backend, DIMM node=) against real QEMU 7.2.

Written before pyqom has these options: each case runs the same command line
and byte stream on ``qemu-system-x86_64`` and on ``python -m pyqom`` through
:func:`test_processes.run_both` (``-machine pc -display none -nodefaults -S
<options> -qmp stdio``, ``qmp_capabilities``, the case's lines, ``quit``) and
compares what the user gets, as :mod:`test_processes` does: the exit status,
stderr with the program name made the same (``PROG: ``), and stdout's raw
bytes line by line.

One thing more is blanked here, in the raw text: the host thread id
``query-cpus-fast`` reports for each vCPU (the top-level ``"thread-id"`` of an
entry, not the topology ``thread-id`` in ``props``), since QEMU's is the id of
a host thread and changes from run to run.

``info mtree`` is compared as :mod:`test_mtree` does for the sections that
show guest RAM (QEMU lists many more devices than pyqom models): the
``memory-region: pc.ram`` section (the ``pc.ram`` container with one
subregion per node backend) line for line, and the ``ram-below-4g`` /
``ram-above-4g`` alias lines of ``address-space: memory``.

The ACPI tables of a few NUMA machines are compared through ``iasl -d``: QEMU's
are the ones SeaBIOS installed (read as ``dump_qemu_tables.py`` beside the
cached tables does), pyqom's are its ``-dump-acpi`` files.  SRAT, SLIT and
APIC hold no addresses of the table blob, so their disassemblies are compared
whole (iasl's header comment, with its date and file names, removed).  pyqom's
DSDT holds only part of QEMU's, so from it the memory-hotplug AML
(:func:`acpi_testdata.memory_hotplug_part`) is compared.

HMAT (``-machine hmat=on``, ``initiator=``, ``-numa hmat-lb``/``hmat-cache``)
cases are in their own lists and test functions (``-k hmat`` selects them) so
that they can be left for later.

``PYTHONPATH=.:tests/conformance:tests/devices/acpi python
tests/conformance/test_numa_vs_qemu.py`` prints QEMU's side of every case (pyqom
is not run): the table below was checked against it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import pytest
from acpi_testdata import memory_hotplug_part, normalise
from qemu_oracle import qemu_or_skip
from test_mtree import _sections
from test_processes import (
    Outcome,
    Scenario,
    _argv,
    _canonical,
    _lines,
    _normalise,
    _run,
    _stream,
    hmp,
    qmp,
    run_both,
)

K, M, G = 1 << 10, 1 << 20, 1 << 30
RAM = "memory-backend-ram"

# ---------------------------------------------------------------------------
# What is asked of a machine that starts
# ---------------------------------------------------------------------------

INFO_NUMA = hmp("info numa")
SUMMARY = qmp("query-memory-size-summary")
CPUS = qmp("query-cpus-fast")
HOTPLUGGABLE = qmp("query-hotpluggable-cpus")
MEMDEV = qmp("query-memdev")
DEVICES = qmp("query-memory-devices")
INFO_DEVICES = hmp("info memory-devices")
#: what every valid start-up line is asked
STATE = (INFO_NUMA, SUMMARY, CPUS, HOTPLUGGABLE, MEMDEV)


def get(path: str, prop: str) -> str:
    """``qom-get``."""
    return qmp("qom-get", {"path": path, "property": prop})


def ram_add(name: str, size: int) -> str:
    """``object-add`` of a ram backend."""
    return qmp("object-add", {"qom-type": RAM, "id": name, "size": size})


def dimm(name: str, memdev: str, node: int) -> str:
    """``device_add`` of a pc-dimm on ``node``."""
    return qmp("device_add", {"driver": "pc-dimm", "id": name, "memdev": memdev,
                              "node": node})


def backends(*sizes: str) -> tuple[str, ...]:
    """``-object memory-backend-ram,id=mN,size=S`` for each size, N from 0."""
    out: list[str] = []
    for index, size in enumerate(sizes):
        out += ["-object", f"{RAM},id=m{index},size={size}"]
    return tuple(out)


def nodes(*sizes: str, cpus: tuple[str, ...] = ()) -> tuple[str, ...]:
    """A backend per size and ``-numa node,nodeid=N,memdev=mN[,cpus=..]`` for each."""
    out = list(backends(*sizes))
    for index in range(len(sizes)):
        text = f"node,nodeid={index},memdev=m{index}"
        if index < len(cpus) and cpus[index]:
            text += f",cpus={cpus[index]}"
        out += ["-numa", text]
    return tuple(out)


def numa(*texts: str) -> tuple[str, ...]:
    """``-numa TEXT`` for each text."""
    out: list[str] = []
    for text in texts:
        out += ["-numa", text]
    return tuple(out)


def ok(name: str, *args: str, lines: tuple[str, ...] = STATE, machine: str = "pc") -> Scenario:
    """A line QEMU starts with; it is asked ``lines`` (default :data:`STATE`)."""
    return Scenario(name, args, lines, True, machine)


def bad(name: str, *args: str, machine: str = "pc", greeting_race: bool = True) -> Scenario:
    """A line QEMU refuses at start-up (exit 1, its message on stderr).

    QEMU 7.2 checks ``-smp`` before it creates its monitors, so it never
    prints a QMP greeting for those (``greeting_race=False``); every other
    error here comes after, while its monitor thread may or may not have sent
    the greeting yet (:func:`test_processes.run_both` retries QEMU for it).
    """
    return Scenario(name, args, (), True, machine, greeting_race)


TWO_NODES = ("-m", "2G", *nodes("1G", "1G"))
THREE_NODES = ("-m", "3G", *nodes("1G", "1G", "1G"))
TWO_NODES_4CPUS = ("-m", "2G", "-smp", "4,sockets=2,cores=2", *nodes("1G", "1G"))
HOTPLUG_TWO_NODES = ("-m", "2G,slots=2,maxmem=4G", *nodes("1G", "1G"))
HMAT_TWO_NODES = ("-machine", "hmat=on", "-m", "2G", "-smp", "2", *backends("1G", "1G"))
#: latency and bandwidth of each initiator/target pair (local 10 ns and 10G, remote 20 ns, 5G)
HMAT_LB_VALUES = tuple(
    f"hmat-lb,initiator={i},target={t},hierarchy=memory,data-type=access-{kind}," + (
        f"latency={10 if i == t else 20}" if kind == "latency"
        else f"bandwidth={10 if i == t else 5}G")
    for i in (0, 1) for t in (0, 1) for kind in ("latency", "bandwidth"))
HMAT_CACHE = tuple(f"hmat-cache,node-id={n},size=10K,level=1,associativity=direct,"
                   "policy=write-back,line=8" for n in (0, 1))

# ---------------------------------------------------------------------------
# -smp
# ---------------------------------------------------------------------------

SMP = [
    ok("smp-cpus-only", "-smp", "4"),
    ok("smp-sockets-cores-threads", "-smp", "sockets=2,cores=2,threads=2",
       lines=(*STATE, get("/machine", "smp"))),
    ok("smp-maxcpus", "-smp", "2,maxcpus=8", lines=(*STATE, get("/machine", "smp"))),
    ok("smp-maxcpus-with-topology", "-smp", "4,maxcpus=8,sockets=2,cores=2"),
    ok("smp-dies", "-smp", "8,dies=2,sockets=2,cores=2",
       lines=(*STATE, get("/machine", "smp"))),
    ok("smp-zero-cpus-deprecated", "-smp", "0"),
    ok("smp-zero-cpus-key-deprecated", "-smp", "cpus=0"),
    ok("smp-zero-sockets-deprecated", "-smp", "sockets=0"),
    bad("smp-maxcpus-below-cpus", "-smp", "4,maxcpus=2", greeting_race=False),
    bad("smp-product-mismatch", "-smp", "5,sockets=2,cores=2", greeting_race=False),
    bad("smp-product-mismatch-threads", "-smp", "4,sockets=2,cores=2,threads=2", greeting_race=False),
    bad("smp-above-machine-max-256", "-smp", "256", greeting_race=False),
    bad("smp-above-machine-max-289", "-smp", "289", greeting_race=False),
    # the members are C unsigned ints, printed with %d
    bad("smp-negative-cpus", "-smp", "-1", greeting_race=False),
    bad("smp-negative-maxcpus", "-smp", "cpus=2,maxcpus=-4", greeting_race=False),
    bad("smp-with-threads-and-bad-phys-bits", "-smp", "2,threads=2", "-cpu",
        "qemu64,phys-bits=60"),
]

# ---------------------------------------------------------------------------
# -numa node
# ---------------------------------------------------------------------------

NODES = [
    ok("node-memdev-two-nodes", *TWO_NODES, lines=(
        *STATE, get("/machine", "memory-backend"), get("/machine", "memory"))),
    ok("node-memdev-three-unequal", "-m", "2G", "-smp", "4",
       *nodes("512M", "1G", "512M", cpus=("0", "1-2", "3"))),
    ok("node-without-nodeid", "-m", "2G", *backends("1G", "1G"),
       *numa("node,memdev=m0", "node,memdev=m1")),
    bad("node-memdev-sum-below-ram", "-m", "2G", *nodes("1G", "512M")),
    bad("node-memdev-missing-on-one", "-m", "2G", *backends("1G"),
        *numa("node,memdev=m0", "node")),
    bad("node-no-memdev-anywhere", "-m", "2G", *numa("node", "node")),
    bad("node-mem-refused-on-7.2", "-m", "2G", *numa("node,mem=1G", "node,mem=1G")),
    bad("node-mem-refused-on-5.1", "-m", "2G", *numa("node,mem=1G", "node,mem=1G"),
        machine="pc-i440fx-5.1"),
    ok("node-mem-on-2.0-deprecated", "-m", "2G", *numa("node,mem=1G", "node,mem=1G"),
       machine="pc-i440fx-2.0"),
    ok("node-mem-on-2.1-deprecated", "-m", "2G", *numa("node,mem=1G", "node,mem=1G"),
       machine="pc-i440fx-2.1"),
    bad("node-mem-sum-on-2.1", "-m", "2G", *numa("node,mem=1G", "node,mem=512M"),
        machine="pc-i440fx-2.1"),
    bad("node-mem-and-memdev", "-m", "2G", *backends("1G", "1G"),
        *numa("node,memdev=m0,mem=1G", "node,memdev=m1")),
    bad("node-memdev-not-found", "-m", "2G", *backends("1G", "1G"),
        *numa("node,memdev=m0", "node,memdev=nosuch")),
    bad("node-memdev-used-twice", "-m", "2G", *backends("1G", "1G"),
        *numa("node,memdev=m0", "node,memdev=m0")),
    bad("node-duplicate-nodeid", "-m", "2G", *numa("node,nodeid=0", "node,nodeid=0")),
    bad("node-nodeid-128", "-m", "2G", *numa("node,nodeid=128")),
    bad("node-nodeid-127-gaps", "-m", "2G", *numa("node,nodeid=127")),
    bad("node-nodeid-gap", "-m", "2G", *backends("1G", "1G"),
        *numa("node,memdev=m0", "node,memdev=m1,nodeid=3")),
    bad("node-unknown-key", "-m", "2G", *backends("1G", "1G"), *numa("node,memdev=m0,foo=1")),
    bad("numa-unknown-type", "-m", "2G", *backends("1G", "1G"), *numa("nosuch,memdev=m0")),
    bad("node-cpus-above-maxcpus", "-m", "2G", "-smp", "2", *nodes("1G", "1G", cpus=("0-3",))),
    bad("node-cpus-reversed-range", "-m", "2G", "-smp", "4", *nodes("1G", "1G", cpus=("3-1",))),
    bad("node-cpus-not-a-number", "-m", "2G", "-smp", "4", *nodes("1G", "1G", cpus=("x",))),
    bad("node-cpus-overlap", "-m", "2G", "-smp", "4", *nodes("1G", "1G", cpus=("0-1", "1-3"))),
    ok("node-cpus-range-rest-unassigned", "-m", "2G", "-smp", "4",
       *nodes("1G", "1G", cpus=("0-1",))),
    bad("node-plus-signs", "-m", "1G", *numa("node,nodeid=+0,cpus=+0")),
    ok("node-cpus-repeated-key", "-m", "2G", "-smp", "4", *backends("1G", "1G"),
       *numa("node,nodeid=0,memdev=m0,cpus=0,cpus=2", "node,nodeid=1,memdev=m1,cpus=1")),
]

# ---------------------------------------------------------------------------
# -numa dist
# ---------------------------------------------------------------------------

DIST = [
    ok("dist-symmetric", *TWO_NODES, *numa("dist,src=0,dst=1,val=20")),
    ok("dist-asymmetric", *TWO_NODES, *numa("dist,src=0,dst=1,val=20",
                                            "dist,src=1,dst=0,val=30")),
    ok("dist-three-nodes-complete", *THREE_NODES, *numa(
        "dist,src=0,dst=1,val=20", "dist,src=0,dst=2,val=30", "dist,src=1,dst=2,val=40")),
    ok("dist-val-255", *TWO_NODES, *numa("dist,src=0,dst=1,val=255")),
    bad("dist-missing-0-2", *THREE_NODES, *numa("dist,src=0,dst=1,val=20")),
    bad("dist-missing-1-2", *THREE_NODES, *numa("dist,src=0,dst=1,val=20",
                                                "dist,src=0,dst=2,val=30")),
    bad("dist-missing-0-2-after-1-2", *THREE_NODES, *numa("dist,src=0,dst=1,val=20",
                                                          "dist,src=1,dst=2,val=30")),
    bad("dist-asymmetric-then-one-way", *THREE_NODES, *numa(
        "dist,src=0,dst=1,val=20", "dist,src=1,dst=0,val=30", "dist,src=0,dst=2,val=40",
        "dist,src=1,dst=2,val=50")),
    bad("dist-only-local", *TWO_NODES, *numa("dist,src=0,dst=0,val=10")),
    bad("dist-below-10", *TWO_NODES, *numa("dist,src=0,dst=1,val=9")),
    bad("dist-local-not-10", *TWO_NODES, *numa("dist,src=0,dst=0,val=20")),
    bad("dist-undeclared-node", *TWO_NODES, *numa("dist,src=0,dst=2,val=20")),
    bad("dist-node-128", *TWO_NODES, *numa("dist,src=0,dst=128,val=20")),
    bad("dist-val-256", *TWO_NODES, *numa("dist,src=0,dst=1,val=256")),
    bad("dist-without-val", *TWO_NODES, *numa("dist,src=0,dst=1")),
    bad("dist-without-dst", *TWO_NODES, *numa("dist,src=0,val=20")),
]

# ---------------------------------------------------------------------------
# -numa cpu
# ---------------------------------------------------------------------------

CPU = [
    ok("cpu-by-socket", *TWO_NODES_4CPUS, *numa("cpu,node-id=0,socket-id=0",
                                                "cpu,node-id=1,socket-id=1")),
    ok("cpu-by-core-and-thread", *TWO_NODES_4CPUS, *numa(
        "cpu,node-id=1,socket-id=0,core-id=1,thread-id=0",
        "cpu,node-id=0,socket-id=0,core-id=0", "cpu,node-id=0,socket-id=1")),
    ok("cpu-hotpluggable-slot-on-node", *TWO_NODES, "-smp", "2,maxcpus=4",
       *numa("cpu,node-id=1,core-id=3")),
    bad("cpu-undeclared-node", *TWO_NODES_4CPUS, *numa("cpu,node-id=2,socket-id=0")),
    bad("cpu-without-node-id", *TWO_NODES_4CPUS, *numa("cpu,socket-id=0")),
    bad("cpu-no-such-socket", *TWO_NODES_4CPUS, *numa("cpu,node-id=0,socket-id=5")),
    bad("cpu-die-id-on-pc", *TWO_NODES_4CPUS, *numa("cpu,node-id=0,die-id=1")),
    bad("cpu-already-assigned", *TWO_NODES_4CPUS, *numa("cpu,node-id=0,socket-id=0",
                                                        "cpu,node-id=1,socket-id=0")),
]

# ---------------------------------------------------------------------------
# -machine memory-backend
# ---------------------------------------------------------------------------

BACKEND = [
    ok("machine-memory-backend", "-m", "1G", "-object", f"{RAM},id=pcram,size=1G",
       "-machine", "memory-backend=pcram",
       lines=(*STATE, get("/machine", "memory-backend"))),
    ok("machine-memory-backend-sets-ram-size", "-object", f"{RAM},id=pcram,size=1G",
       "-machine", "memory-backend=pcram"),
    bad("machine-memory-backend-size-mismatch", "-m", "2G",
        "-object", f"{RAM},id=pcram,size=1G", "-machine", "memory-backend=pcram"),
    bad("machine-memory-backend-not-found", "-m", "1G", "-machine", "memory-backend=nosuch"),
    bad("machine-memory-backend-and-memdev-node", "-m", "2G",
        "-object", f"{RAM},id=pcram,size=2G", "-machine", "memory-backend=pcram",
        *numa("node,memdev=pcram")),
    bad("machine-memory-backend-with-empty-node", "-m", "2G",
        "-object", f"{RAM},id=pcram,size=2G", "-machine", "memory-backend=pcram",
        *numa("node")),
]

# ---------------------------------------------------------------------------
# -m slots/maxmem with nodes, and DIMMs on nodes
# ---------------------------------------------------------------------------

DIMMS = [
    ok("hotplug-window-dimm-on-node-1", *HOTPLUG_TWO_NODES, lines=(
        ram_add("h1", 512 * M), dimm("d1", "h1", 1), ram_add("h2", 512 * M),
        dimm("d2", "h2", 2), dimm("d2", "h2", -1), DEVICES, INFO_DEVICES, INFO_NUMA,
        SUMMARY, MEMDEV, get("/machine", "memory"), get("d1", "node"))),
    ok("cold-dimm-on-node-1", "-m", "2G,slots=2,maxmem=4G", "-object", f"{RAM},id=x,size=512M",
       *nodes("1G", "1G"), "-device", "pc-dimm,id=c1,memdev=x,node=1",
       lines=(*STATE, DEVICES, INFO_DEVICES)),
    ok("dimm-node-0-without-numa", "-m", "2G,slots=2,maxmem=4G",
       "-object", f"{RAM},id=x,size=512M", "-device", "pc-dimm,id=c1,memdev=x,node=0",
       lines=(*STATE, DEVICES, INFO_DEVICES)),
    bad("cold-dimm-node-out-of-range", "-m", "2G,slots=2,maxmem=4G",
        "-object", f"{RAM},id=x,size=512M", *nodes("1G", "1G"),
        "-device", "pc-dimm,id=c1,memdev=x,node=2"),
    ok("hmp-dimm-node-errors", *HOTPLUG_TWO_NODES, lines=(
        ram_add("h1", 512 * M), hmp("device_add pc-dimm,id=d1,memdev=h1,node=2"),
        hmp("device_add pc-dimm,id=d1,memdev=h1,node=x"),
        hmp("device_add pc-dimm,id=d1,memdev=h1,node=1"), INFO_DEVICES, INFO_NUMA)),
]

# ---------------------------------------------------------------------------
# HMAT (may come later: -k hmat)
# ---------------------------------------------------------------------------

HMAT = [
    bad("hmat-initiator-without-hmat", "-m", "2G", "-smp", "2", *backends("1G", "1G"),
        *numa("node,memdev=m0,cpus=0,initiator=0", "node,memdev=m1,cpus=1,initiator=1")),
    bad("hmat-lb-without-hmat", "-m", "2G", "-smp", "2", *backends("1G", "1G"),
        *numa("node,memdev=m0,cpus=0", "node,memdev=m1,cpus=1", HMAT_LB_VALUES[0])),
    ok("hmat-initiators", *HMAT_TWO_NODES, *numa(
        "node,memdev=m0,cpus=0,initiator=0", "node,memdev=m1,cpus=1,initiator=1"),
       lines=(*STATE, get("/machine", "hmat"))),
    ok("hmat-memory-only-node", *HMAT_TWO_NODES, *numa(
        "node,memdev=m0,cpus=0-1,initiator=0", "node,memdev=m1,initiator=0")),
    ok("hmat-no-initiator-keys", *HMAT_TWO_NODES, *numa(
        "node,memdev=m0,cpus=0-1", "node,memdev=m1")),
    ok("hmat-lb-and-cache", *HMAT_TWO_NODES, *numa(
        "node,memdev=m0,cpus=0,initiator=0", "node,memdev=m1,cpus=1,initiator=1",
        *HMAT_LB_VALUES, *HMAT_CACHE)),
    ok("hmat-one-lb", *HMAT_TWO_NODES, *numa(
        "node,memdev=m0,cpus=0,initiator=0", "node,memdev=m1,cpus=1,initiator=1",
        HMAT_LB_VALUES[0])),
    bad("hmat-initiator-without-cpus", *HMAT_TWO_NODES, *numa(
        "node,memdev=m0,cpus=0-1,initiator=0", "node,memdev=m1,initiator=1")),
    bad("hmat-initiator-undeclared", *HMAT_TWO_NODES, *numa(
        "node,memdev=m0,cpus=0-1,initiator=0", "node,memdev=m1,initiator=2")),
    bad("hmat-lb-latency-missing", *HMAT_TWO_NODES, *numa(
        "node,memdev=m0,cpus=0,initiator=0", "node,memdev=m1,cpus=1,initiator=1",
        "hmat-lb,initiator=1,target=0,hierarchy=memory,data-type=access-latency,"
        "bandwidth=10G")),
    bad("hmat-lb-not-an-initiator", *HMAT_TWO_NODES, *numa(
        "node,memdev=m0,cpus=0,initiator=0", "node,memdev=m1,cpus=1,initiator=1",
        "hmat-lb,initiator=2,target=0,hierarchy=memory,data-type=access-latency,latency=10")),
    bad("hmat-cache-before-lb", *HMAT_TWO_NODES, *numa(
        "node,memdev=m0,cpus=0,initiator=0", "node,memdev=m1,cpus=1,initiator=1",
        HMAT_CACHE[0])),
]

CASES = SMP + NODES + DIST + CPU + BACKEND + DIMMS

# ---------------------------------------------------------------------------
# Running and comparing
# ---------------------------------------------------------------------------

#: the host thread id of a vCPU in query-cpus-fast (the entry's first key)
HOST_THREAD = re.compile(r'\{"thread-id": \d+, "props": ')


def _blank_host_threads(outcome: Outcome) -> Outcome:
    return Outcome(outcome.status, HOST_THREAD.sub('{"thread-id": 0, "props": ',
                                                   outcome.stdout), outcome.stderr)


def assert_same_as_qemu(scenario: Scenario, tmp_path: Path) -> None:
    """Exit status, stderr and stdout's bytes are QEMU 7.2's (host thread ids blanked)."""
    expected, actual = (_blank_host_threads(o) for o in run_both(scenario, tmp_path))
    assert (actual.status, actual.stderr) == (expected.status, expected.stderr)
    if scenario.greeting_race and expected.status and not expected.stdout:
        lines = _lines(actual.stdout)  # QEMU lost its greeting every time: pyqom's is right
        assert len(lines) == 1 and lines[0].endswith("\r\n") and "QMP" in json.loads(
            lines[0]), lines
        return
    actual_lines, expected_lines = _lines(actual.stdout), _lines(expected.stdout)
    for number, (mine, theirs) in enumerate(zip(actual_lines, expected_lines, strict=False)):
        assert (number, _canonical(mine)) == (number, _canonical(theirs))
    assert len(actual_lines) == len(expected_lines), (actual_lines, expected_lines)


@pytest.mark.parametrize("scenario", CASES, ids=[case.name for case in CASES])
def test_numa_command_line_as_qemu(scenario: Scenario, tmp_path: Path) -> None:
    """Each -smp/-numa/memory-backend/DIMM-node line: QEMU 7.2's status, stderr, replies."""
    assert_same_as_qemu(scenario, tmp_path)


@pytest.mark.parametrize("scenario", HMAT, ids=[case.name for case in HMAT])
def test_hmat_command_line_as_qemu(scenario: Scenario, tmp_path: Path) -> None:
    """HMAT options: QEMU 7.2's status, stderr, replies."""
    assert_same_as_qemu(scenario, tmp_path)


def test_case_names_are_unique() -> None:
    names = [case.name for case in CASES + HMAT]
    assert len(names) == len(set(names))


# ---------------------------------------------------------------------------
# info mtree
# ---------------------------------------------------------------------------

MTREE_CASES = {
    "two-nodes-below-4g": ("-m", "2G", *nodes("1G", "1G")),
    "node-spanning-4g": ("-m", "4G", *nodes("3G", "1G")),
    "three-nodes-hotplug": ("-m", "3G,slots=2,maxmem=6G", *nodes("1G", "512M", "1536M")),
    "machine-memory-backend": ("-m", "1G", "-object", f"{RAM},id=pcram,size=1G",
                               "-machine", "memory-backend=pcram"),
}


def _mtree_ram_lines(stdout: str) -> tuple[list[str], list[str]]:
    """The ``pc.ram`` section and the RAM alias lines of ``address-space: memory``."""
    reply = next(line for line in _lines(stdout) if line.startswith('{"return": "'))
    sections = _sections(json.loads(reply)["return"])
    aliases = [line for line in sections["address-space: memory"]
               if re.search(r": alias ram-(below|above)-4g ", line)]
    return sections.get("memory-region: pc.ram", []), aliases


@pytest.mark.parametrize("args", MTREE_CASES.values(), ids=list(MTREE_CASES))
def test_mtree_ram_of_nodes_as_qemu(args: tuple[str, ...], tmp_path: Path) -> None:
    """``info mtree``: the pc.ram container with a subregion per node, and its aliases."""
    scenario = Scenario("mtree", args, (hmp("info mtree"),))
    expected, actual = run_both(scenario, tmp_path)
    assert (actual.status, actual.stderr) == (expected.status, expected.stderr)
    assert _mtree_ram_lines(actual.stdout) == _mtree_ram_lines(expected.stdout)


# ---------------------------------------------------------------------------
# ACPI
# ---------------------------------------------------------------------------

ACPI_CASES = {
    "two-nodes-dist": ("-m", "2G", "-smp", "4,sockets=2,cores=2", *nodes("1G", "1G"),
                       *numa("cpu,node-id=0,socket-id=0", "cpu,node-id=1,socket-id=1",
                             "dist,src=0,dst=1,val=21")),
    "three-nodes-asymmetric-hotplug": (
        "-m", "3G,slots=2,maxmem=8G", "-smp", "3", *nodes("512M", "1G", "1536M",
                                                         cpus=("0", "1", "2")),
        *numa("dist,src=0,dst=1,val=20", "dist,src=1,dst=0,val=30", "dist,src=0,dst=2,val=40",
              "dist,src=2,dst=0,val=45", "dist,src=1,dst=2,val=50", "dist,src=2,dst=1,val=55")),
    "node-spanning-4g-cpu-slots": ("-m", "5G,slots=2,maxmem=8G", "-smp", "2,maxcpus=4",
                                   *nodes("4G", "1G"), *numa("cpu,node-id=1,core-id=3")),
    "hmat-latency-bandwidth-caches": (
        *HMAT_TWO_NODES, *numa("node,memdev=m0,cpus=0,initiator=0",
                               "node,memdev=m1,cpus=1,initiator=1", *HMAT_LB_VALUES,
                               *HMAT_CACHE)),
    "hmat-memory-only-node": (
        *HMAT_TWO_NODES, *numa("node,memdev=m0,cpus=0-1,initiator=0",
                               "node,memdev=m1,initiator=0",
                               "hmat-lb,initiator=0,target=0,hierarchy=memory,"
                               "data-type=access-latency,latency=5",
                               "hmat-lb,initiator=0,target=1,hierarchy=memory,"
                               "data-type=access-latency,latency=200")),
    "memory-only-node-and-cold-dimm": (
        "-m", "2G,slots=2,maxmem=4G", "-smp", "2", *nodes("1G", "1G", cpus=("0-1",)),
        "-object", f"{RAM},id=x,size=512M", "-device", "pc-dimm,id=c1,memdev=x,node=1"),
}
#: whole tables compared through iasl -d (DSDT: only the parts pyqom builds)
ACPI_WHOLE = ("SRAT", "SLIT", "HMAT", "APIC")


def _dump_qemu_tables() -> ModuleType:
    """``tests/devices/acpi/data/dump_qemu_tables.py``: how QEMU's tables are read."""
    path = Path(__file__).resolve().parents[1] / "devices" / "acpi" / "data" / \
        "dump_qemu_tables.py"
    spec = importlib.util.spec_from_file_location("dump_qemu_tables", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def qemu_acpi_tables(args: tuple[str, ...]) -> dict[str, bytes]:
    """The tables SeaBIOS installed on QEMU 7.2 started with ``args``, by signature."""
    qemu_or_skip()
    return dict(_dump_qemu_tables().dump_args(args))


def pyqom_acpi_tables(args: tuple[str, ...], directory: Path) -> dict[str, bytes]:
    """The tables ``python -m pyqom ARGS -dump-acpi DIR`` writes, by signature."""
    env = {**os.environ, "PYQOM_DISABLE_PLUGIN_AUTOLOAD": "1"}
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-m", "pyqom", "-machine", "pc", "-display", "none", "-nodefaults",
         "-S", *args, "-dump-acpi", str(directory), "-qmp", "stdio"],
        input=b'{"execute": "qmp_capabilities"}\n{"execute": "quit"}\n',
        capture_output=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return {path.stem: path.read_bytes() for path in directory.glob("*.dat")}


def iasl_or_skip() -> str:
    """The iasl binary, or skip."""
    path = shutil.which("iasl")
    if path is None:
        pytest.skip("iasl not installed (Debian: apt-get install acpica-tools); CI installs it")
    return path


def disassemble(data: bytes, signature: str, directory: Path) -> str:
    """``iasl -d`` of one table, iasl's header comment removed (as the ACPI tests do)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{signature}.dat"
    path.write_bytes(data)
    done = subprocess.run([iasl_or_skip(), "-d", str(path)], capture_output=True, text=True,
                          cwd=directory)
    assert done.returncode == 0, done.stdout + done.stderr
    return normalise(path.with_suffix(".dsl").read_text())


def cpus_part(dsl: str) -> str:
    """The ``\\_SB.CPUS`` processor container of a DSDT disassembly (each CPU's
    ``_PXM``), or ``""`` when the table has none."""
    lines = dsl.splitlines()
    start = next((i for i, line in enumerate(lines)
                  if re.fullmatch(r"\s*Device \(\\_SB\.CPUS\)", line)), None)
    if start is None:
        return ""
    indent = len(lines[start]) - len(lines[start].lstrip())
    end = lines.index(" " * indent + "}", start)
    return "\n".join(lines[start:end + 1]) + "\n"


@pytest.fixture(scope="module")
def qemu_tables_by_case() -> dict[str, dict[str, bytes]]:
    """QEMU's tables for each ACPI case, read once per module."""
    return {name: qemu_acpi_tables(args) for name, args in ACPI_CASES.items()}


@pytest.mark.parametrize("signature", ACPI_WHOLE)
@pytest.mark.parametrize("case", list(ACPI_CASES))
def test_numa_acpi_table_as_qemu(case: str, signature: str, tmp_path: Path,
                                 qemu_tables_by_case: dict[str, dict[str, bytes]]) -> None:
    """SRAT (a memory affinity entry per node, the hotplug window), SLIT, MADT: iasl -d.

    QEMU builds a SLIT only when ``-numa dist`` was given, and an HMAT only with
    ``-machine hmat=on``: pyqom must not either.
    """
    theirs = qemu_tables_by_case[case]
    ours = pyqom_acpi_tables(ACPI_CASES[case], tmp_path / "pyqom")
    if signature not in theirs:  # no SLIT without -numa dist
        assert signature not in ours
        return
    assert signature in ours, sorted(ours)
    assert disassemble(ours[signature], signature, tmp_path / "ours") == \
        disassemble(theirs[signature], signature, tmp_path / "theirs")


@pytest.mark.parametrize("case", [name for name, args in ACPI_CASES.items()
                                  if "slots=" in " ".join(args)])
def test_numa_dsdt_memory_hotplug_as_qemu(case: str, tmp_path: Path,
                                          qemu_tables_by_case: dict[str, dict[str, bytes]]
                                          ) -> None:
    """DSDT: the memory-hotplug AML (each slot's ``_PXM`` comes from the register
    block, which reports the DIMM's node) is QEMU's.

    QEMU's ``\\_SB.CPUS`` container (a ``_PXM`` per CPU) is not compared: it
    drives QEMU's CPU-hotplug register block, which pyqom does not have, so
    pyqom's DSDT has no CPU devices; the SRAT gives each CPU's node.
    """
    theirs = disassemble(qemu_tables_by_case[case]["DSDT"], "DSDT", tmp_path / "theirs")
    ours = disassemble(pyqom_acpi_tables(ACPI_CASES[case], tmp_path / "pyqom")["DSDT"],
                       "DSDT", tmp_path / "ours")
    assert "_PXM" in cpus_part(theirs)
    assert memory_hotplug_part(ours) == memory_hotplug_part(theirs)


# ---------------------------------------------------------------------------
# QEMU's side alone (how the table above was checked)
# ---------------------------------------------------------------------------

def qemu_side(scenario: Scenario) -> Outcome:
    """QEMU's outcome for ``scenario`` as :func:`run_both` normalises it."""
    qemu = qemu_or_skip()
    with tempfile.TemporaryDirectory(prefix="pyqom-numa-") as name:
        tmp = Path(name)
        outcome = _run([qemu, "-accel", "tcg", *_argv(scenario, tmp)], _stream(scenario, tmp),
                       tmp, dict(os.environ))
        return _blank_host_threads(_normalise(outcome, tmp))


def main() -> None:
    """Print QEMU's status, stderr and stdout for every case."""
    for scenario in CASES + HMAT:
        outcome = qemu_side(scenario)
        print(f"=== {scenario.name}: -machine {scenario.machine} {' '.join(scenario.args)}")
        print(f"status {outcome.status}")
        for line in outcome.stderr.splitlines():
            print(f"stderr| {line}")
        for line in _lines(outcome.stdout)[1:]:
            print(f"stdout| {line.rstrip()}")


if __name__ == "__main__":
    main()
