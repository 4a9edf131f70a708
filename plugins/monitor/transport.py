"""Byte-stream servers for the monitors: unix sockets, TCP on loopback, stdio.

This module knows nothing of QMP or HMP.  A server is given a *session
factory*: for each client it calls ``factory(write)`` and gets a
:class:`Session` (``start()`` once, ``feed(bytes)`` for each chunk read,
``close()`` when the client goes, ``finished`` to ask for the connection to
be closed).  As in QEMU, a monitor serves one client at a time: the next one
waits in the listen queue until the current one leaves; a client that
disconnects, even in the middle of a message, only ends its own session.

Addresses use QEMU's chardev spelling (:mod:`.chardev`): ``stdio``, ``null``,
``unix:PATH[,server=on][,wait=off]``, ``tcp:HOST:PORT[,...]``, ``telnet:...``.
A server or client socket is opened by :meth:`MonitorServer.open` (at start-up,
before the machine, as QEMU opens its chardevs), then served by
:meth:`MonitorServer.start`.
"""

from __future__ import annotations

import atexit
import contextlib
import enum
import os
import select
import stat
import sys
import termios
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from plugins.monitor.chardev import (
    Chardev,
    bound_port,
    open_listener,
    parse_chardev,
    query_filename,
    wait_for_client,
)
from plugins.monitor.chardev import (
    connect as chardev_connect,
)
from plugins.monitor.loop import EventLoop, Timer

if TYPE_CHECKING:
    import socket


class Session(Protocol):
    """What a transport drives: one per client connection.

    A session with a ``peer_gone`` attribute gets, from a socket transport, a
    callable that says whether the client has hung up already (QMP drops the
    requests still queued then, as QEMU does).
    """

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


#: what QEMU's telnet server sends first: IAC WILL ECHO, WILL SGA, WILL BINARY, DO BINARY
TELNET_INIT = b"\xff\xfb\x01\xff\xfb\x03\xff\xfb\x00\xff\xfd\x00"


class TelnetFilter:
    """QEMU's ``tcp_chr_process_IAC_bytes``: telnet commands (IAC and the two bytes
    after it; IAC IAC is a literal 0xff; IAC BREAK is two bytes) are taken out."""

    def __init__(self) -> None:
        self._state = 1

    def feed(self, data: bytes) -> bytes:
        out = bytearray()
        for byte in data:
            if self._state > 1:
                if byte == 0xFF and self._state == 2:
                    out.append(byte)
                    self._state = 1
                    continue
                if byte == 243 and self._state == 2:   # IAC BREAK
                    self._state += 1
                self._state += 1
                if self._state >= 4:
                    self._state = 1
            elif byte == 0xFF:
                self._state = 2
            else:
                out.append(byte)
        return bytes(out)


