"""The example devices (see the distribution's README).

Everything here comes from pyqom's contract: ``qom`` (types, properties, the
memory-device interface), ``plugins`` (the hook marker), ``plugins.services``
(port I/O), ``plugins.memdev`` (what a device may use of a backend) and
``plugins.aml`` (the AML encoder).
"""

from __future__ import annotations

from typing import Any

import attrs

from plugins import aml, hookimpl
from plugins.memdev import TYPE_MEMORY_BACKEND, Memdev, as_memdev
from plugins.services import PORT_IO, AcpiTableBuilder, services_of
from qom import (
    TYPE_DEVICE,
    TYPE_MEMORY_DEVICE,
    UINT32,
    UINT64,
    Device,
    HostRegion,
    InvalidPropertyValue,
    MemoryDevice,
    Object,
    ObjectClass,
    StashKey,
    TypeInfo,
    TypeRegistry,
    UndoStack,
    as_memory_device,
    device_property,
    link_check_before_realize,
    qom_link,
)
from qom.device import SLOT_DESC, SLOT_HOTPLUGGABLE
from qom.memory_device import SLOT_MEMORY_DEVICE_KIND

# ---------------------------------------------------------------------------
# example-memdev: a memory device without a slot
# ---------------------------------------------------------------------------


def _memdev(device: ExampleMemdev) -> Memdev:
    backend = as_memdev(device.memdev)
    if backend is None:
        raise InvalidPropertyValue("'memdev' property must be set")
    return backend


@attrs.define(eq=False, repr=False)
class ExampleMemdev(Device, MemoryDevice):
    """Memory at an address the machine picks; no slot, no ACPI description."""

    memdev: Object | None = qom_link("memdev", TYPE_MEMORY_BACKEND,
                                     check=link_check_before_realize)
    addr: int = device_property("addr", UINT64, type="uint64", default=0)

    def get_addr(self) -> int:
        return self.addr

    def set_addr(self, addr: int) -> None:
        self.addr = addr

    def get_region_size(self) -> int:
        return _memdev(self).size

    def get_min_alignment(self) -> int:
        return self.get_host_region().align

    def get_host_region(self) -> HostRegion:
        memory = _memdev(self).host_memory
        if memory is None:
            raise InvalidPropertyValue("'memdev' property must be set")
        return memory

    def get_memdev(self) -> Object | None:
        return self.memdev

    def fill_device_info(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.id is not None:
            data["id"] = self.id
        backend = _memdev(self)
        data.update({"memaddr": self.addr, "size": backend.size,
                     "memdev": backend.canonical_path or ""})
        return {"type": "example-memdev", "data": data}

    def realize(self) -> None:
        backend = _memdev(self)
        if backend.is_mapped():
            raise InvalidPropertyValue(
                f"can't use already busy memdev: {backend.name_in_parent}")
        backend.set_mapped(True)

    def unrealize(self) -> None:
        backend = as_memdev(self.memdev)
        if backend is not None:
            backend.set_mapped(False)


# ---------------------------------------------------------------------------
# example-dimm: a pc-dimm with its own kind and an SSDT
# ---------------------------------------------------------------------------

TYPE_EXAMPLE_DIMM = "example-dimm"


def _example_dimm_class_init(klass: ObjectClass, data: Any) -> None:
    klass.slots[SLOT_MEMORY_DEVICE_KIND] = TYPE_EXAMPLE_DIMM
    klass.slots[SLOT_DESC] = "example DIMM with its own SSDT"


_PLUGGED: StashKey[list[Device]] = StashKey("example-dimms")


def _plugged(machine: Object) -> list[Device]:
    found = machine.stash.get(_PLUGGED)
    if found is None:
        found = []
        machine.stash[_PLUGGED] = found
    return found


@hookimpl
def qom_device_plug_claim(machine: Object, device: Device, undo: UndoStack) -> None:
    """Remember plugged example DIMMs (for the SSDT)."""
    if device.is_a(TYPE_EXAMPLE_DIMM):
        plugged = _plugged(machine)
        plugged.append(device)
        undo.push(lambda: plugged.remove(device), "forget example-dimm")


@hookimpl
def qom_device_unplug_claim(machine: Object, device: Device) -> None:
    if device.is_a(TYPE_EXAMPLE_DIMM) and device in _plugged(machine):
        _plugged(machine).remove(device)


@hookimpl
def qom_acpi_build(machine: Object, tables: AcpiTableBuilder) -> None:
    """An SSDT with one device per plugged example DIMM: ``\\_SB.EXD<slot>``."""
    devices = []
    for device in _plugged(machine):
        memory = as_memory_device(device)
        slot = memory.get_slot() if memory is not None else None
        if memory is None or slot is None:
            continue
        devices.append(aml.device(
            f"EXD{slot:X}",
            aml.name("_HID", aml.string("PYQM0001")),
            aml.name("_UID", slot),
            aml.name("ADDR", memory.get_addr())))
    if devices:
        tables.add_ssdt("EXDIMMS", aml.definition_block(aml.scope("\\_SB", *devices)))


# ---------------------------------------------------------------------------
# example-ports: I/O ports, claimed in the map phase
# ---------------------------------------------------------------------------


@attrs.define(eq=False, repr=False)
class ExamplePorts(Device):
    """Port 0: a byte register (OUT stores, IN reads back); port 1: writes counted."""

    iobase: int = device_property("iobase", UINT32, type="uint32", default=0x700)
    value: int = attrs.field(default=0, init=False)
    writes: int = attrs.field(default=0, init=False)

    def read(self, offset: int, size: int) -> int:
        return self.value if offset == 0 else self.writes & 0xFF

    def write(self, offset: int, size: int, value: int) -> None:
        if offset == 0:
            self.value = value & 0xFF
            self.writes += 1


_PORTS: StashKey[Any] = StashKey("example-ports-handle")


@hookimpl
def qom_device_plug_map(machine: Object, device: Device, undo: UndoStack) -> None:
    """Claim the device's two ports (given back if a later phase fails)."""
    if not isinstance(device, ExamplePorts):
        return
    ports = services_of(machine).get(PORT_IO)
    handle = ports.register_ports(device.iobase, 2, device.read, device.write,
                                  "example-ports")
    device.stash[_PORTS] = handle
    undo.push(lambda: ports.unregister_ports(handle), "release example-ports")


@hookimpl
def qom_device_unplug_map(machine: Object, device: Device) -> None:
    handle = device.stash.pop(_PORTS)
    if handle is not None:
        services_of(machine).get(PORT_IO).unregister_ports(handle)


def _cold_plug_only(klass: ObjectClass, data: Any) -> None:
    klass.slots[SLOT_HOTPLUGGABLE] = False


@hookimpl
def qom_register_types(registry: TypeRegistry) -> None:
    """Register the three example devices."""
    registry.register(TypeInfo(name="example-memdev", parent=TYPE_DEVICE, impl=ExampleMemdev,
                               interfaces=(TYPE_MEMORY_DEVICE,)))
    registry.register(TypeInfo(name=TYPE_EXAMPLE_DIMM, parent="pc-dimm",
                               class_init=_example_dimm_class_init))
    registry.register(TypeInfo(name="example-ports", parent=TYPE_DEVICE, impl=ExamplePorts,
                               class_init=_cold_plug_only))
