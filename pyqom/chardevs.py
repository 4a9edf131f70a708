"""The host chardevs devices write to: ``-chardev`` and ``-debugcon``.

:class:`HostChardevs` holds them by id and is the ``chardev`` service of the
machine (:data:`plugins.services.CHARDEVS`), offered through
``qom_machine_services`` (it is registered as a plugin object by the VM).
Backends: ``null``, ``file`` (``path``, truncated, as QEMU opens it) and
``stdio``.  The monitors' chardevs (``-qmp``, ``-monitor``) are separate, in
:mod:`plugins.monitor.chardev`.
"""

from __future__ import annotations

import os
import sys
from typing import Final, Protocol

import attrs

from plugins import hookimpl
from plugins.services import CHARDEVS, Services
from qom import Object, QomError, parse_qemu_opts
from qom.reprs import FieldsValue

PROVIDER: Final = "pyqom.chardevs"
BACKENDS: Final = ("null", "file", "stdio")


class Backend(Protocol):
    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...


class NullBackend:
    """``null``: output is dropped."""

    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        pass


class FdBackend:
    """``file`` and ``stdio``: every byte written as it comes, unbuffered."""

    def __init__(self, fd: int, *, owned: bool) -> None:
        self.fd, self.owned = fd, owned

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]

    def close(self) -> None:
        if self.owned and self.fd >= 0:
            os.close(self.fd)
        self.fd = -1


def _open_file(path: str) -> FdBackend:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    except OSError as err:
        raise QomError(f"Could not open '{path}': {os.strerror(err.errno or 0)}") from None
    return FdBackend(fd, owned=True)


@attrs.frozen(repr=False, eq=False)
class ChardevSpec(FieldsValue):
    """A parsed ``-chardev`` (or ``-debugcon``) chardev, not opened yet."""

    id: str
    backend: str
    path: str = ""
    #: the ``filename`` of ``query-chardev`` (``null``, ``file:PATH``, ``stdio``)
    filename: str = ""

    @property
    def uses_stdio(self) -> bool:
        return self.backend == "stdio"


def parse_chardev_option(text: str) -> ChardevSpec:
    """``-chardev BACKEND,id=ID[,path=PATH]`` with QEMU 7.2's messages.

    :raises QomError: no id, an unknown backend or parameter, no file name.
    """
    opts = parse_qemu_opts(text, implied_key="backend")
    values = {opt.name: opt.value for opt in opts}
    backend = values.get("backend", "")
    chardev_id = values.get("id")
    if chardev_id is None:
        raise QomError("chardev: no id specified")
    if backend not in BACKENDS:
        if backend in ("socket", "pipe", "udp", "pty", "serial", "parallel", "ringbuf",
                       "memory", "mux", "msmouse", "wctablet", "braille", "testdev",
                       "spicevmc", "spiceport", "qemu-vdagent", "dbus", "vc"):
            raise QomError(f"pyqom does not support the chardev backend '{backend}' "
                           f"(only {', '.join(BACKENDS)})")
        raise QomError(f"'{backend}' is not a valid char driver name")
    allowed = {"backend", "id"} | ({"path"} if backend == "file" else set())
    for opt in opts:
        if opt.name not in allowed:
            raise QomError(f"Invalid parameter '{opt.name}'")
    if backend == "file":
        path = values.get("path")
        if path is None:
            raise QomError("chardev: file: no filename given")
        return ChardevSpec(chardev_id, "file", path, f"file:{path}")
    return ChardevSpec(chardev_id, backend, filename=backend)


def parse_legacy_chardev(chardev_id: str, text: str) -> ChardevSpec:
    """A legacy spec (``-debugcon null``, ``stdio``, ``file:PATH``, ``vc``,
    ``mon:stdio``) as chardev ``chardev_id``.

    :raises QomError: QEMU's first line for a spec it refuses.
    """
    spec = text.removeprefix("mon:")
    if spec in ("null", "vc") or spec.startswith("vc:"):
        return ChardevSpec(chardev_id, "null", filename="null" if spec == "null" else spec)
    if spec == "stdio":
        return ChardevSpec(chardev_id, "stdio", filename="stdio")
    if spec.startswith("file:"):
        path = spec.removeprefix("file:")
        return ChardevSpec(chardev_id, "file", path, spec)
    kind = spec.partition(":")[0]
    if kind in ("tcp", "unix", "telnet", "udp", "pipe", "pty", "serial", "parallel",
                "chardev", "braille", "msmouse", "websocket"):
        raise QomError(f"pyqom does not support the chardev backend '{kind}' "
                       f"(only null, stdio, vc and file:)")
    raise QomError(f"'{spec}' is not a valid char driver")


class HostChardevs:
    """The chardevs of one VM, by id; the ``chardev`` service of its machine.

    Registered as the plugin ``pyqom.chardevs``, which cannot be disabled.
    """

    #: the plugin name it registers under (``pyqom.manager.plugin_name``)
    __name__ = PROVIDER

    def __init__(self) -> None:
        self._backends: dict[str, Backend] = {}
        self._specs: dict[str, ChardevSpec] = {}
        self._owners: dict[str, object] = {}

    def open(self, spec: ChardevSpec) -> None:
        """Open ``spec``'s backend under its id.

        :raises QomError: the id is taken, or the file cannot be opened.
        """
        if spec.id in self._backends:
            raise QomError(f"Duplicate ID '{spec.id}' for chardev")
        if spec.backend == "file":
            backend: Backend = _open_file(spec.path)
        elif spec.backend == "stdio":
            backend = FdBackend(sys.stdout.fileno(), owned=False)
        else:
            backend = NullBackend()
        self._backends[spec.id] = backend
        self._specs[spec.id] = spec

    def ids(self) -> list[str]:
        return list(self._backends)

    # -- the Chardevs service ------------------------------------------------

    def find(self, chardev_id: str) -> Backend | None:
        return self._backends.get(chardev_id)

    def attach(self, chardev_id: str, owner: object) -> Backend:
        backend = self._backends.get(chardev_id)
        if backend is None:
            raise QomError(f"chardev '{chardev_id}' not found")
        holder = self._owners.get(chardev_id)
        if holder is not None and holder is not owner:
            raise QomError(f"Device '{chardev_id}' is in use")
        self._owners[chardev_id] = owner
        return backend

    def detach(self, chardev_id: str, owner: object) -> None:
        if self._owners.get(chardev_id) is owner:
            del self._owners[chardev_id]

    # -- the plugin ----------------------------------------------------------

    @hookimpl
    def qom_machine_services(self, machine: Object, services: Services) -> None:
        """Offer the chardevs to the machine's devices."""
        services.provide(CHARDEVS, self, provider=PROVIDER)

    def close(self) -> None:
        """Close every backend (files)."""
        for backend in self._backends.values():
            backend.close()
        self._backends.clear()
        self._owners.clear()
