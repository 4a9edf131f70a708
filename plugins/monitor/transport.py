"""Byte-stream servers for the monitors: unix sockets, TCP on loopback, stdio.

This module knows nothing of QMP or HMP.  A server is given a *session
factory*: for each client it calls ``factory(write)`` and gets a
:class:`Session` (``start()`` once, ``feed(bytes)`` for each chunk read,
``close()`` when the client goes, ``finished`` to ask for the connection to
be closed).  Any number of clients are served at once; a client that
disconnects, even in the middle of a message, only ends its own session.

Addresses use QEMU's chardev spelling: ``stdio``,
``unix:PATH[,server=on,wait=off]``, ``tcp:HOST:PORT[,server=on,wait=off]``.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import enum
import os
import select
import stat
import sys
import termios
from collections.abc import Callable
from typing import Any, BinaryIO, Protocol

import attrs


class Session(Protocol):
    """What a transport drives: one per client connection."""

    def start(self) -> None:
        """The client connected: send any greeting."""

    def feed(self, data: bytes) -> None:
        """Bytes arrived from the client."""

    def close(self) -> None:
        """The client is gone (or the server is closing)."""

    @property
    def finished(self) -> bool:
        """True when the session wants its connection closed."""
        ...


SessionFactory = Callable[[Callable[[bytes], None]], Session]


class RunState(enum.Enum):
    """The life of a :class:`MonitorServer`."""

    IDLE = "idle"
    RUNNING = "running"
    CLOSED = "closed"


@attrs.frozen
class Address:
    """A parsed chardev address.

    :ivar kind: ``unix``, ``tcp`` or ``stdio``.
    :ivar path: the socket path (``unix``).
    :ivar host: the host (``tcp``).
    :ivar port: the port (``tcp``).
    """

    kind: str
    path: str = ""
    host: str = ""
    port: int = 0


def parse_address(text: str) -> Address:
    """``stdio``, ``unix:PATH[,opts]`` or ``tcp:HOST:PORT[,opts]``.

    Options other than ``server`` and ``wait`` are refused; the server always
    listens and never waits for a client (``server=on,wait=off``).

    :raises ValueError: an address pyqom cannot serve.
    """
    if text == "stdio":
        return Address("stdio")
    head, _, options = text.partition(",")
    for option in filter(None, options.split(",")):
        key, _, value = option.partition("=")
        if key not in ("server", "wait", "nowait") or value not in ("", "on", "off"):
            raise ValueError(f"unsupported monitor option '{option}'")
    kind, _, rest = head.partition(":")
    if kind == "unix" and rest:
        return Address("unix", path=rest)
    if kind == "tcp" and rest:
        host, _, port = rest.rpartition(":")
        if not port.isdigit():
            raise ValueError(f"invalid port in '{text}'")
        return Address("tcp", host=host or "127.0.0.1", port=int(port))
    raise ValueError(f"unsupported monitor address '{text}'")


class _StreamProtocol(asyncio.Protocol):
    """One client connection: bytes in to the session, bytes out to the socket."""

    def __init__(self, server: MonitorServer) -> None:
        self._server = server
        self._transport: asyncio.Transport | None = None
        self._session: Session | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._session = self._server.factory(self._write)
        self._server.sessions.add(self._session)
        self._server.connections.add(self)
        self._session.start()

    def _write(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def data_received(self, data: bytes) -> None:
        assert self._session is not None
        if not self._session.finished:
            # After quit the connection stays up until the server closes it, as
            # QEMU keeps it until the process is gone; further input is ignored.
            self._session.feed(data)

    def eof_received(self) -> bool | None:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if self._session is not None:
            self._session.close()
            self._server.sessions.discard(self._session)
        self._server.connections.discard(self)
        self._transport = None

    def close(self) -> None:
        """Close the connection from the server side."""
        if self._transport is not None:
            self._transport.close()


class TerminalMode:
    """The stdio terminal's settings while a monitor reads it, and their restoring.

    QEMU's stdio chardev (``qemu_chr_set_echo_stdio``) turns a terminal's echo,
    canonical input, ``IEXTEN`` and the input translations (``ICRNL``, ``IXON``,
    ...) off, keeps ``ISIG`` (Ctrl-C still signals) and output processing,
    reads byte by byte (``VMIN`` 1, ``VTIME`` 0), and puts everything back at
    exit; an HMP monitor keeps that mode, a QMP monitor turns echo back on
    (the terminal stays as it was).  The file status flags (asyncio makes the
    descriptor non-blocking) are restored too, so the shell gets its terminal
    back as it left it, whichever way pyqom ends.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._saved: list[Any] | None = termios.tcgetattr(fd)
        self._saved_blocking = os.get_blocking(fd)
        atexit.register(self.restore)

    @staticmethod
    def raw(attributes: list[Any]) -> list[Any]:
        """QEMU's mode for a terminal a readline monitor reads (echo off)."""
        iflag, oflag, cflag, lflag, ispeed, ospeed, cc = attributes
        iflag &= ~(termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP
                   | termios.INLCR | termios.IGNCR | termios.ICRNL | termios.IXON)
        oflag |= termios.OPOST
        lflag &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.IEXTEN)
        cflag = (cflag & ~(termios.CSIZE | termios.PARENB)) | termios.CS8
        cc = list(cc)
        cc[termios.VMIN] = 1
        cc[termios.VTIME] = 0
        return [iflag, oflag, cflag, lflag, ispeed, ospeed, cc]

    def make_raw(self) -> None:
        assert self._saved is not None
        termios.tcsetattr(self.fd, termios.TCSANOW, self.raw(self._saved))

    def restore(self) -> None:
        """Put the terminal back as it was (once; later calls do nothing)."""
        if self._saved is None:
            return
        saved, self._saved = self._saved, None
        atexit.unregister(self.restore)
        with contextlib.suppress(OSError, termios.error):
            termios.tcsetattr(self.fd, termios.TCSANOW, saved)
        with contextlib.suppress(OSError):
            os.set_blocking(self.fd, self._saved_blocking)