class _Connection:
    """One client connection: bytes in to the session, bytes out to the socket.

    Output that the socket does not take at once is kept and sent as the socket
    drains; closing from the server side sends what is kept first, as QEMU
    does before it drops a client.
    """

    def __init__(self, server: MonitorServer, loop: EventLoop, sock: socket.socket) -> None:
        self._server = server
        self._loop = loop
        self._sock = sock
        #: the client's socket
        self.sock = sock
        self._fd = sock.fileno()
        self._out = bytearray()
        self._open = True        # reading, and writes are taken
        self._closing = False    # closing once the kept output is sent
        self._session: Session | None = None
        self._telnet = TelnetFilter() if server.chardev.telnet else None
        sock.setblocking(False)

    def start(self) -> None:
        """The client is there: greet it (telnet negotiation first) and read from it."""
        server = self._server
        if self._telnet is not None:
            self._write(TELNET_INIT)
        assert server.factory is not None  # start() checked
        self._session = server.factory(self._write)
        if hasattr(self._session, "peer_gone"):
            self._session.peer_gone = self._peer_gone
        server.sessions.add(self._session)
        server.connections.add(self)
        self._loop.add_reader(self._fd, self._readable)
        self._session.start()

    def _peer_gone(self) -> bool:
        """Whether the client has closed its end (a zero-length peek: EOF and no
        more data)."""
        if not self._open:
            return True
        import socket  # loaded already: this is a socket connection

        try:
            return self._sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True

    def _write(self, data: bytes) -> None:
        if not self._open or self._closing:
            return
        if not self._out:
            try:
                sent = self._sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:   # the client is gone (EPIPE, ECONNRESET)
                self._lost()
                return
            data = data[sent:]
            if not data:
                return
            self._loop.add_writer(self._fd, self._writable)
        self._out += data

    def _writable(self) -> None:
        try:
            sent = self._sock.send(self._out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._lost()
            return
        del self._out[:sent]
        if not self._out:
            self._loop.remove_writer(self._fd)
            if self._closing:
                self._lost()

    def _readable(self) -> None:
        try:
            data = self._sock.recv(262144)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._lost()
            return
        if not data:     # the client closed its end: close ours too
            self.close()
            return
        assert self._session is not None
        if self._telnet is not None:
            data = self._telnet.feed(data)
        if not self._session.finished:
            # After quit the connection stays up until the server closes it, as
            # QEMU keeps it until the process is gone; further input is ignored.
            self._session.feed(data)

    def close(self) -> None:
        """Close the connection from the server side, once the kept output is sent."""
        if not self._open or self._closing:
            return
        self._closing = True
        self._loop.remove_reader(self._fd)
        if not self._out:
            self._lost()

    def flush_and_close(self, timeout: float) -> None:
        """The server is closing: send the kept output (``timeout`` seconds at most),
        then close."""
        if self._open and self._out:
            with contextlib.suppress(OSError):
                self._sock.settimeout(timeout)
                self._sock.sendall(self._out)
            self._out.clear()
        self._lost(serve_next=False)

    def _lost(self, *, serve_next: bool = True) -> None:
        """The connection ends: the session is told, the socket closed, and the
        next client (waiting in the listen queue) is served."""
        if not self._open:
            return
        self._open = False
        self._loop.remove_reader(self._fd)
        self._loop.remove_writer(self._fd)
        self._sock.close()
        if self._session is not None:
            self._session.close()
            self._server.sessions.discard(self._session)
        self._server.connections.discard(self)
        if serve_next:
            self._server._serve_next()


class TerminalMode:
    """The stdio terminal's settings while a monitor reads it, and their restoring.

    QEMU's stdio chardev (``qemu_chr_set_echo_stdio``) turns a terminal's echo,
    canonical input, ``IEXTEN`` and the input translations (``ICRNL``, ``IXON``,
    ...) off, keeps ``ISIG`` (Ctrl-C still signals) and output processing,
    reads byte by byte (``VMIN`` 1, ``VTIME`` 0), and puts everything back at
    exit; an HMP monitor keeps that mode, a QMP monitor turns echo back on
    (the terminal stays as it was).  The file status flags (the event loop makes
    the descriptor non-blocking) are restored too, so the shell gets its terminal
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
    """A monitor on one chardev (a socket server or client, stdio, or null), feeding
    sessions from ``factory``.

    :param address: the chardev (a string is parsed as for ``-qmp``, or as for
        ``-monitor`` with ``hmp``).
    :param factory: makes the session of each client (may be set later, before
        :meth:`start`).
    :param raw_terminal: on a stdio terminal, switch echo and line editing off
        (a readline monitor echoes and edits itself, as QEMU's HMP does).
    :raises ChardevError: a spec QEMU refuses.
    """

    def __init__(self, address: str | Chardev, factory: SessionFactory | None, *,
                 raw_terminal: bool = False, hmp: bool = False) -> None:
        self.chardev = parse_chardev(address, hmp=hmp) if isinstance(address, str) else address
        #: the chardev's id (``query-chardev``): ``-mon``'s chardev, or QEMU's
        #: ``compat_monitorN`` for ``-qmp``/``-monitor`` (set by whoever numbers them)
        self.label = "compat_monitor0"
        self.factory = factory
        self.raw_terminal = raw_terminal
        self.terminal: TerminalMode | None = None
        self.state = RunState.IDLE
        self.sessions: set[Session] = set()
        self.connections: set[_Connection] = set()
        self._listener: socket.socket | None = None
        self._connected: socket.socket | None = None   # a client that is there already
        self._opened = False
        self._loop: EventLoop | None = None
        self._stdio_fd: int | None = None       # stdin, read through the loop
        self._stdio_blocking: bool | None = None
        self._file_reader: Timer | None = None  # stdin as a plain file, chunk by chunk

    def _require(self, state: RunState) -> None:
        if self.state is not state:
            raise RuntimeError(f"monitor server is {self.state.value}, not {state.value}")

    def open(self, info: Callable[[str], None] | None = None) -> None:
        """Bind and listen, or connect out; with ``wait=on``, wait for the first client.

        :param info: where the "waiting for connection" line goes (stderr).
        :raises ChardevError: QEMU's message (bind, resolution, connection).
        """
        if self._opened:
            return
        self._opened = True
        chardev = self.chardev
        if not chardev.is_socket:
            return
        if not chardev.server:
            self._connected = chardev_connect(chardev)
            return
        self._listener = open_listener(chardev)
        if chardev.wait:
            self._connected = wait_for_client(
                self._listener, bound_port(chardev, self._listener),
                info or _to_stderr)

    def start(self, loop: EventLoop, *, stdin: BinaryIO | None = None,
              stdout: BinaryIO | None = None) -> None:
        """Serve on ``loop`` (opening first if :meth:`open` was not called); clients
        can connect once this returns."""
        self._require(RunState.IDLE)
        if self.factory is None:
            raise RuntimeError("monitor server started without a session factory")
        self.open()
        self._loop = loop
        self.state = RunState.RUNNING
        if self.chardev.kind == "stdio":
            self._start_stdio(loop, stdin or sys.stdin.buffer, stdout or sys.stdout.buffer)
        elif self.chardev.is_socket:
            if self._listener is not None:
                self._listener.setblocking(False)
            self._serve_next()

    def _serve_next(self) -> None:
        """One client at a time: the one there already, else wait for the next."""
        loop = self._loop
        if self.state is not RunState.RUNNING or loop is None:
            return
        sock, self._connected = self._connected, None
        if sock is not None:
            _Connection(self, loop, sock).start()
        elif self._listener is not None:
            loop.add_reader(self._listener.fileno(), self._accept)
        # else a client chardev whose peer left: QEMU carries on without it

    def _accept(self) -> None:
        assert self._listener is not None and self._loop is not None
        try:
            sock, _ = self._listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        # The next client waits in the listen queue until this one leaves.
        self._loop.remove_reader(self._listener.fileno())
        _Connection(self, self._loop, sock).start()

    def _start_stdio(self, loop: EventLoop, stdin: BinaryIO, stdout: BinaryIO) -> None:
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
            # share the terminal's open file with stdin, which is non-blocking
            # while the loop reads it.  A reader that went away (EPIPE, EIO) ends
            # nothing.
            with contextlib.suppress(ValueError, OSError):
                if out_fd is None:
                    stdout.write(data)
                    stdout.flush()
                else:
                    _write_all(out_fd, data)

        assert self.factory is not None
        session = self.factory(write)
        self.sessions.add(session)
        session.start()
        fd = stdin.fileno()
        if _is_plain_file(stdin):
            # ``pyqom -qmp stdio < commands.json`` (or ``< /dev/null``): QEMU reads a
            # file as it reads a pipe; epoll refuses regular files and /dev/null, so
            # they are read chunk by chunk, one chunk per pass of the loop.
            def read_chunk() -> None:
                self._file_reader = None
                chunk = os.read(fd, 65536)
                if chunk and self.state is RunState.RUNNING:
                    session.feed(chunk)
                    self._file_reader = loop.call_later(0, read_chunk)

            self._file_reader = loop.call_later(0, read_chunk)
            return

        def readable() -> None:
            try:
                data = os.read(fd, 262144)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:   # EIO: the terminal is gone
                data = b""
            if not data:
                # The end of stdin ends nothing else: as with QEMU, the monitor's
                # output (events, SHUTDOWN) goes on until the process ends, and
                # the session is closed with the server.
                loop.remove_reader(fd)
                return
            session.feed(data)

        self._stdio_fd = fd
        self._stdio_blocking = os.get_blocking(fd)
        os.set_blocking(fd, False)
        loop.add_reader(fd, readable)

    def query_chardev(self) -> dict[str, Any]:
        """This monitor's ``query-chardev`` entry (``label`` as :attr:`label`)."""
        if self.chardev.is_socket:
            current = next(iter(self.connections), None)
            filename = query_filename(self.chardev, current.sock if current else None,
                                      self._listener)
        else:
            filename = self.chardev.kind
        return {"frontend-open": True, "filename": filename, "label": self.label}

    @property
    def sockname(self) -> str | tuple[str, int] | None:
        """The listening address (useful with TCP port 0)."""
        if self._listener is None:
            return None
        name = self._listener.getsockname()
        return name if isinstance(name, str) else (name[0], name[1])

    def close(self) -> None:
        """Stop listening and drop every client (what was still to send goes first)."""
        if self.state is RunState.CLOSED:
            return
        self.state = RunState.CLOSED
        loop = self._loop
        if loop is not None and self._listener is not None:
            loop.remove_reader(self._listener.fileno())
        for connection in list(self.connections):
            connection.flush_and_close(0.5)
        for session in list(self.sessions):
            session.close()
        self.sessions.clear()
        if self._stdio_fd is not None:
            if loop is not None:
                loop.remove_reader(self._stdio_fd)
            with contextlib.suppress(OSError):
                if self._stdio_blocking is not None:
                    os.set_blocking(self._stdio_fd, self._stdio_blocking)
            self._stdio_fd = None
        if self._file_reader is not None:
            self._file_reader.cancel()
        if self.terminal is not None:
            self.terminal.restore()
        self.close_sockets()

    def close_sockets(self) -> None:
        """Close what :meth:`open` opened (also when start-up fails before serving)."""
        if self._connected is not None:
            self._connected.close()
            self._connected = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
            if self.chardev.kind == "unix":
                with contextlib.suppress(OSError):
                    if stat.S_ISSOCK(os.lstat(self.chardev.path).st_mode):
                        os.unlink(self.chardev.path)


def _to_stderr(text: str) -> None:
    sys.stderr.write(text + "\n")


def _is_terminal(stream: BinaryIO) -> bool:
    try:
        return os.isatty(stream.fileno())
    except (OSError, ValueError):
        return False


def _is_plain_file(stream: BinaryIO) -> bool:
    """A regular file, or a device that is not a terminal: read it with plain reads."""
    try:
        fd = stream.fileno()
        mode = os.fstat(fd).st_mode
    except (OSError, ValueError):  # no file descriptor (io.UnsupportedOperation too)
        return False
    return stat.S_ISREG(mode) or (stat.S_ISCHR(mode) and not os.isatty(fd))
