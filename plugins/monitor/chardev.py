"""Monitor character devices as QEMU 7.2 spells and opens them (``-qmp``/``-monitor``).

:func:`parse_chardev` reads QEMU's legacy chardev syntax (``qemu_chr_parse_compat``)
with its messages; :func:`open_endpoint` binds, listens or connects the socket
with QEMU's error messages.  Both raise :class:`ChardevError`, whose lines
QEMU prints each after ``<prog>: <option> <spec>: ``.

Forms: ``stdio``; ``null`` and ``vc`` (a monitor nobody reaches, as a ``vc``
is with ``-display none``); ``unix:PATH[,server=on|off][,wait=on|off]``;
``tcp:HOST:PORT[,server=...][,wait=...]``; ``telnet:HOST:PORT[,...]`` (TCP
with QEMU's telnet negotiation).  Without ``server=on`` the monitor connects
out as a client; ``server=on`` waits for its first client before start-up goes
on unless ``wait=off``.  Legacy ``server``, ``nowait`` and ``wait`` flags work as
in QEMU.  One client is served at a time; later ones wait in the listen queue
(backlog 1), as with QEMU.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from qom.reprs import FieldsValue

# socket is imported by the functions that open sockets: a stdio-only start-up
# does without it.
if TYPE_CHECKING:
    import socket

#: QEMU's compat prefixes that take an address
_SOCKET_KINDS = ("unix", "tcp", "telnet")
#: option names QEMU's socket chardev takes after the address
_SOCKET_OPTIONS = frozenset({"server", "wait", "nowait", "nodelay", "telnet", "ipv4",
                             "ipv6", "to", "reconnect", "websocket", "mux", "logfile",
                             "logappend", "abstract", "tight", "tls-creds", "tls-authz"})
#: of those, what pyqom honours (the others are refused, never ignored)
_HONOURED = frozenset({"server", "wait", "nowait", "nodelay"})


class ChardevError(Exception):
    """A chardev QEMU refuses: each line is printed after ``<prog>: <option> <spec>: ``.

    :ivar lines: QEMU's messages, in order.
    """

    def __init__(self, *lines: str) -> None:
        super().__init__(lines[0])
        self.lines = lines


@attrs.frozen(repr=False, eq=False)
class Chardev(FieldsValue):
    """A parsed monitor chardev.

    :ivar kind: ``stdio``, ``null``, ``unix``, ``tcp`` or ``telnet``.
    :ivar text: the spec as written.
    :ivar path: the socket path (``unix``).
    :ivar host: the host (``tcp``/``telnet``), as written.
    :ivar port: the port (``tcp``/``telnet``), as written (QEMU resolves it as a service).
    :ivar server: listen (``True``) or connect.
    :ivar wait: a server waits for its first client before start-up goes on.
    """

    kind: str
    text: str
    path: str = ""
    host: str = ""
    port: str = ""
    server: bool = False
    wait: bool = False
    #: ``fd``: the inherited socket's descriptor (``-chardev socket,fd=N``)
    fd: int = -1

    @property
    def is_socket(self) -> bool:
        return self.kind in _SOCKET_KINDS or self.kind == "fd"

    @property
    def telnet(self) -> bool:
        return self.kind == "telnet"

    def describe(self) -> str:
        """QEMU's ``disconnected:...`` name of a waiting server (``unix:P,server=on``)."""
        where = (f"unix:{self.path}" if self.kind == "unix"
                 else f"fd:{self.fd}" if self.kind == "fd"
                 else f"{self.kind}:{self.host}:{self.port}")
        return f"disconnected:{where},server=on"


def _invalid_driver(text: str) -> ChardevError:
    return ChardevError(f"'{text}' is not a valid char driver", f"parse error: {text}")


