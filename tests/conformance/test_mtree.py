"""``info mtree`` against real QEMU 7.2: every line pyqom prints is a line QEMU prints,
in the same section and order (QEMU lists many more devices than pyqom models)."""

from __future__ import annotations

import pytest
from qemu_oracle import QemuOracle

from plugins.monitor import VmControl
from pyqom.vm import VM

GiB = 1 << 30


def _sections(text: str) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current = ""
    for line in text.split("\r\n"):
        if line.startswith(("address-space:", "memory-region:")):
            current = line
            sections.setdefault(current, [])
        elif line:
            sections.setdefault(current, []).append(line)
    return sections


@pytest.mark.parametrize("memory", ["1G,slots=3,maxmem=4G", "4G,slots=2,maxmem=8G"])
def test_our_lines_are_qemus_lines(memory):
    oracle = QemuOracle("-m", memory)
    try:
        for command in ({"qom-type": "memory-backend-ram", "id": "mem1", "size": GiB},):
            oracle.execute("object-add", command)
        oracle.execute("device_add", {"driver": "pc-dimm", "id": "dimm1", "memdev": "mem1"})
        theirs = oracle.execute("human-monitor-command",
                                {"command-line": "info mtree"})["return"]
    finally:
        oracle.close()
    size, slots, maxmem = memory.split(",")
    with VM(size, slots=int(slots.split("=")[1]), maxmem=maxmem.split("=")[1],
            autoload=False) as vm:
        vm.object_add("memory-backend-ram", "mem1", size=GiB)
        vm.device_add("pc-dimm", "dimm1", memdev="mem1")
        control = VmControl(vm)
        try:
            ours = control.execute("human-monitor-command", {"command-line": "info mtree"})
        finally:
            control.close()
    theirs_by_section, ours_by_section = _sections(theirs), _sections(ours)
    for section in ("address-space: memory", "address-space: I/O", "memory-region: pc.ram"):
        mine = ours_by_section[section]
        qemu = theirs_by_section[section]
        assert set(mine) <= set(qemu), set(mine) - set(qemu)
        assert mine == [line for line in qemu if line in mine]  # same order


def test_an_nvdimm_is_qemus_alias_region() -> None:
    """An NVDIMM maps a non-volatile alias of its backend (less the label area),
    and the backend gets a ``memory-region:`` section of its own, as in QEMU."""
    args = ("-M", "pc,nvdimm=on", "-m", "1G,slots=2,maxmem=4G",
            "-object", "memory-backend-ram,id=m1,size=128M",
            "-device", "nvdimm,id=nv1,memdev=m1,label-size=256K")
    oracle = QemuOracle(*args)
    try:
        theirs = oracle.execute("human-monitor-command", {"command-line": "info mtree"})["return"]
    finally:
        oracle.close()
    with VM.from_args(list(args), autoload=False) as vm:
        control = VmControl(vm)
        try:
            ours = control.execute("human-monitor-command", {"command-line": "info mtree"})
        finally:
            control.close()
    theirs_by_section, ours_by_section = _sections(theirs), _sections(ours)
    alias = ("      0000000100000000-0000000107dfffff (prio 0, nv-ram): alias nvdimm-memory @m1"
             " 0000000000000000-0000000007dfffff")
    assert alias in ours_by_section["address-space: memory"]
    assert "    0000000000000a18-0000000000000a1b (prio 0, i/o): nvdimm-acpi-io" in \
        ours_by_section["address-space: I/O"]
    for section in ("address-space: memory", "address-space: I/O", "memory-region: pc.ram",
                    "memory-region: m1"):
        mine, qemu = ours_by_section[section], theirs_by_section[section]
        assert mine == [line for line in qemu if line in mine], section
    assert ours.endswith("memory-region: m1\r\n  0000000000000000-0000000007ffffff"
                         " (prio 0, ram): m1\r\n\r\n")
    assert ours_by_section["memory-region: m1"] == theirs_by_section["memory-region: m1"]
