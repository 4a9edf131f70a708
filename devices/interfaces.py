"""QOM interfaces for devices, and the Python protocols behind them.

``memory-device`` is what the machine's hotplug handler places in the
device-memory region: pc-dimm implements it.  Plugins test for it by QOM
type name (``device.is_a("memory-device")``), never by importing a device.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Protocol, runtime_checkable

from plugins import hookimpl
from qom import TYPE_INTERFACE, TypeInfo, TypeRegistry

if TYPE_CHECKING:
    from backends.base import MemoryBackend

TYPE_MEMORY_DEVICE: Final = "memory-device"
TYPE_MACHINE: Final = "machine"


@runtime_checkable
class MemoryDevice(Protocol):
    """What a memory device offers the hotplug handler and the address space.

    QEMU's ``MemoryDeviceClass``: the device's address, its region size and
    alignment, and the backend whose host memory the guest sees.
    """

    addr: int

    @property
    def backend(self) -> MemoryBackend | None:
        """The backend (``memdev``), or ``None`` while unset."""
        ...

    def region_size(self) -> int:
        """Bytes the device occupies in the device-memory region."""
        ...

    def region_alignment(self) -> int:
        """The alignment its address needs (the backend region's alignment)."""
        ...


@hookimpl
def qom_register_types(registry: TypeRegistry) -> None:
    """Register ``memory-device``."""
    registry.register(TypeInfo(name=TYPE_MEMORY_DEVICE, parent=TYPE_INTERFACE))