def parse_chardev(text: str, *, hmp: bool) -> Chardev:
    """QEMU's legacy spec of ``-qmp``/``-monitor`` (``hmp`` for ``-monitor``).

    :raises ChardevError: QEMU's messages for the spec.
    """
    if text == "stdio":
        return Chardev("stdio", text)
    if text == "null" or (hmp and (text == "vc" or text.startswith("vc:"))):
        return Chardev("null", text)
    kind, colon, rest = text.partition(":")
    if not colon or kind not in _SOCKET_KINDS:
        raise _invalid_driver(text)
    address, _, option_text = rest.partition(",")
    options: dict[str, str] = {}
    for option in filter(None, option_text.split(",")):
        key, equals, value = option.partition("=")
        if key not in _SOCKET_OPTIONS:
            raise ChardevError(f"Invalid parameter '{key}'", f"parse error: {text}")
        if key not in _HONOURED:
            raise ChardevError(f"pyqom does not support the socket option '{key}'")
        if key == "nowait":
            key, value = "wait", "off"
        elif not equals:
            value = "on"
        if value not in ("on", "off"):
            raise ChardevError(f"Parameter '{key}' expects 'on' or 'off'",
                               f"parse error: {text}")
        options[key] = value
    server = options.get("server") == "on"
    wait = server and options.get("wait", "on") == "on"
    if kind == "unix":
        if not address:
            raise ChardevError("Unable to parse FD number ")
        return Chardev("unix", text, path=address, server=server, wait=wait)
    host, colon, port = address.partition(":")
    if not colon:
        raise ChardevError(f"parse error: {text}")
    return Chardev(kind, text, host=host, port=port, server=server, wait=wait)


def query_filename(chardev: Chardev, connected: socket.socket | None,
                   listener: socket.socket | None = None) -> str:
    """``query-chardev``'s ``filename`` of a socket chardev, as QEMU computes it:
    from the connection's own addresses while a client is connected
    (``unix:PATH,server=on``; ``tcp:HOST:PORT,server=on <-> PEER:PORT``), else
    ``disconnected:`` and the address it listens on (an inherited ``fd``'s
    real address, as QEMU looks it up) or was given."""
    listen = ",server=on" if chardev.server else ""
    if connected is not None:
        try:
            local, peer = connected.getsockname(), connected.getpeername()
        except OSError:
            local = peer = None
        if isinstance(local, str):
            return f"unix:{local}{listen}"
        if isinstance(local, tuple) and isinstance(peer, tuple):
            def host(address: tuple[Any, ...]) -> str:
                return f"[{address[0]}]" if ":" in address[0] else str(address[0])

            protocol = "telnet" if chardev.telnet else "tcp"
            return (f"{protocol}:{host(local)}:{local[1]}{listen} <-> "
                    f"{host(peer)}:{peer[1]}")
    if chardev.kind == "fd" and listener is not None:
        with contextlib.suppress(OSError):
            name = listener.getsockname()
            if isinstance(name, str):
                return f"disconnected:unix:{name}{listen}"
            return f"disconnected:tcp:{name[0]}:{name[1]}{listen}"
    if chardev.kind == "unix":
        return f"disconnected:unix:{chardev.path}{listen}"
    if chardev.kind == "fd":
        return f"disconnected:fd:{chardev.fd}{listen}"
    return f"disconnected:{chardev.kind}:{chardev.host}:{chardev.port}{listen}"


def check_stdio_once(chardevs: list[Chardev]) -> None:
    """QEMU's "cannot use stdio by multiple character devices" (for the second one)."""
    if sum(chardev.kind == "stdio" for chardev in chardevs) > 1:
        raise ChardevError("cannot use stdio by multiple character devices")


def _strerror(err: OSError) -> str:
    return os.strerror(err.errno) if err.errno else str(err)


def _resolve(chardev: Chardev, *, passive: bool) -> list[tuple[Any, ...]]:
    import socket

    try:
        return socket.getaddrinfo(chardev.host or None, chardev.port, socket.AF_UNSPEC,
                                  socket.SOCK_STREAM, 0, socket.AI_PASSIVE if passive else 0)
    except socket.gaierror as err:
        raise ChardevError(f"address resolution failed for {chardev.host}:{chardev.port}: "
                           f"{err.strerror}") from None


