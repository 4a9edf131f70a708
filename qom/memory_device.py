"""The ``memory-device`` interface: what a device placed in guest-physical memory offers.

QEMU's ``MemoryDeviceClass`` (``hw/mem/memory-device.c``) as a Python base
class.  A device type implements the interface twice over, as QEMU's do:

* its :class:`~qom.typeinfo.TypeInfo` lists ``interfaces=("memory-device",)``,
  so ``is_a("memory-device")`` and ``qom-list-types implements=memory-device``
  see it;
* its Python class inherits :class:`MemoryDevice` and implements the methods.

The machine's hotplug handler, the address space and the ACPI code use only
these methods, so a device nobody wrote into pyqom (one with no DIMM slot, a
``pc-dimm`` subtype with its own ``query-memory-devices`` kind) plugs in with
no change to them.  :func:`as_memory_device` is the checked down-cast.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, Final, Protocol

if TYPE_CHECKING:
    from qom.object import Object

TYPE_MEMORY_DEVICE: Final = "memory-device"
#: class slot: the ``type`` of a DIMM's ``query-memory-devices`` entry; a
#: ``pc-dimm`` subtype's ``class_init`` may set its own (QEMU's subtypes
#: override ``MemoryDeviceClass.fill_device_info`` the same way)
SLOT_MEMORY_DEVICE_KIND: Final = "memory_device_kind"
#: class slot: ``fn(device) -> (kind, text, aliased)``, the region ``info mtree``
#: shows at the device's address: its kind (``ram``, ``nv-ram``), its text
#: (``alias nvdimm-memory @m1 0000000000000000-...``) and, for an alias, the
#: aliased region's (name, size), which gets a ``memory-region:`` section of its
#: own; without it, the backend's ``ram`` region under the backend's id
SLOT_MEMORY_DEVICE_MTREE: Final = "memory_device_mtree"


class HostRegion(Protocol):
    """The host memory behind a memory device (a backend's mapping).

    Only what mapping it into the guest needs: where it is, how big, and
    whether the guest may write it.
    """

    @property
    def address(self) -> int:
        """Host virtual address of the first byte."""
        ...

    @property
    def size(self) -> int:
        """Usable bytes."""
        ...

    @property
    def mapped_size(self) -> int:
        """Bytes actually mapped on the host (``size`` rounded up to its page size)."""
        ...

    @property
    def align(self) -> int:
        """The alignment a guest-physical address for it needs."""
        ...

    @property
    def readonly(self) -> bool:
        """Mapped without write permission: guest writes must fault."""
        ...

    @property
    def view(self) -> memoryview:
        """The bytes themselves."""
        ...


class MemoryDevice(abc.ABC):
    """QEMU's ``MemoryDeviceClass``, implemented by a device's Python class.

    Every method may be called before the device is realized (the handler's
    pre_plug needs the size and alignment), and must then raise
    :class:`~qom.errors.QomError` with QEMU's message if the device is not
    configured enough to answer (pc-dimm: ``'memdev' property must be set``).
    """

    __slots__ = ()

    @abc.abstractmethod
    def get_addr(self) -> int:
        """The guest-physical address; 0 until one is chosen (QEMU's ``get_addr``)."""

    @abc.abstractmethod
    def set_addr(self, addr: int) -> None:
        """Record the address the handler chose (QEMU's ``set_addr``)."""

    @abc.abstractmethod
    def get_region_size(self) -> int:
        """Bytes the device occupies in the device-memory region."""

    def get_plugged_size(self) -> int:
        """Bytes counted as plugged memory (``query-memory-size-summary``,
        ``info memory_size_summary``); the region size unless overridden
        (QEMU's ``get_plugged_size``)."""
        return self.get_region_size()

    @abc.abstractmethod
    def get_min_alignment(self) -> int:
        """The alignment the address needs (the backend region's alignment)."""

    @abc.abstractmethod
    def get_host_region(self) -> HostRegion:
        """The host memory the guest sees at the device's address."""

    def get_memdev(self) -> Object | None:
        """The backend object, if the device has one (its path is reported)."""
        return None

    def get_node(self) -> int:
        """The NUMA node the memory belongs to."""
        return 0

    def get_slot(self) -> int | None:
        """The device's slot, or ``None`` for a device that needs none.

        Devices with a slot (pc-dimm) get one from the machine's handler and
        an ACPI slot the guest can eject through; others only get an address.
        """
        return None

    def set_slot(self, slot: int) -> None:
        """Record the slot the handler chose.  Called only for a device whose
        :meth:`get_slot` is not ``None``, which must then override this; for
        the others there is nothing to record, and a call is a handler bug."""
        raise TypeError(f"{type(self).__name__} reports no slot, so it cannot be given one")

    @abc.abstractmethod
    def fill_device_info(self) -> dict[str, Any]:
        """One ``query-memory-devices`` entry: ``{"type": KIND, "data": {...}}``
        (QEMU's ``fill_device_info``)."""


def as_memory_device(obj: object) -> MemoryDevice | None:
    """``obj`` as a :class:`MemoryDevice`, or ``None`` if it is not one.

    A QOM type that lists ``memory-device`` must have an implementation class
    that inherits :class:`MemoryDevice`; one that does not is a programming
    error, reported here rather than as an ``AttributeError`` later.
    """
    if isinstance(obj, MemoryDevice):
        return obj
    is_a = getattr(obj, "is_a", None)
    if is_a is not None and is_a(TYPE_MEMORY_DEVICE):
        raise TypeError(f"{type(obj).__name__} is a QOM memory-device but does not "
                        "inherit qom.MemoryDevice")
    return None