def _write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd``, waiting while a non-blocking descriptor is full."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            select.select([], [fd], [])


class MonitorServer:
    """A listening monitor (or the stdio one) feeding sessions from ``factory``.

    :param address: where to listen (a string as for :func:`parse_address`).
    :param factory: makes the session of each client.
    :param raw_terminal: on a stdio terminal, switch echo and line editing off
        (a readline monitor echoes and edits itself, as QEMU's HMP does).
    """

    def __init__(self, address: str | Address, factory: SessionFactory, *,
                 raw_terminal: bool = False) -> None:
        self.address = parse_address(address) if isinstance(address, str) else address
        self.factory = factory
        self.raw_terminal = raw_terminal
        self.terminal: TerminalMode | None = None
        self.state = RunState.IDLE
        self.sessions: set[Session] = set()
        self.connections: set[_StreamProtocol] = set()
        self._server: asyncio.AbstractServer | None = None
        self._stdio_transport: asyncio.BaseTransport | None = None
        self._stdio_reader: asyncio.Task[None] | None = None

    def _require(self, state: RunState) -> None:
        if self.state is not state:
            raise RuntimeError(f"monitor server is {self.state.value}, not {state.value}")

    async def start(self, *, stdin: BinaryIO | None = None,
                    stdout: BinaryIO | None = None) -> None:
        """Listen (or attach to stdio); returns once clients can connect."""
        self._require(RunState.IDLE)
        loop = asyncio.get_running_loop()
        address = self.address
        if address.kind == "unix":
            with contextlib.suppress(FileNotFoundError):
                os.unlink(address.path)
            self._server = await loop.create_unix_server(
                lambda: _StreamProtocol(self), address.path)
        elif address.kind == "tcp":
            self._server = await loop.create_server(
                lambda: _StreamProtocol(self), address.host, address.port)
        else:
            await self._start_stdio(stdin or sys.stdin.buffer, stdout or sys.stdout.buffer)
        self.state = RunState.RUNNING

    async def _start_stdio(self, stdin: BinaryIO, stdout: BinaryIO) -> None:
        loop = asyncio.get_running_loop()

        if self.raw_terminal and _is_terminal(stdin):
            self.terminal = TerminalMode(stdin.fileno())
            self.terminal.make_raw()

        try:
            out_fd: int | None = stdout.fileno()
            stdout.flush()  # what was buffered before goes first
        except (OSError, ValueError):  # a stream without a descriptor (tests)
            out_fd = None

        def write(data: bytes) -> None:
            # Whole writes keep QEMU's ordering on a pipe or terminal; stdout may
            # share the terminal's open file with stdin, which asyncio makes
            # non-blocking.  A reader that went away (EPIPE, EIO) ends nothing.
            with contextlib.suppress(ValueError, OSError):
                if out_fd is None:
                    stdout.write(data)
                    stdout.flush()
                else:
                    _write_all(out_fd, data)

        session = self.factory(write)
        self.sessions.add(session)
        server = self

        class _Stdin(asyncio.Protocol):
            def data_received(self, data: bytes) -> None:
                session.feed(data)

            def eof_received(self) -> bool | None:
                return None

            def connection_lost(self, exc: Exception | None) -> None:
                session.close()
                server.sessions.discard(session)

        session.start()
        if _is_regular_file(stdin):
            # ``pyqom -qmp stdio < commands.json``: QEMU reads a file as it reads a
            # pipe, but asyncio's pipe transport refuses regular files.
            self._stdio_reader = loop.create_task(_feed_file(stdin, _Stdin()))
        else:
            self._stdio_transport, _ = await loop.connect_read_pipe(_Stdin, stdin)

    @property
    def sockname(self) -> str | tuple[str, int] | None:
        """The listening address (useful with TCP port 0)."""
        if self._server is None or not self._server.sockets:
            return None
        name = self._server.sockets[0].getsockname()
        return name if isinstance(name, str) else (name[0], name[1])

    async def clients_gone(self, timeout: float) -> None:
        """Wait (at most ``timeout`` seconds) for socket clients to hang up by themselves.

        After ``quit`` QEMU leaves connections open until the process is gone,
        so a client that disconnects right after the reply (qmp-shell, qemu.qmp)
        never sees its connection dropped under it.
        """
        deadline = asyncio.get_running_loop().time() + timeout
        while self.connections and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        """Stop listening and drop every client."""
        if self.state is RunState.CLOSED:
            return
        self.state = RunState.CLOSED
        for connection in list(self.connections):
            connection.close()
        for session in list(self.sessions):
            session.close()
        self.sessions.clear()
        if self._stdio_transport is not None:
            self._stdio_transport.close()
        if self._stdio_reader is not None:
            self._stdio_reader.cancel()
        if self.terminal is not None:
            self.terminal.restore()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1)
            if self.address.kind == "unix":
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.address.path)


def _is_terminal(stream: BinaryIO) -> bool:
    try:
        return os.isatty(stream.fileno())
    except (OSError, ValueError):
        return False


def _is_regular_file(stream: BinaryIO) -> bool:
    try:
        return stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
    except (OSError, ValueError):  # no file descriptor (io.UnsupportedOperation too)
        return False


async def _feed_file(stream: BinaryIO, protocol: asyncio.Protocol) -> None:
    """Feed a regular file to ``protocol`` chunk by chunk, then report end of input."""
    fd = stream.fileno()
    while chunk := os.read(fd, 65536):
        protocol.data_received(chunk)
        await asyncio.sleep(0)
    protocol.eof_received()
    protocol.connection_lost(None)
