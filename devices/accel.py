"""The accelerator types: ``accel`` and ``tcg-accel``, the only one pyqom has.

pyqom runs its guest on Unicorn, which is QEMU's TCG: ``-accel tcg`` and
``-machine accel=tcg`` are what it honours, and ``qom-list-types`` shows
``tcg-accel`` as QEMU 7.2 does (libvirt looks for it before it offers domain
type ``qemu``).  KVM and the other hardware accelerators are not built in, as
in a QEMU built without them (:func:`pyqom.command_line.configure_accelerators`).
"""

from __future__ import annotations

from typing import Final

from plugins import hookimpl
from qom import TYPE_OBJECT, TypeInfo, TypeRegistry

TYPE_ACCEL: Final = "accel"
TYPE_TCG_ACCEL: Final = "tcg-accel"


@hookimpl
def qom_register_types(registry: TypeRegistry) -> None:
    """``accel`` > ``tcg-accel`` (QEMU 7.2's ``accel`` is not abstract either)."""
    registry.register(TypeInfo(name=TYPE_ACCEL, parent=TYPE_OBJECT))
    registry.register(TypeInfo(name=TYPE_TCG_ACCEL, parent=TYPE_ACCEL))
