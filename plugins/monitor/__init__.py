"""Built-in monitors: QMP and HMP over unix sockets, TCP and stdio.

Entry points for the command line::

    control = VmControl(vm, paused=True)           # -S: status "prelaunch"
    await serve_qmp(control, "unix:/tmp/q.sock,server=on,wait=off")  # opens and serves
    await serve_hmp(control, "stdio")
    await control_quit(control)                   # returns after ``quit``

or all at once: ``await run_monitors(vm, qmp=[...], hmp=[...], paused=True)``.
Modules: :mod:`.commands` (the command table and :class:`VmControl`),
:mod:`.qmp` (the protocol), :mod:`.hmp` (the human monitor),
:mod:`.transport` (the servers), :mod:`.qjson` (QEMU's JSON).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, BinaryIO

from plugins.commands import Arg, Command, CommandTable, HmpCommand, MonitorError
from plugins.monitor.chardev import Chardev, ChardevError, parse_chardev
from plugins.monitor.control import VmControl
from plugins.monitor.qmp import QmpSession
from plugins.monitor.transport import MonitorServer

if TYPE_CHECKING:
    from plugins.monitor.control import VM
    from plugins.monitor.hmp import HmpConnection, HmpSession

__all__ = [
    "Arg", "Command", "CommandTable", "HmpCommand", "HmpConnection", "HmpSession",
    "Chardev", "ChardevError", "MonitorError", "MonitorServer", "Monitors", "QmpSession",
    "VmControl",
    "control_quit", "hmp_server", "parse_chardev", "qmp_server", "run_monitors", "serve_hmp",
    "serve_qmp",
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


async def serve_qmp(control: VmControl, address: str, *, stdin: BinaryIO | None = None,
                    stdout: BinaryIO | None = None) -> MonitorServer:
    """Open and start a QMP monitor on ``address`` (``stdio``, ``unix:PATH,...``,
    ``tcp:HOST:PORT,...``).

    :raises ChardevError: QEMU's message for a spec or a socket it cannot use.
    """
    server = qmp_server(address)
    _attach(server, control, hmp=False)
    await server.start(stdin=stdin, stdout=stdout)
    return server


async def serve_hmp(control: VmControl, address: str, *, stdin: BinaryIO | None = None,
                    stdout: BinaryIO | None = None,
                    stderr: Callable[[str], Any] | None = None,
                    prog: str = "pyqom") -> MonitorServer:
    """Open and start an HMP monitor on ``address``; ``stderr`` gets what QEMU prints there."""
    server = hmp_server(address)
    _attach(server, control, hmp=True, stderr=stderr, prog=prog)
    await server.start(stdin=stdin, stdout=stdout)
    return server


async def control_quit(control: VmControl) -> None:
    """Wait until a monitor's ``quit`` has been answered."""
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def finished() -> None:
        if not done.done():
            done.set_result(None)

    control.on_quit(finished)
    await done


class Monitors:
    """The monitors of one running VM: start them, wait for ``quit``, or shut them
    down (a signal), and close them.

    :param opened: ``(server, is_hmp)`` pairs, in command-line order, as
        :func:`qmp_server`/:func:`hmp_server` made them (opened or not).
    """

    def __init__(self, vm: VM, opened: Iterable[tuple[MonitorServer, bool]], *,
                 paused: bool | None = True, prog: str = "pyqom") -> None:
        self.control = VmControl(vm, paused=paused)
        self.servers = list(opened)
        self.prog = prog
        self._quit: asyncio.Future[None] | None = None

    async def start(self) -> None:
        """Give every monitor its sessions and start serving."""
        # Commands run on their own thread, one at a time: a long one leaves the
        # event loop free (greetings, echo, input, signals); others wait their turn.
        self.control.use_command_thread(asyncio.get_running_loop())
        # Waiting for quit starts first: a quit read while the monitors start
        # (a piped stdin) must not be missed.
        self._quit = asyncio.ensure_future(control_quit(self.control))
        await asyncio.sleep(0)
        for server, is_hmp in self.servers:
            _attach(server, self.control, hmp=is_hmp, stderr=sys.stderr.write, prog=self.prog)
            await server.start()

    async def quit(self) -> None:
        """Wait until ``quit`` was answered (call :meth:`start` first)."""
        assert self._quit is not None, "start() first"
        await asyncio.shield(self._quit)

    def shutdown(self, reason: str) -> None:
        """End without ``quit``: negotiated QMP clients get QEMU's SHUTDOWN event."""
        self.control.shutdown(reason)

    async def close(self) -> None:
        """Let clients hang up by themselves (0.5 s at most, as after QEMU's quit),
        then close every monitor."""
        try:
            await asyncio.gather(*(server.clients_gone(0.5) for server, _ in self.servers))
        finally:
            if self._quit is not None:
                self._quit.cancel()
            for server, _ in self.servers:
                await server.close()
            self.control.close()


async def run_monitors(vm: VM, *, qmp: Iterable[str] = (), hmp: Iterable[str] = (),
                       paused: bool | None = True, prog: str = "pyqom") -> int:
    """Open and serve QMP and HMP monitors of ``vm`` until ``quit``; close them;
    return the exit status (0).  The VM itself is left to the caller to close.
    """
    servers = [(qmp_server(address), False) for address in qmp]
    servers += [(hmp_server(address), True) for address in hmp]
    monitors = Monitors(vm, servers, paused=paused, prog=prog)
    try:
        await monitors.start()
        await monitors.quit()
    finally:
        await monitors.close()
    return 0
