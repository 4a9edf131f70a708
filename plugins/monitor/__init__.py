"""Built-in monitors: QMP and HMP over unix sockets, TCP and stdio.

Entry points for the command line::

    control = VmControl(vm, paused=True)           # -S: status "prelaunch"
    await serve_qmp(control, "unix:/tmp/q.sock,server=on,wait=off")
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

from plugins.monitor.commands import (
    Arg,
    Command,
    CommandTable,
    HmpCommand,
    MonitorError,
    VmControl,
)
from plugins.monitor.hmp import HmpConnection, HmpSession
from plugins.monitor.qmp import QmpSession
from plugins.monitor.transport import MonitorServer, parse_address

if TYPE_CHECKING:
    from plugins.vm import VM

__all__ = [
    "Arg", "Command", "CommandTable", "HmpCommand", "HmpConnection", "HmpSession",
    "MonitorError", "MonitorServer", "QmpSession", "VmControl", "control_quit",
    "parse_address", "run_monitors", "serve_hmp", "serve_qmp",
]


async def serve_qmp(control: VmControl, address: str, *, stdin: BinaryIO | None = None,
                    stdout: BinaryIO | None = None) -> MonitorServer:
    """Start a QMP monitor on ``address`` (``stdio``, ``unix:PATH``, ``tcp:HOST:PORT``).

    :raises ValueError: an address pyqom cannot serve.
    :raises OSError: the socket cannot be bound.
    """
    server = MonitorServer(address, lambda write: QmpSession(control, write))
    await server.start(stdin=stdin, stdout=stdout)
    return server


async def serve_hmp(control: VmControl, address: str, *, stdin: BinaryIO | None = None,
                    stdout: BinaryIO | None = None,
                    stderr: Callable[[str], Any] | None = None,
                    prog: str = "pyqom") -> MonitorServer:
    """Start an HMP monitor on ``address``; ``stderr`` gets what QEMU prints there."""
    server = MonitorServer(
        address, lambda write: HmpConnection(control, write, stderr=stderr, prog=prog),
        raw_terminal=True)
    await server.start(stdin=stdin, stdout=stdout)
    return server


async def control_quit(control: VmControl) -> None:
    """Wait until a monitor's ``quit`` has been answered."""
    done = asyncio.get_running_loop().create_future()
    control.on_quit(lambda: done.done() or done.set_result(None))
    await done


async def run_monitors(vm: VM, *, qmp: Iterable[str] = (), hmp: Iterable[str] = (),
                       paused: bool = True, prog: str = "pyqom") -> int:
    """Serve every monitor of ``vm`` until ``quit``; close them; return the exit status (0).

    The VM itself is left to the caller to close.
    """
    control = VmControl(vm, paused=paused)
    servers: list[MonitorServer] = []
    try:
        for address in qmp:
            servers.append(await serve_qmp(control, address))
        for address in hmp:
            servers.append(await serve_hmp(control, address, prog=prog,
                                           stderr=sys.stderr.write))
        await control_quit(control)
        await asyncio.gather(*(server.clients_gone(0.5) for server in servers))
    finally:
        for server in servers:
            await server.close()
        control.close()
    return 0
