"""What a ``pc-dimm`` subtype may change, without importing ``pc-dimm``.

QEMU's DIMM subtypes (``nvdimm``) override virtual methods of
``PCDIMMDeviceClass`` and ``MemoryDeviceClass`` in their ``class_init``;
pyqom's do the same through class slots that ``pc-dimm`` consults.  A plugin
registers ``TypeInfo(name="my-dimm", parent="pc-dimm", class_init=...)`` and
sets, in ``class_init``:

``klass.slots[SLOT_DIMM_REGION_SIZE] = fn(dimm) -> int``
    the bytes of the backend the guest sees from the DIMM's address (QEMU's
    ``get_memory_region`` override): ``size``, the placement in the
    device-memory region, the mapping and ``query-memory-devices`` use it.
    It may raise :class:`qom.QomError` to refuse the DIMM (QEMU calls it in
    pre_plug, after the slot is chosen and before the address is).  Default:
    the whole backend.
``klass.slots[SLOT_DIMM_REALIZE] = fn(dimm) -> None``
    runs in ``realize`` after ``pc-dimm``'s own checks, before the backend is
    marked busy (``PCDIMMDeviceClass.realize``); raise to refuse.
``klass.slots[SLOT_DIMM_UNREALIZE] = fn(dimm) -> None``
    runs in ``unrealize`` before the backend is given back.

and ``klass.slots[qom.memory_device.SLOT_MEMORY_DEVICE_KIND]`` for its own
``query-memory-devices`` kind.  The functions get the DIMM as a
:class:`Dimm` (:func:`as_dimm` is the checked cast for other code); per-device
state goes in ``dimm.stash``.
"""

from __future__ import annotations

from typing import Final, Protocol, cast

from plugins.memdev import Memdev
from qom.object import Stash

#: the QOM type every DIMM subtype derives from
TYPE_PC_DIMM: Final = "pc-dimm"

SLOT_DIMM_REGION_SIZE: Final = "dimm_region_size"
SLOT_DIMM_REALIZE: Final = "dimm_realize"
SLOT_DIMM_UNREALIZE: Final = "dimm_unrealize"


class Dimm(Protocol):
    """A ``pc-dimm`` (or subtype) as the functions of its class slots see it."""

    @property
    def id(self) -> str | None: ...

    @property
    def type_name(self) -> str: ...

    @property
    def stash(self) -> Stash: ...

    @property
    def realized(self) -> bool: ...

    @property
    def hotplugged(self) -> bool: ...

    @property
    def memdev(self) -> Memdev | None:
        """The linked backend (``memdev``), or ``None``."""
        ...

    def get_addr(self) -> int:
        """The guest-physical address (0 until the machine chose one)."""
        ...

    def get_slot(self) -> int | None:
        """The slot (-1 until the machine chose one)."""
        ...

    def get_node(self) -> int:
        """The ``node`` property."""
        ...

    def get_region_size(self) -> int:
        """What :data:`SLOT_DIMM_REGION_SIZE` answers (or the backend's size)."""
        ...


def as_dimm(obj: object) -> Dimm | None:
    """``obj`` as a :class:`Dimm` if it is a ``pc-dimm`` (or subtype), else ``None``."""
    is_a = getattr(obj, "is_a", None)
    if is_a is None or not is_a(TYPE_PC_DIMM):
        return None
    return cast(Dimm, obj)
