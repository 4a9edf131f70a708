"""What a device may use of the memory backend it links to (its ``memdev``).

Part of the contract: a device plugin declares ``qom_link("memdev",
TYPE_MEMORY_BACKEND, ...)`` and uses the linked object through
:class:`Memdev` (QEMU's ``HostMemoryBackend`` as devices see it), so it
never imports a backend module.  ``pc-dimm`` uses the same calls.
"""

from __future__ import annotations

from typing import Final, Protocol, runtime_checkable

from qom import HostRegion

#: the abstract QOM type of every memory backend
TYPE_MEMORY_BACKEND: Final = "memory-backend"


@runtime_checkable
class Memdev(Protocol):
    """A memory backend as a device uses it."""

    @property
    def size(self) -> int:
        """Bytes of memory (the ``size`` property)."""
        ...

    @property
    def host_memory(self) -> HostRegion | None:
        """The host memory, once the backend is complete."""
        ...

    @property
    def name_in_parent(self) -> str | None:
        """The backend's id (its name under ``/objects``)."""
        ...

    @property
    def canonical_path(self) -> str | None:
        """``/objects/<id>``."""
        ...

    def is_mapped(self) -> bool:
        """Whether a device uses it already (QEMU's ``host_memory_backend_is_mapped``)."""
        ...

    def set_mapped(self, mapped: bool) -> None:
        """Mark it used by a device (refuses ``object-del`` while set), or free again."""
        ...


def as_memdev(obj: object) -> Memdev | None:
    """``obj`` as a :class:`Memdev`, or ``None``."""
    return obj if isinstance(obj, Memdev) else None
