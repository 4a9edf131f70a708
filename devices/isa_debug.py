"""QEMU's ISA debug devices: ``isa-debugcon`` (``hw/char/debugcon.c``) and
``isa-debug-exit`` (``hw/misc/debugexit.c``), built on the contract alone.

* ``isa-debugcon`` (``iobase`` 0xe9, ``chardev``, ``readback`` 0xe9): a
  guest ``OUT`` of one byte to ``iobase`` writes it to the chardev; an ``IN``
  reads ``readback & 0xff``.  Wider accesses are invalid for the region, so
  under TCG a write is dropped and a read gives 0.
* ``isa-debug-exit`` (``iobase`` 0x501, ``iosize`` 2): any ``OUT`` of
  ``value`` into its ports ends the process with ``(value << 1) | 1``
  (:class:`plugins.services.GuestExit`); ``IN`` reads 0.

Both sit on the ISA bus, which cannot hot-plug (``Bus 'isa.0' does not support
hotplugging``), so they are cold-plugged with ``-device``.  They claim their
ports through the ``port-io`` service when realized and give them back when
unrealized; like QEMU's regions, a later device at the same ports wins them.
An ``iobase`` the guest cannot reach (a range beyond 0xffff) and an
``iosize`` of 0 are accepted and claim nothing.
"""

from __future__ import annotations

import abc
from typing import Any, Final

import attrs

from plugins import hookimpl
from plugins.services import CHARDEVS, PORT_IO, CharBackend, GuestExit, services_of
from qom import (
    STR,
    TYPE_DEVICE,
    UINT32,
    Device,
    InvalidPropertyValue,
    Object,
    ObjectClass,
    QomError,
    TypeInfo,
    TypeRegistry,
    device_property,
    qom_property,
)
from qom.device import SLOT_BUS, SLOT_CATEGORY, SLOT_HOTPLUGGABLE

TYPE_ISA_DEVICE: Final = "isa-device"
TYPE_ISA_DEBUGCON: Final = "isa-debugcon"
TYPE_ISA_DEBUG_EXIT: Final = "isa-debug-exit"
#: the name of pyqom's (single) ISA bus, as QEMU names the pc's
ISA_BUS: Final = "isa.0"
IO_SPACE_END: Final = 0x10000


@attrs.define(eq=False, repr=False)
class IsaPortDevice(Device, abc.ABC):
    """An ISA device with one range of I/O ports, claimed while realized (the
    implementation of the abstract ``isa-device``)."""

    _ports: Any = attrs.field(default=None, init=False)
    _port_io: Any = attrs.field(default=None, init=False)

    @abc.abstractmethod
    def port_range(self) -> tuple[int, int]:
        """(first port, number of ports) of the region."""

    @abc.abstractmethod
    def read_port(self, offset: int, size: int) -> int:
        """A guest ``IN`` of ``size`` bytes at ``offset`` into the region."""

    @abc.abstractmethod
    def write_port(self, offset: int, size: int, value: int) -> None:
        """A guest ``OUT`` of ``size`` bytes at ``offset`` into the region."""

    def claim_ports(self) -> None:
        base, length = self.port_range()
        machine = self.tree.machine if self.tree is not None else None
        ports = services_of(machine).find(PORT_IO) if machine is not None else None
        if ports is None or length == 0 or base + length > IO_SPACE_END:
            return  # no guest I/O space, or a region the guest cannot reach
        self._ports = ports.register_ports(base, length, self.read_port, self.write_port,
                                           self.type_name, shadow=True)
        self._port_io = ports

    def release_ports(self) -> None:
        machine = self.tree.machine if self.tree is not None else None
        current = services_of(machine).find(PORT_IO) if machine is not None else None
        # After shutdown the service is gone with every port: nothing to give back.
        if self._ports is not None and current is not None and current is self._port_io:
            current.unregister_ports(self._ports)
        self._ports = None

    def realize(self) -> None:
        self.claim_ports()

    def unrealize(self) -> None:
        self.release_ports()


