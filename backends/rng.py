"""Random number generator backends (QEMU's ``backends/rng*.c``).

* ``rng-backend`` (abstract, user-creatable): the read-only ``opened``
  property, true once ``complete()`` opened the source.  ``object-add``
  takes ``opened`` (a deprecated QAPI member) and refuses it, as QEMU 7.2
  does, with ``Property '<type>.opened' is not writable``.
* ``rng-random``: ``filename`` (default ``/dev/urandom``), opened read-only
  and non-blocking by ``complete()`` (``Could not open '<file>': <strerror>``)
  and closed when the object goes; ``filename`` cannot change once opened.
* ``rng-builtin``: no properties; entropy from the kernel (``getrandom``).
* ``rng-egd``: ``chardev`` (mandatory), the id of a chardev that is made
  this object's front end on ``complete()`` (``Device '<id>' not found``,
  ``Device '<id>' is in use``); reading ``chardev`` gives the id once
  connected, else ``""``.

pyqom has no ``virtio-rng`` device, so nothing asks these backends for
entropy yet; :meth:`RngBackend.request_entropy` is what such a device would
call, and it reads the real source.  ``rng-egd`` does not speak the EGD
protocol: its ``request_entropy`` says so in one line.
"""

from __future__ import annotations

import os
from typing import Any, Final

import attrs

from plugins import hookimpl
from plugins.services import CHARDEVS, Chardevs, services_of
from qom import (
    BOOL,
    STR,
    TYPE_USER_CREATABLE,
    DeviceNotFoundError,
    Object,
    ObjectClass,
    Property,
    QomError,
    TypeInfo,
    TypeRegistry,
)

TYPE_RNG_BACKEND: Final = "rng-backend"
TYPE_RNG_RANDOM: Final = "rng-random"
TYPE_RNG_BUILTIN: Final = "rng-builtin"
TYPE_RNG_EGD: Final = "rng-egd"
DEFAULT_RNG_FILE: Final = "/dev/urandom"


@attrs.define(eq=False, repr=False)
class RngBackend(Object):
    """The abstract ``rng-backend``: ``opened`` once ``complete()`` succeeded."""

    opened: bool = attrs.field(default=False, init=False)

    def open(self) -> None:
        """Open the entropy source (subclasses); raise with QEMU's message."""

    def complete(self) -> None:
        """user-creatable: open the source, then report ``opened``."""
        self.open()
        self.opened = True

    def request_entropy(self, size: int) -> bytes:
        """Up to ``size`` bytes of entropy from the source (what a virtio-rng would ask)."""
        raise NotImplementedError(f"{self.type_name} gives no entropy")


@attrs.define(eq=False, repr=False)
class RngRandom(RngBackend):
    """``rng-random``: entropy read from a host file (a character device)."""

    filename: str = DEFAULT_RNG_FILE
    _fd: int = attrs.field(default=-1, init=False)

    def set_filename(self, value: str) -> None:
        """``filename``: refused once the file is open."""
        if self.opened:
            raise QomError("Property 'filename' can no longer be set")
        self.filename = value

    def open(self) -> None:
        """QEMU's ``rng_random_opened``: ``open(filename, O_RDONLY | O_NONBLOCK)``."""
        try:
            self._fd = os.open(self.filename, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as err:
            raise QomError(f"Could not open '{self.filename}': "
                           f"{os.strerror(err.errno or 0)}") from err

    def request_entropy(self, size: int) -> bytes:
        """Read up to ``size`` bytes; ``b""`` if the file has none ready (non-blocking)."""
        if self._fd < 0:
            raise QomError(f"{self.type_name} is not opened")
        try:
            return os.read(self._fd, size)
        except BlockingIOError:
            return b""

    def close(self) -> None:
        """Close the file (finalize; idempotent)."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)


@attrs.define(eq=False, repr=False)
class RngBuiltin(RngBackend):
    """``rng-builtin``: the kernel's random bytes (QEMU's ``qemu_guest_getrandom``)."""

    def request_entropy(self, size: int) -> bytes:
        return os.urandom(size)


@attrs.define(eq=False, repr=False)
class RngEgd(RngBackend):
    """``rng-egd``: an EGD daemon behind a chardev; the chardev is held, not spoken to."""

    chardev: str = ""
    _chardevs: Chardevs | None = attrs.field(default=None, init=False)

    def set_chardev(self, value: str) -> None:
        """``chardev``: refused once connected."""
        if self.opened:
            raise QomError("Property 'chardev' can no longer be set")
        self.chardev = value

    def get_chardev(self) -> str:
        """The chardev's id once connected, else ``""`` (QEMU's NULL)."""
        return self.chardev if self._chardevs is not None else ""

    def open(self) -> None:
        """QEMU's ``rng_egd_opened``: find the chardev and become its front end."""
        chardevs = None
        if self.tree is not None:
            # the machine's, or before the machine exists the tree root's
            owner = self.tree.machine if self.tree.machine is not None else self.tree.root
            chardevs = services_of(owner).find(CHARDEVS)
        if chardevs is None or chardevs.find(self.chardev) is None:
            raise DeviceNotFoundError(f"Device '{self.chardev}' not found")
        chardevs.attach(self.chardev, self)
        self._chardevs = chardevs

    def request_entropy(self, size: int) -> bytes:
        raise QomError("rng-egd: pyqom does not speak the EGD protocol")

    def close(self) -> None:
        """Let go of the chardev (finalize)."""
        chardevs, self._chardevs = self._chardevs, None
        if chardevs is not None:
            chardevs.detach(self.chardev, self)


def _as(obj: Object, cls: type[Any]) -> Any:
    assert isinstance(obj, cls)
    return obj


def _rng_backend_class_init(klass: ObjectClass, data: Any) -> None:
    klass.add_property(Property(name="opened", type="bool", kind=BOOL,
                                getter=lambda obj: _as(obj, RngBackend).opened,
                                schema_member=True))


def _rng_random_class_init(klass: ObjectClass, data: Any) -> None:
    klass.add_property(Property(
        name="filename", type="string", kind=STR,
        getter=lambda obj: _as(obj, RngRandom).filename,
        setter=lambda obj, value: _as(obj, RngRandom).set_filename(value)))


def _rng_egd_class_init(klass: ObjectClass, data: Any) -> None:
    klass.add_property(Property(
        name="chardev", type="string", kind=STR, mandatory=True,
        getter=lambda obj: _as(obj, RngEgd).get_chardev(),
        setter=lambda obj, value: _as(obj, RngEgd).set_chardev(value)))


def _close(obj: Object) -> None:
    close = getattr(obj, "close", None)
    if close is not None:
        close()


RNG_TYPES: Final = (
    TypeInfo(name=TYPE_RNG_BACKEND, parent="object", impl=RngBackend, abstract=True,
             interfaces=(TYPE_USER_CREATABLE,), class_init=_rng_backend_class_init),
    TypeInfo(name=TYPE_RNG_RANDOM, parent=TYPE_RNG_BACKEND, impl=RngRandom,
             class_init=_rng_random_class_init, instance_finalize=_close),
    TypeInfo(name=TYPE_RNG_BUILTIN, parent=TYPE_RNG_BACKEND, impl=RngBuiltin),
    TypeInfo(name=TYPE_RNG_EGD, parent=TYPE_RNG_BACKEND, impl=RngEgd,
             class_init=_rng_egd_class_init, instance_finalize=_close),
)


@hookimpl
def qom_register_types(registry: TypeRegistry) -> None:
    """Register ``rng-backend``, ``rng-random``, ``rng-builtin`` and ``rng-egd``."""
    for info in RNG_TYPES:
        registry.register(info)
