"""The host chardevs devices write to: ``-chardev`` and ``-debugcon``.

:class:`HostChardevs` holds them by id and is the ``chardev`` service of the
machine (:data:`plugins.services.CHARDEVS`), offered through
``qom_machine_services`` (it is registered as a plugin object by the VM).
Backends: ``null``, ``file`` (``path``, truncated, as QEMU opens it),
``stdio`` and ``socket`` (``unix:``/``tcp:``, server or client, one client at
a time: with no client connected, output is dropped, as in QEMU).  The
monitors' chardevs (``-qmp``, ``-monitor``) are separate, in
:mod:`plugins.monitor.chardev`, whose socket spelling and messages these share.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Protocol

import attrs

from plugins import hookimpl
from plugins.monitor.chardev import Chardev, ChardevError, parse_chardev
from plugins.services import CHARDEVS, Services
from qom import Object, QomError, parse_qemu_opts
from qom.reprs import FieldsValue

if TYPE_CHECKING:
    import socket

PROVIDER: Final = "pyqom.chardevs"
BACKENDS: Final = ("null", "file", "stdio", "socket")


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


class SocketBackend:
    """``socket``: the one connected client gets every byte; a server with no
    client drops them and takes the next client on the next write."""

    def __init__(self, chardev: Chardev, info: Callable[[str], None]) -> None:
        from plugins.monitor.chardev import bound_port, connect, open_listener, wait_for_client

        self.listener: socket.socket | None = None
        self.client: socket.socket | None = None
        #: the socket file this unix server made, removed when it closes
        self.path = ""
        try:
            if not chardev.server:
                self.client = connect(chardev)
                return
            self.listener = open_listener(chardev)
            if chardev.kind == "unix":
                self.path = chardev.path
            if chardev.wait:
                self.client = wait_for_client(self.listener,
                                              bound_port(chardev, self.listener), info)
        except ChardevError as err:
            self.close()
            raise QomError(err.lines[0]) from None
        self.listener.setblocking(False)

    def write(self, data: bytes) -> None:
        if self.client is None and self.listener is not None:
            with contextlib.suppress(BlockingIOError, InterruptedError, OSError):
                self.client, _ = self.listener.accept()
                self.client.setblocking(True)
        if self.client is None:
            return
        try:
            self.client.sendall(data)
        except OSError:   # the client left: output is dropped until the next one
            self.client.close()
            self.client = None

    def close(self) -> None:
        for sock in (self.client, self.listener):
            if sock is not None:
                sock.close()
        self.client = self.listener = None
        if self.path:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            self.path = ""


def _to_stderr(text: str) -> None:
    sys.stderr.write(text + "\n")


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
    #: the socket of a ``socket`` chardev (the monitors' parsed form)
    socket: Chardev | None = None

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
    if backend == "socket":
        return _socket_option(chardev_id, text, values, opts)
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


def _socket_option(chardev_id: str, text: str, values: dict[str, str],
                   opts: list[Any]) -> ChardevSpec:
    """``-chardev socket,id=ID,path=P|host=H,port=N[,server=on][,wait=off]``."""
    for opt in opts:
        if opt.name not in ("backend", "id", "path", "host", "port", "server", "wait", "fd"):
            if opt.name in ("telnet", "nodelay", "reconnect", "websocket", "ipv4", "ipv6",
                            "to", "tls-creds", "tls-authz", "tight", "abstract", "logfile"):
                raise QomError(f"pyqom does not support the socket option '{opt.name}'")
            raise QomError(f"Invalid parameter '{opt.name}'")
    flags = []
    for name in ("server", "wait"):
        if name in values:
            flags.append(f"{name}={values[name]}")
    if "fd" in values:
        return ChardevSpec(chardev_id, "socket", filename=f"fd:{values['fd']}",
                           socket=_fd_socket(values, text))
    if "path" in values:
        address = f"unix:{values['path']}"
    elif "host" in values or "port" in values:
        if "port" not in values:
            raise QomError("chardev: socket: no port given")
        address = f"tcp:{values.get('host', '')}:{values['port']}"
    else:
        raise QomError("Unable to parse FD number ")
    try:
        chardev = parse_chardev(",".join([address, *flags]), hmp=False)
    except ChardevError as err:
        raise QomError(err.lines[0]) from None
    return ChardevSpec(chardev_id, "socket", filename=chardev.text, socket=chardev)


def _fd_socket(values: dict[str, str], text: str) -> Chardev:
    """``fd=N``: a socket the parent process opened (listening for ``server=on``)."""
    fd_text = values["fd"]
    if not fd_text.isdigit():
        raise QomError("Unable to parse FD number " + fd_text)
    flags: dict[str, bool] = {}
    for name in ("server", "wait"):
        value = values.get(name, "on" if name == "wait" else "off")
        if value not in ("on", "off"):
            raise QomError(f"Parameter '{name}' expects 'on' or 'off'")
        flags[name] = value == "on"
    server = flags["server"]
    return Chardev("fd", text, fd=int(fd_text), server=server,
                   wait=server and flags["wait"])


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
    if kind in ("tcp", "unix"):
        try:
            chardev = parse_chardev(spec, hmp=False)
        except ChardevError as err:
            raise QomError(err.lines[0]) from None
        return ChardevSpec(chardev_id, "socket", filename=spec, socket=chardev)
    if kind in ("telnet", "udp", "pipe", "pty", "serial", "parallel",
                "chardev", "braille", "msmouse", "websocket"):
        raise QomError(f"pyqom does not support the chardev backend '{kind}' "
                       f"(only null, stdio, vc, file:, unix: and tcp:)")
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

    def open(self, spec: ChardevSpec, info: Callable[[str], None] | None = None) -> None:
        """Open ``spec``'s backend under its id.

        :param info: where a ``wait=on`` socket says it waits for its client.
        :raises QomError: the id is taken, or the file or socket cannot be opened.
        """
        if spec.id in self._backends:
            raise QomError(f"Duplicate ID '{spec.id}' for chardev")
        if spec.backend == "socket":
            assert spec.socket is not None
            backend: Backend = SocketBackend(spec.socket, info or _to_stderr)
        elif spec.backend == "file":
            backend = _open_file(spec.path)
        elif spec.backend == "stdio":
            backend = FdBackend(sys.stdout.fileno(), owned=False)
        else:
            backend = NullBackend()
        self._backends[spec.id] = backend
        self._specs[spec.id] = spec

    def ids(self) -> list[str]:
        return list(self._backends)

    def query_chardev(self) -> list[dict[str, Any]]:
        """``query-chardev`` entries, in creation order: ``frontend-open`` while a
        device uses the chardev; ``filename`` as QEMU gives it (``file``,
        ``null``, ``stdio``, a socket's address)."""
        from plugins.monitor.chardev import query_filename

        entries = []
        for chardev_id, backend in self._backends.items():
            spec = self._specs[chardev_id]
            if isinstance(backend, SocketBackend):
                assert spec.socket is not None
                filename = query_filename(spec.socket, backend.client, backend.listener)
            else:
                filename = spec.backend
            entries.append({"frontend-open": chardev_id in self._owners,
                            "filename": filename, "label": chardev_id})
        return entries

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