def _remove_stale_socket(path: str) -> None:
    """Only a socket nobody listens on may go; anything else at ``path`` stays (QEMU
    would replace a regular file there: pyqom refuses, and bind says why)."""
    import socket

    with contextlib.suppress(FileNotFoundError):
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            return
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except ConnectionRefusedError:
            os.unlink(path)
        except OSError:
            pass
        finally:
            probe.close()


def inherited_socket(chardev: Chardev, *, listening: bool) -> socket.socket:
    """The socket of ``fd=N`` (libvirt hands QEMU its monitor socket this way):
    a listening one for ``server=on``, else a connected one.  The descriptor is
    pyqom's from here on (closed with the socket), as it is QEMU's.

    :raises ChardevError: QEMU's "File descriptor 'N' is not a socket".
    """
    import socket

    try:
        sock = socket.socket(fileno=chardev.fd)
    except OSError:
        raise ChardevError(f"File descriptor '{chardev.fd}' is not a socket") from None
    sock.set_inheritable(False)
    accepting = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    if listening and not accepting:
        # QEMU listens on the inherited socket itself
        try:
            sock.listen(1)
        except OSError as err:
            sock.detach()
            raise ChardevError(f"Failed to listen on fd {chardev.fd}: "
                               f"{_strerror(err)}") from None
    return sock


def open_listener(chardev: Chardev) -> socket.socket:
    """Bind and listen (backlog 1: one client at a time, one more waiting).

    :raises ChardevError: QEMU's "Failed to bind socket to ..." or "Failed to find
        an available port: ..." messages.
    """
    import socket

    if chardev.kind == "fd":
        return inherited_socket(chardev, listening=True)
    if chardev.kind == "unix":
        _remove_stale_socket(chardev.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(chardev.path)
            sock.listen(1)
        except OSError as err:
            sock.close()
            raise ChardevError(f"Failed to bind socket to {chardev.path}: "
                               f"{_strerror(err)}") from None
        return sock
    last: OSError | None = None
    for family, kind, proto, _, sockaddr in _resolve(chardev, passive=True):
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(sockaddr)
            sock.listen(1)
            return sock
        except OSError as err:
            sock.close()
            last = err
    assert last is not None
    raise ChardevError(f"Failed to find an available port: {_strerror(last)}")


def connect(chardev: Chardev) -> socket.socket:
    """Connect as a client (no ``server=on``).

    :raises ChardevError: QEMU's "Failed to connect to '...': ..." message.
    """
    import socket

    if chardev.kind == "fd":
        return inherited_socket(chardev, listening=False)
    if chardev.kind == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(chardev.path)
        except OSError as err:
            sock.close()
            raise ChardevError(f"Failed to connect to '{chardev.path}': "
                               f"{_strerror(err)}") from None
        return sock
    last: OSError | None = None
    for family, kind, proto, _, sockaddr in _resolve(chardev, passive=False):
        sock = socket.socket(family, kind, proto)
        try:
            sock.connect(sockaddr)
            return sock
        except OSError as err:
            sock.close()
            last = err
    assert last is not None
    raise ChardevError(f"Failed to connect to '{chardev.host}:{chardev.port}': "
                       f"{_strerror(last)}")


def wait_for_client(listener: socket.socket, chardev: Chardev,
                    info: Callable[[str], None]) -> socket.socket:
    """``wait=on``: say so as QEMU does, then block until the first client connects."""
    info(f"info: QEMU waiting for connection on: {chardev.describe()}")
    while True:
        try:
            client, _ = listener.accept()
            return client
        except InterruptedError:
            continue
        except OSError as err:
            if err.errno != errno.EINTR:
                raise


def bound_port(chardev: Chardev, listener: socket.socket) -> Chardev:
    """The chardev with the port the listener really has (QEMU prints that one)."""
    if chardev.kind in ("unix", "fd"):
        return chardev
    return attrs.evolve(chardev, port=str(listener.getsockname()[1]))