def _chardev_check(device: Object, value: str) -> None:
    """QEMU's ``set_chr``: the chardev must exist and have no other front end.

    The device becomes the front end at once (QEMU attaches while setting the
    property); the previous chardev, if any, is let go.
    """
    assert isinstance(device, IsaDebugcon)
    chardevs = None
    if device.tree is not None and device.tree.machine is not None:
        chardevs = services_of(device.tree.machine).find(CHARDEVS)
    if device.chardev:
        device.detach_chardev()
    if not value:
        return
    if chardevs is None or chardevs.find(value) is None:
        raise InvalidPropertyValue(
            f"Property '{device.type_name}.chardev' can't find value '{value}'")
    try:
        device.backend = chardevs.attach(value, device)
    except QomError as err:
        raise InvalidPropertyValue(
            f"Property '{device.type_name}.chardev' can't take value '{value}': {err}") from None
    device.chardevs = chardevs


@attrs.define(eq=False, repr=False)
class IsaDebugcon(IsaPortDevice):
    """``isa-debugcon``: a one-port console the guest writes bytes to."""

    # Declared in the order QEMU 7.2 lists them (qom-list-properties).
    readback: int = device_property("readback", UINT32, type="uint32", default=0xE9)
    chardev: str = qom_property("chardev", STR, type="str", default="",
                                description="ID of a chardev to use as a backend",
                                frozen_after_realize=True, check=_chardev_check)
    iobase: int = device_property("iobase", UINT32, type="uint32", default=0xE9)
    backend: CharBackend | None = attrs.field(default=None, init=False)
    chardevs: Any = attrs.field(default=None, init=False)

    def port_range(self) -> tuple[int, int]:
        return self.iobase, 1

    def read_port(self, offset: int, size: int) -> int:
        # The region takes 1-byte accesses only: TCG reads a wider one as 0.
        return self.readback & 0xFF if size == 1 else 0

    def write_port(self, offset: int, size: int, value: int) -> None:
        if size == 1 and self.backend is not None:
            self.backend.write(bytes([value & 0xFF]))

    def realize(self) -> None:
        """QEMU's ``debugcon_realizefn``: a chardev first, then the port."""
        if self.backend is None:
            raise QomError("Can't create debugcon device, empty char device")
        self.claim_ports()

    def detach_chardev(self) -> None:
        if self.chardevs is not None and self.chardev:
            self.chardevs.detach(self.chardev, self)
        self.backend = None


def _debugcon_finalize(obj: Object) -> None:
    assert isinstance(obj, IsaDebugcon)
    obj.detach_chardev()


@attrs.define(eq=False, repr=False)
class IsaDebugExit(IsaPortDevice):
    """``isa-debug-exit``: a write ends the process with ``(value << 1) | 1``."""

    iosize: int = device_property("iosize", UINT32, type="uint32", default=2)
    iobase: int = device_property("iobase", UINT32, type="uint32", default=0x501)

    def port_range(self) -> tuple[int, int]:
        return self.iobase, self.iosize

    def read_port(self, offset: int, size: int) -> int:
        return 0

    def write_port(self, offset: int, size: int, value: int) -> None:
        raise GuestExit((value << 1) | 1)


def _isa_device_class_init(klass: ObjectClass, data: Any) -> None:
    klass.slots[SLOT_BUS] = ISA_BUS
    klass.slots[SLOT_HOTPLUGGABLE] = True


def _misc_class_init(klass: ObjectClass, data: Any) -> None:
    klass.slots[SLOT_CATEGORY] = "Misc"


@hookimpl
def qom_register_types(registry: TypeRegistry) -> None:
    """Register ``isa-device``, ``isa-debugcon`` and ``isa-debug-exit``."""
    registry.register(TypeInfo(name=TYPE_ISA_DEVICE, parent=TYPE_DEVICE, abstract=True,
                               impl=IsaPortDevice, class_init=_isa_device_class_init))
    registry.register(TypeInfo(name=TYPE_ISA_DEBUGCON, parent=TYPE_ISA_DEVICE,
                               impl=IsaDebugcon, class_init=_misc_class_init,
                               instance_finalize=_debugcon_finalize))
    registry.register(TypeInfo(name=TYPE_ISA_DEBUG_EXIT, parent=TYPE_ISA_DEVICE,
                               impl=IsaDebugExit, class_init=_misc_class_init))
