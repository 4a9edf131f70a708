"""Fault injection: a plugin raises in each hook of a plug and of an unplug request
in turn, before and after every other implementation, and in each step of a
backend's creation; after each failure the machine is exactly as before: the QOM
tree, the memory devices, the guest's mapped ranges, the ACPI slots, GPE and
tables, the files and the host's file descriptors and mappings.

(``qom_device_unplug`` is not injected: the guest's eject has happened by then
and the hook must not raise, as its specification says.)
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import qom
from plugins import hookimpl
from plugins.acpi.plugin import memory_hotplug_block
from plugins.address_space.plugin import address_space_of
from plugins.monitor import VmControl
from pyqom.vm import VM

PLUG_HOOKS = ("qom_device_pre_plug", "qom_device_plug_claim", "qom_device_plug_map",
              "qom_device_plug_describe", "qom_device_plug_announce")
UNPLUG_HOOKS = ("qom_device_unplug_request",)


class Injected(qom.QomError):
    """The failure the fault plugin raises."""


class FaultPlugin:
    """Raises :class:`Injected` in one hook, first or last of its implementations."""

    def __init__(self) -> None:
        self.armed: str | None = None

    def _maybe(self, hook: str) -> None:
        if self.armed == hook:
            raise Injected(f"injected in {hook}")


class First(FaultPlugin):
    @hookimpl(tryfirst=True)
    def qom_device_pre_plug(self, machine: Any, device: Any) -> None:
        self._maybe("qom_device_pre_plug")

    @hookimpl(tryfirst=True)
    def qom_device_plug_claim(self, machine: Any, device: Any, undo: Any) -> None:
        self._maybe("qom_device_plug_claim")

    @hookimpl(tryfirst=True)
    def qom_device_plug_map(self, machine: Any, device: Any, undo: Any) -> None:
        self._maybe("qom_device_plug_map")

    @hookimpl(tryfirst=True)
    def qom_device_plug_describe(self, machine: Any, device: Any, undo: Any) -> None:
        self._maybe("qom_device_plug_describe")

    @hookimpl(tryfirst=True)
    def qom_device_plug_announce(self, machine: Any, device: Any, undo: Any) -> None:
        self._maybe("qom_device_plug_announce")

    @hookimpl(tryfirst=True)
    def qom_device_unplug_request(self, machine: Any, device: Any) -> None:
        self._maybe("qom_device_unplug_request")


class Last(FaultPlugin):
    @hookimpl(trylast=True)
    def qom_device_pre_plug(self, machine: Any, device: Any) -> None:
        self._maybe("qom_device_pre_plug")

    @hookimpl(trylast=True)
    def qom_device_plug_claim(self, machine: Any, device: Any, undo: Any) -> None:
        self._maybe("qom_device_plug_claim")

    @hookimpl(trylast=True)
    def qom_device_plug_map(self, machine: Any, device: Any, undo: Any) -> None:
        self._maybe("qom_device_plug_map")

    @hookimpl(trylast=True)
    def qom_device_plug_describe(self, machine: Any, device: Any, undo: Any) -> None:
        self._maybe("qom_device_plug_describe")

    @hookimpl(trylast=True)
    def qom_device_plug_announce(self, machine: Any, device: Any, undo: Any) -> None:
        self._maybe("qom_device_plug_announce")

    @hookimpl(trylast=True)
    def qom_device_unplug_request(self, machine: Any, device: Any) -> None:
        self._maybe("qom_device_unplug_request")


def _tree(obj: qom.Object, path: str = "") -> list[str]:
    lines = [f"{path or '/'} {obj.type_name}"]
    for name, child in sorted(obj.children(), key=lambda item: item[0]):
        lines += _tree(child, f"{path}/{name}")
    return lines


def _host() -> tuple[set[str], list[str]]:
    """Open descriptors, and the mappings guest memory can own: 4 MiB or larger, or
    of a file (the interpreter's own small arenas come and go by themselves).
    Garbage is collected first: what earlier tests' machines left for the
    collector is not this machine's."""
    gc.collect()
    fds = set()
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            fds.add(f"{name}->{os.readlink(f'/proc/self/fd/{name}')}")
    maps = []
    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split()
        start, end = (int(part, 16) for part in fields[0].split("-"))
        path = " ".join(fields[5:])
        if end - start >= 4 << 20 or (path and not path.startswith("[")):
            maps.append(f"{fields[0]} {fields[1]} {path}")
    return fds, maps


def snapshot(vm: VM, control: VmControl, directory: Path) -> Any:
    machine = vm.machine
    block = memory_hotplug_block(machine)
    assert block is not None
    return {
        "tree": _tree(vm.tree.root),
        "devices": vm.query_memory_devices(),
        "memdev": control.execute("query-memdev"),
        "mapped": [(m.gpa, m.size) for m in address_space_of(machine).mappings()],
        "slots": [(s.device, s.is_enabled, s.is_inserting, s.is_removing, s.ost_event,
                   s.ost_status) for s in block.slots],
        "gpe": (block.gpe.status, block.gpe.enable),
        "tables": control.execute("x-query-acpi-tables"),
        "files": sorted((p.name, p.stat().st_size) for p in directory.iterdir()),
        "host": _host(),
    }


@pytest.fixture
def machine(tmp_path: Path) -> Iterator[tuple[VM, VmControl, First, Last]]:
    first, last = First(), Last()
    vm = VM("1G", slots=3, maxmem="4G", autoload=False, plugins=[first, last])
    control = VmControl(vm)
    vm.object_add("memory-backend-file", "plugged", size=128 << 20,
                  **{"mem-path": str(tmp_path / "plugged.ram"), "share": True})
    vm.device_add("pc-dimm", "d0", memdev="plugged")
    vm.object_add("memory-backend-file", "spare", size=128 << 20,
                  **{"mem-path": str(tmp_path / "spare.ram"), "share": True})
    yield vm, control, first, last
    control.close()
    vm.close()


@pytest.mark.parametrize("position", ["first", "last"])
@pytest.mark.parametrize("hook", PLUG_HOOKS)
def test_a_failing_plug_hook_leaves_the_machine_as_it_was(machine, tmp_path: Path,
                                                          hook: str, position: str) -> None:
    vm, control, first, last = machine
    before = snapshot(vm, control, tmp_path)
    (first if position == "first" else last).armed = hook
    with pytest.raises(Injected):
        vm.device_add("pc-dimm", "d1", memdev="spare")
    assert snapshot(vm, control, tmp_path) == before
    first.armed = last.armed = None
    vm.device_add("pc-dimm", "d1", memdev="spare")   # and the same plug then works
    assert [d["data"]["id"] for d in vm.query_memory_devices()] == ["d0", "d1"]


@pytest.mark.parametrize("position", ["first", "last"])
@pytest.mark.parametrize("hook", UNPLUG_HOOKS)
def test_a_failing_unplug_request_leaves_the_machine_as_it_was(machine, tmp_path: Path,
                                                               hook: str, position: str) -> None:
    vm, control, first, last = machine
    before = snapshot(vm, control, tmp_path)
    (first if position == "first" else last).armed = hook
    with pytest.raises(Injected):
        vm.device_del("d0")
    assert snapshot(vm, control, tmp_path) == before
    first.armed = last.armed = None
    vm.device_del("d0")                          # the same request then goes through
    block = memory_hotplug_block(vm.machine)
    assert block is not None and block.slots[0].is_removing


@pytest.mark.parametrize("extra", [
    {"prealloc": True, "host-nodes": [63], "policy": "bind"},   # mbind fails after mapping
    {"size": 3 << 20, "align": 3 << 20},                         # refused before mapping
    {"mem-path": "/nonexistent-dir/x"},                          # open fails
])
def test_a_failing_backend_leaves_the_machine_as_it_was(machine, tmp_path: Path,
                                                        extra: dict[str, Any]) -> None:
    vm, control, _, _ = machine
    before = snapshot(vm, control, tmp_path)
    arguments = {"size": 64 << 20, "mem-path": str(tmp_path / "new.ram"), **extra}
    with pytest.raises(qom.QomError):
        vm.object_add("memory-backend-file", "new", **arguments)
    assert snapshot(vm, control, tmp_path) == before
