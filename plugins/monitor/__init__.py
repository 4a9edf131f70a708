"""Built-in monitors: QMP and HMP over unix sockets, TCP and stdio.

Entry points for the command line::

    loop = EventLoop()
    control = VmControl(vm, paused=True)           # -S: status "prelaunch"
    serve_qmp(control, loop, "unix:/tmp/q.sock,server=on,wait=off")  # opens and serves
    serve_hmp(control, loop, "stdio")
    wait_for_quit(control, loop)                   # runs the loop until ``quit``

or all at once: ``run_monitors(vm, qmp=[...], hmp=[...], paused=True)``.
Modules: :mod:`.commands` (the command table and :class:`VmControl`),
:mod:`.qmp` (the protocol), :mod:`.hmp` (the human monitor),
:mod:`.transport` (the servers), :mod:`.loop` (the event loop they share),
:mod:`.qjson` (QEMU's JSON).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, BinaryIO

from plugins.commands import Arg, Command, CommandTable, HmpCommand, MonitorError
from plugins.monitor.chardev import Chardev, ChardevError, parse_chardev
from plugins.monitor.control import VmControl
from plugins.monitor.loop import EventLoop
from plugins.monitor.qmp import QmpSession
from plugins.monitor.transport import MonitorServer

if TYPE_CHECKING:
    from plugins.monitor.control import VM
    from plugins.monitor.hmp import HmpConnection, HmpSession
    from plugins.monitor.record import Recorder

__all__ = [
    "Arg", "Command", "CommandTable", "HmpCommand", "HmpConnection", "HmpSession",
    "Chardev", "ChardevError", "EventLoop", "MonitorError", "MonitorServer", "Monitors",
    "QmpSession", "VmControl",
    "hmp_server", "parse_chardev", "qmp_server", "run_monitors", "serve_hmp", "serve_qmp",
    "wait_for_quit",
]


def __getattr__(name: str) -> Any:
    # The human monitor (with readline and the help texts) is imported on first use.
    if name in ("HmpConnection", "HmpSession"):
        from plugins.monitor import hmp

        return getattr(hmp, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def qmp_server(address: str | Chardev) -> MonitorServer:
    """A QMP monitor on ``address``, not opened yet (sessions come at :meth:`start`).

    :raises ChardevError: a spec QEMU refuses.
    """
    return MonitorServer(address, None)


def hmp_server(address: str | Chardev) -> MonitorServer:
    """An HMP monitor on ``address``, not opened yet.

    :raises ChardevError: a spec QEMU refuses.
    """
    return MonitorServer(address, None, raw_terminal=True, hmp=True)


def _attach(server: MonitorServer, control: VmControl, *, hmp: bool,
            stderr: Callable[[str], Any] | None = None, prog: str = "pyqom") -> None:
    if hmp:
        from plugins.monitor.hmp import HmpConnection

        server.factory = lambda write: HmpConnection(control, write, stderr=stderr, prog=prog)
    else:
        server.factory = lambda write: QmpSession(control, write)


def serve_qmp(control: VmControl, loop: EventLoop, address: str, *,
              stdin: BinaryIO | None = None,
              stdout: BinaryIO | None = None) -> MonitorServer:
    """Open a QMP monitor on ``address`` (``stdio``, ``unix:PATH,...``,
    ``tcp:HOST:PORT,...``) and serve it on ``loop`` (run the loop to serve).

    :raises ChardevError: QEMU's message for a spec or a socket it cannot use.
    """
    server = qmp_server(address)
    _attach(server, control, hmp=False)
    server.start(loop, stdin=stdin, stdout=stdout)
    return server


def serve_hmp(control: VmControl, loop: EventLoop, address: str, *,
              stdin: BinaryIO | None = None, stdout: BinaryIO | None = None,
              stderr: Callable[[str], Any] | None = None,
              prog: str = "pyqom") -> MonitorServer:
    """Open an HMP monitor on ``address`` and serve it on ``loop``; ``stderr`` gets
    what QEMU prints there."""
    server = hmp_server(address)
    _attach(server, control, hmp=True, stderr=stderr, prog=prog)
    server.start(loop, stdin=stdin, stdout=stdout)
    return server


def wait_for_quit(control: VmControl, loop: EventLoop,
                  timeout: float | None = None) -> bool:
    """Run ``loop`` until a monitor's ``quit`` has been answered (or ``timeout``
    seconds); whether it was."""
    answered: list[bool] = []
    control.on_quit(lambda: answered.append(True))
    return loop.run_until(lambda: bool(answered), timeout)


class Monitors:
    """The monitors of one running VM: start them, wait for ``quit``, or shut them
    down (a signal), and close them, on one :class:`EventLoop`.

    :param opened: ``(server, is_hmp)`` pairs, in command-line order, as
        :func:`qmp_server`/:func:`hmp_server` made them (opened or not).
    """

    def __init__(self, vm: VM, opened: Iterable[tuple[MonitorServer, bool]], *,
                 loop: EventLoop, paused: bool | None = True, prog: str = "pyqom",
                 recorder: Recorder | None = None) -> None:
        self.control = VmControl(vm, paused=paused)
        #: ``-x-record``: every QMP session is recorded (a pyqom addition)
        self.recorder = recorder
        self.servers = list(opened)
        self.control.monitor_chardevs = [server.query_chardev for server, _ in self.servers]
        self.loop = loop
        self.prog = prog
        #: ``quit`` was answered (or the VM was shut down)
        self.quit_done = False

    def start(self) -> None:
        """Give every monitor its sessions and start serving (run :attr:`loop` to serve)."""
        # Commands run on their own thread, one at a time: a long one leaves the
        # event loop free (greetings, echo, input, signals); others wait their turn.
        self.control.use_command_thread(self.loop)
        # Watching for quit starts first: a quit read while the monitors start
        # (a piped stdin) must not be missed.
        self.control.on_quit(self._quit_answered)
        qmp_index = 0
        for server, is_hmp in self.servers:
            _attach(server, self.control, hmp=is_hmp, stderr=sys.stderr.write, prog=self.prog)
            if self.recorder is not None and not is_hmp and server.factory is not None:
                server.factory = self.recorder.wrap(server.factory, qmp_index)
            qmp_index += not is_hmp
            server.start(self.loop)

    def _quit_answered(self) -> None:
        self.quit_done = True

    def shutdown(self, reason: str, *, guest: bool = False) -> None:
        """End without ``quit``: negotiated QMP clients get QEMU's SHUTDOWN event."""
        self.control.shutdown(reason, guest=guest)

    def close(self, *, linger: bool = True) -> None:
        """Let socket clients hang up by themselves (0.5 s at most: after ``quit``
        QEMU leaves connections open until the process is gone, so a client that
        disconnects right after the reply never sees its connection dropped under
        it), then close every monitor.  ``linger=False`` closes them at once (the
        guest ended the process, as QEMU's ``exit`` would)."""
        try:
            self.loop.run_pending()   # events raised meanwhile (SHUTDOWN) go out first
            if linger:
                self.loop.run_until(
                    lambda: not any(server.connections for server, _ in self.servers), 0.5)
        finally:
            for server, _ in self.servers:
                server.close()
            self.control.close()
            if self.recorder is not None:
                self.recorder.close()


def run_monitors(vm: VM, *, qmp: Iterable[str] = (), hmp: Iterable[str] = (),
                 paused: bool | None = True, prog: str = "pyqom") -> int:
    """Open and serve QMP and HMP monitors of ``vm`` until ``quit``; close them;
    return the exit status (0).  The VM itself is left to the caller to close.
    """
    servers = [(qmp_server(address), False) for address in qmp]
    servers += [(hmp_server(address), True) for address in hmp]
    loop = EventLoop()
    monitors = Monitors(vm, servers, loop=loop, paused=paused, prog=prog)
    try:
        monitors.start()
        loop.run_until(lambda: monitors.quit_done)
    finally:
        monitors.close()
        loop.close()
    return 0
