"""The address space's errors: :class:`~qom.QomError` subclasses (QMP class GenericError)."""

from __future__ import annotations

from qom import QomError


class AddressSpaceError(QomError):
    """Root of the address space's errors (a :class:`~qom.QomError`, class GenericError)."""


class MappingError(AddressSpaceError, ValueError):
    """A mapping or port registration was refused: misaligned, overlapping, out of range."""


class UnknownMappingError(AddressSpaceError, LookupError):
    """:meth:`GuestAddressSpace.unmap` / ``unregister_ports`` of something not registered."""


class GuestError(AddressSpaceError):
    """Guest code stopped with an error Unicorn reported (e.g. an invalid instruction).

    :ivar rip: the guest's instruction pointer when it stopped, or ``None``.
    """

    def __init__(self, message: str, *, rip: int | None = None) -> None:
        super().__init__(message)
        self.rip = rip


class GuestFault(GuestError):
    """A guest access (or :meth:`GuestAddressSpace.read`/``write``) hit no usable memory.

    :ivar address: the guest-physical address that faulted.
    :ivar access: ``"read"``, ``"write"`` or ``"fetch"``.
    :ivar size: the size of the faulting access in bytes (0 if unknown).
    :ivar protection: ``True`` for a write to read-only memory, ``False`` for unmapped.
    """

    def __init__(self, address: int, access: str, *, size: int = 0, protection: bool = False,
                 rip: int | None = None) -> None:
        what = "read-only" if protection else "unmapped"
        where = f" at rip 0x{rip:x}" if rip is not None else ""
        super().__init__(f"guest {access} of {what} guest-physical address 0x{address:x}{where}",
                         rip=rip)
        self.address = address
        self.access = access
        self.size = size
        self.protection = protection
