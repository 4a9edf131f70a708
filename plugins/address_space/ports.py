"""The guest's port-I/O registry: who answers ``IN`` and ``OUT`` on which ports.

The engine (:mod:`plugins.address_space.engine`) dispatches the guest's port
instructions here; plugins and devices claim ports through the ``port-io``
service, never by hooking Unicorn.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import attrs

from plugins.address_space.errors import MappingError, UnknownMappingError
from qom.reprs import FieldsRepr

#: The x86 I/O space: ports 0-0xffff.
IO_SPACE_SIZE: Final = 0x10000

PortRead = Callable[[int, int], int]
PortWrite = Callable[[int, int, int], None]


@attrs.frozen(eq=False, repr=False)
class PortRange(FieldsRepr):
    """A registered port-I/O range; the handle :meth:`PortRegistry.register` returns.

    :ivar name: shown by ``info mtree``.
    :ivar base: first port.
    :ivar length: number of ports.
    :ivar read: ``read(offset, size) -> value`` for ``IN``.
    :ivar write: ``write(offset, size, value)`` for ``OUT``.
    :ivar order: registration order (a later shadowing range wins its ports).
    """

    name: str
    base: int
    length: int
    read: PortRead = attrs.field(repr=False)
    write: PortWrite = attrs.field(repr=False)
    order: int = 0

    @property
    def end(self) -> int:
        """The first port after the range."""
        return self.base + self.length


class PortRegistry:
    """Claimed port ranges, sorted by first port (the newest first among equals)."""

    def __init__(self) -> None:
        self._ports: list[PortRange] = []
        self._registered = 0

    def register(self, base: int, length: int, read: PortRead, write: PortWrite,
                 name: str, *, shadow: bool = False) -> PortRange:
        """Serve the guest's ``IN``/``OUT`` to ports ``[base, base+length)``.

        Handlers get the offset from ``base`` and the access size (1, 2 or 4);
        an access is dispatched by its first port.  ``read`` must return an
        int; it is truncated to the access width.  An exception from a handler
        stops the guest and is re-raised by :meth:`run`.

        :param shadow: may overlap ranges registered before, and then serves the
            ports they share, as the later of two ISA regions of one priority
            does in QEMU (two ``isa-debugcon`` on one port: the second gets it).
        :returns: the handle for :meth:`unregister`.
        :raises MappingError: the range is empty, outside 0-0xffff, or overlaps
            a registered range without ``shadow``.
        """
        if length <= 0 or base < 0 or base + length > IO_SPACE_SIZE:
            raise MappingError(f"cannot register ports {name!r}: 0x{base:x}+0x{length:x}"
                               " is not inside the I/O space 0x0-0xffff")
        for other in [] if shadow else self._ports:
            if other.base < base + length and base < other.end:
                raise MappingError(
                    f"cannot register ports {name!r} at 0x{base:x}-0x{base + length - 1:x}:"
                    f" they overlap {other.name!r} at 0x{other.base:x}-0x{other.end - 1:x}")
        self._registered += 1
        handle = PortRange(name=name, base=base, length=length, read=read, write=write,
                           order=self._registered)
        self._ports.append(handle)
        self._ports.sort(key=lambda p: (p.base, -p.order))
        return handle

    def unregister(self, handle: PortRange) -> None:
        """Remove a port range registered by :meth:`register`.

        :raises UnknownMappingError: ``handle`` is not registered.
        """
        for index, registered in enumerate(self._ports):
            if registered is handle:
                del self._ports[index]
                return
        raise UnknownMappingError(f"port range {handle.name!r} is not registered")

    def ranges(self) -> list[PortRange]:
        """Every registered port range, by first port, the newest first among equals."""
        return list(self._ports)

    def find(self, port: int) -> PortRange | None:
        """The range serving ``port`` (the newest of overlapping ones), or ``None``."""
        serving: PortRange | None = None
        for candidate in self._ports:
            if candidate.base <= port < candidate.end and (
                    serving is None or candidate.order > serving.order):
                serving = candidate
        return serving

    def clear(self) -> None:
        """Drop every range (the engine is closing)."""
        self._ports.clear()
