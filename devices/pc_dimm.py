"""``pc-dimm``: a DIMM whose memory is a memory backend (QEMU's ``hw/mem/pc-dimm.c``).

Properties: ``memdev`` (``link<memory-backend>``), ``node``,
``addr`` (0 = let the machine choose), ``slot`` (-1 = let the machine
choose), read-only ``size``.  The machine's hotplug handler picks the slot
and address in pre_plug; :meth:`PcDimm.realize` checks the NUMA node and that
the backend is free, then marks it busy until the DIMM is unrealized.
"""

from __future__ import annotations

from typing import Any, Final

import attrs

from backends.base import TYPE_MEMORY_BACKEND, MemoryBackend
from devices.memory_device import UNASSIGNED_SLOT
from plugins import hookimpl
from plugins.dimm import SLOT_DIMM_REALIZE, SLOT_DIMM_REGION_SIZE, SLOT_DIMM_UNREALIZE
from qom import (
    INT32,
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
    Property,
    TypeInfo,
    TypeRegistry,
    device_property,
    link_check_before_realize,
    qom_link,
)
from qom.device import SLOT_DESC
from qom.memory_device import SLOT_MEMORY_DEVICE_KIND

TYPE_PC_DIMM: Final = "pc-dimm"  # plugins.dimm.TYPE_PC_DIMM, for subtypes

__all__ = ["TYPE_PC_DIMM", "UNASSIGNED_SLOT", "PcDimm"]


def _memdev_or_raise(dimm: PcDimm) -> MemoryBackend:
    if dimm.memdev is None:
        raise InvalidPropertyValue("'memdev' property must be set")
    return dimm.memdev


@attrs.define(eq=False, repr=False)
class PcDimm(Device, MemoryDevice):
    """A pluggable DIMM; implements ``memory-device``.

    Subtypes may override :meth:`fill_device_info` to report their own kind.
    """

    memdev: MemoryBackend | None = qom_link("memdev", TYPE_MEMORY_BACKEND,
                                            check=link_check_before_realize)
    node: int = device_property("node", UINT32, type="uint32", default=0)
    addr: int = device_property("addr", UINT64, type="uint64", default=0)
    slot: int = device_property("slot", INT32, type="int32", default=UNASSIGNED_SLOT)

    # -- memory-device ---------------------------------------------------

    def get_addr(self) -> int:
        return self.addr

    def set_addr(self, addr: int) -> None:
        self.addr = addr

    def get_region_size(self) -> int:
        """The backend's size, or what a subtype's ``SLOT_DIMM_REGION_SIZE`` says
        (:mod:`plugins.dimm`); QEMU's error when ``memdev`` is unset."""
        region_size = self.object_class.slots.get(SLOT_DIMM_REGION_SIZE)
        if region_size is not None:
            return int(region_size(self))
        return _memdev_or_raise(self).size

    def get_min_alignment(self) -> int:
        """The backend region's alignment: 2 MiB for RAM, the page size for files."""
        memory = _memdev_or_raise(self).host_memory
        return memory.align if memory is not None else 1

    def get_host_region(self) -> HostRegion:
        memory = _memdev_or_raise(self).host_memory
        if memory is None:
            raise InvalidPropertyValue("'memdev' property is not set")
        return memory

    def get_memdev(self) -> Object | None:
        return self.memdev

    def get_node(self) -> int:
        return self.node

    def get_slot(self) -> int | None:
        return self.slot

    def set_slot(self, slot: int) -> None:
        self.slot = slot

    def fill_device_info(self) -> dict[str, Any]:
        """QEMU's ``pc_dimm_md_fill_device_info``: kind ``dimm``,
        or the class's ``SLOT_MEMORY_DEVICE_KIND`` (a subtype's own kind)."""
        kind = self.object_class.slots.get(SLOT_MEMORY_DEVICE_KIND, "dimm")
        return {"type": kind, "data": self.dimm_info()}

    def dimm_info(self) -> dict[str, Any]:
        """The ``PCDIMMDeviceInfo`` members, in the schema's order."""
        data: dict[str, Any] = {}
        if self.id is not None:
            data["id"] = self.id
        data.update({
            "addr": self.addr,
            "size": self.get_region_size(),
            "slot": self.slot,
            "node": self.node,
            "memdev": self.memdev.canonical_path if self.memdev is not None else "",
            "hotplugged": self.hotplugged,
            "hotpluggable": bool(self.object_class.slots.get("hotpluggable", True)),
        })
        return data

    # -- lifecycle -------------------------------------------------------

    def realize(self) -> None:
        """QEMU's ``pc_dimm_realize``: NUMA node range, then the backend must be free."""
        machine = self.tree.machine if self.tree is not None else None
        nodes = int(getattr(machine, "numa_node_count", 0))
        if (nodes > 0 and self.node >= nodes) or (nodes == 0 and self.node):
            raise InvalidPropertyValue(
                f"'DIMM property node has value {self.node}' which exceeds the number of"
                f" numa nodes: {nodes or 1}")
        if self.memdev is None:
            raise InvalidPropertyValue("'memdev' property is not set")
        if self.memdev.is_mapped():
            raise InvalidPropertyValue(
                f"can't use already busy memdev: {self.memdev.name_in_parent}")
        subtype_realize = self.object_class.slots.get(SLOT_DIMM_REALIZE)
        if subtype_realize is not None:
            subtype_realize(self)
        self.memdev.set_mapped(True)

    def unrealize(self) -> None:
        """Give the backend back: it can be deleted or used by another DIMM again."""
        subtype_unrealize = self.object_class.slots.get(SLOT_DIMM_UNREALIZE)
        if subtype_unrealize is not None:
            subtype_unrealize(self)
        if self.memdev is not None:
            self.memdev.set_mapped(False)


def _pc_dimm_class_init(klass: ObjectClass, data: Any) -> None:
    klass.slots[SLOT_DESC] = "DIMM memory module"

    def size(obj: Object) -> int:
        assert isinstance(obj, PcDimm)
        return obj.get_region_size()

    klass.add_property(Property(name="size", type="uint64", kind=UINT64, getter=size))
    # QEMU also lists the write-only legacy string form of the link.
    klass.add_property(Property(name="legacy-memdev", type="str"))


@hookimpl
def qom_register_types(registry: TypeRegistry) -> None:
    """Register ``pc-dimm``."""
    registry.register(TypeInfo(name=TYPE_PC_DIMM, parent=TYPE_DEVICE, impl=PcDimm,
                               interfaces=(TYPE_MEMORY_DEVICE,),
                               class_init=_pc_dimm_class_init))
