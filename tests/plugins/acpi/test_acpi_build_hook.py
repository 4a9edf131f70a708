"""``qom_acpi_build``: what a plugin contributes follows plug, unplug and rollback."""

from __future__ import annotations

from typing import Any

import pytest

import qom
from plugins import aml, hookimpl
from plugins.acpi.plugin import tables_of
from pyqom import VM

G = 1 << 30


class DescribesDimms:
    """An SSDT naming every plugged DIMM, kept in the claim phases."""

    def __init__(self) -> None:
        self.plugged: list[Any] = []
        self.fail_announce = False

    @hookimpl
    def qom_device_plug_claim(self, machine: Any, device: Any, undo: Any) -> None:
        self.plugged.append(device)
        undo.push(lambda: self.plugged.remove(device), "forget")

    @hookimpl
    def qom_device_plug_announce(self, machine: Any, device: Any, undo: Any) -> None:
        if self.fail_announce:
            raise qom.QomError("announce refused")

    @hookimpl
    def qom_device_unplug_claim(self, machine: Any, device: Any) -> None:
        self.plugged.remove(device)

    @hookimpl
    def qom_acpi_build(self, machine: Any, tables: Any) -> None:
        if self.plugged:
            tables.add_ssdt("DIMMLIST", aml.definition_block(aml.scope(
                "\\_SB", *(aml.device(f"XD{dev.slot:X}") for dev in self.plugged))))


def _ssdt(vm: VM) -> bytes | None:
    blob = tables_of(vm.machine)
    assert blob is not None
    return blob.table("SSDT") if "SSDT" in blob.offsets else None


@pytest.fixture
def vm():
    plugin = DescribesDimms()
    with VM("1G", slots=2, maxmem="3G", plugins=[plugin], autoload=False) as vm:
        vm.plugin = plugin
        vm.object_add("memory-backend-ram", "m1", size=G)
        yield vm


def test_the_ssdt_appears_with_the_dimm_and_goes_with_its_eject(vm) -> None:
    assert _ssdt(vm) is None
    dimm = vm.device_add("pc-dimm", "d1", memdev="m1")
    ssdt = _ssdt(vm)
    assert ssdt is not None and b"XD0" in ssdt and ssdt[16:24] == b"DIMMLIST"
    qom.complete_unplug(dimm)            # what the guest's eject does
    assert _ssdt(vm) is None


def test_a_rolled_back_plug_leaves_the_tables_as_they_were_and_a_retry_gets_them(vm) -> None:
    before = tables_of(vm.machine)
    vm.plugin.fail_announce = True
    with pytest.raises(qom.QomError, match="announce refused"):
        vm.device_add("pc-dimm", "d1", memdev="m1")
    assert tables_of(vm.machine) == before and _ssdt(vm) is None
    vm.plugin.fail_announce = False
    vm.device_add("pc-dimm", "d1", memdev="m1")
    assert b"XD0" in (_ssdt(vm) or b"")
