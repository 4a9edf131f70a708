"""One VM as its monitors share it: run state, events, quit, and the command thread.

:class:`VmControl` is what every QMP and HMP session of one VM talks to; the
commands themselves are in :mod:`plugins.monitor.commands`.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

import qom
from plugins import hookimpl
from plugins.monitor.commands import build_command_table
from plugins.monitor.loop import EventLoop, Outcome
from plugins.monitor.memdump import DumpFormat

if TYPE_CHECKING:
    import pluggy

    from devices.machine import PcMachine


class VM(Protocol):
    """The VM the monitors serve (``pyqom.VM`` is one): its plugin manager, tree
    and machine.  A protocol, so the monitors never import the composition root."""

    @property
    def pm(self) -> pluggy.PluginManager: ...

    @property
    def tree(self) -> qom.ObjectTree: ...

    @property
    def machine(self) -> PcMachine: ...

    #: the run state (``prelaunch``, ``running``, ``paused``), owned by the VM
    status: str
    #: why the VM ends (QEMU's ShutdownCause), what ``qom_machine_shutdown`` is told
    shutdown_reason: str

EventListener = Callable[[dict[str, Any]], None]


class _EventRelay:
    """A plugin instance forwarding the tree's events to one :class:`VmControl`."""

    def __init__(self, control: VmControl) -> None:
        self._control = control

    @hookimpl
    def qom_event(self, tree: qom.ObjectTree, name: str, data: dict[str, Any]) -> None:
        """Forward events of this VM's tree to the monitors (and to a command that
        waits for one, on the thread that raised it)."""
        if tree is self._control.vm.tree:
            self._control.observe(name, data)
            self._control.emit(name, data)


class CommandThread:
    """The one thread that runs monitor commands, so that a long one (a big
    preallocation) leaves the event loop free: greetings, echo, other clients'
    input and signals go on, and commands wait their turn in order.

    A daemon thread (a command still running when pyqom ends does not hold the
    exit up); results come back on the event loop.  Each command runs holding
    ``lock``, the machine lock, which a guest's port accesses on the CPU
    thread hold too.
    """

    def __init__(self, loop: EventLoop, lock: AbstractContextManager[Any] | None = None) -> None:
        self.loop = loop
        self._lock = lock if lock is not None else contextlib.nullcontext()
        self._queue: queue.SimpleQueue[tuple[Callable[[], Any], Outcome[Any]] | None] = (
            queue.SimpleQueue())
        self._thread = threading.Thread(target=self._work, name="pyqom-commands", daemon=True)
        self._thread.start()

    def on_thread(self) -> bool:
        """Whether the caller is this thread (a command running)."""
        return threading.current_thread() is self._thread

    def run(self, work: Callable[[], Any]) -> Outcome[Any]:
        """Run ``work`` after the commands queued before it; its result or error,
        settled on the event loop."""
        future: Outcome[Any] = Outcome()
        self._queue.put((work, future))
        return future

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            work, future = item
            try:
                with self._lock:
                    result = work()
            except BaseException as err:  # handed to the awaiting session
                self._deliver(future, None, err)
            else:
                self._deliver(future, result, None)

    def _deliver(self, future: Outcome[Any], result: Any,
                 error: BaseException | None) -> None:
        def settle() -> None:
            if future.done():
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)

        with contextlib.suppress(RuntimeError):  # the loop is closed: pyqom is ending
            self.loop.call_soon_threadsafe(settle)

    def close(self) -> None:
        """Let the thread end once the queued commands are done."""
        self._queue.put(None)


class VmControl:
    """One VM as its monitors share it: run state, events, quit, and the command table.

    Commands run where the session calls them, or, once :meth:`use_command_thread`
    was called, on that thread; events raised there reach the listeners on the
    event loop, in order, before the reply of the command that raised them.

    :param vm: the machine.
    :param paused: started with ``-S`` (status ``prelaunch``), else running; ``None``
        keeps the VM's own status.  The run state lives on the VM (``vm.status``),
        so every monitor of one VM, and the VM's own API, see the same one.
    :param clock: seconds since the epoch, for event timestamps.
    """

    def __init__(self, vm: VM, *, paused: bool | None = True,
                 clock: Callable[[], float] = time.time) -> None:
        self.vm = vm
        if paused is not None:
            vm.status = "prelaunch" if paused else "running"
        self.clock = clock
        self.quit_requested = False
        self._listeners: list[EventListener] = []
        self._waiters: list[Callable[[str, dict[str, Any]], None]] = []
        self._quit_callbacks: list[Callable[[], None]] = []
        self._relay = _EventRelay(self)
        vm.pm.register(self._relay)
        self.commands = build_command_table(vm)
        self.command_thread: CommandThread | None = None
        #: the ``query-chardev`` entries of the monitors this control serves, one
        #: callable per monitor (set by :class:`plugins.monitor.Monitors`)
        self.monitor_chardevs: list[Callable[[], dict[str, Any]]] = []
        #: the last ``x``/``xp`` format and size (QEMU keeps them for the process)
        self.dump_format = DumpFormat()

    def observe(self, name: str, data: dict[str, Any]) -> None:
        """Offer an event to the waiting commands (:meth:`wait_for_event`)."""
        for waiter in list(self._waiters):
            waiter(name, data)

    def wait_for_event(self, settles: Callable[[str, dict[str, Any]], Any],
                       start: Callable[[], None], timeout: float) -> Any:
        """Run ``start`` (a ``device_del``), then wait until ``settles(name, data)``
        returns something for an event raised by then; that, or ``None`` after
        ``timeout`` seconds.  The machine lock is let go while waiting, so the
        guest (the CPU thread) can act: an eject needs it."""
        lock = self.vm.tree.lock
        settled = threading.Condition(lock)
        found: list[Any] = []

        def waiter(name: str, data: dict[str, Any]) -> None:
            if not found and (outcome := settles(name, data)) is not None:
                with settled:
                    found.append(outcome)
                    settled.notify_all()

        self._waiters.append(waiter)
        try:
            start()
            with settled:
                settled.wait_for(lambda: bool(found), timeout)
        finally:
            self._waiters.remove(waiter)
        return found[0] if found else None

    def use_command_thread(self, loop: EventLoop) -> None:
        """Run commands on a :class:`CommandThread` from now on (the ``pyqom`` process)."""
        if self.command_thread is None:
            self.command_thread = CommandThread(loop, self.vm.tree.lock)

    @property
    def status(self) -> str:
        """QEMU's run state: ``prelaunch``, ``running`` or ``paused`` (the VM's)."""
        return self.vm.status

    @status.setter
    def status(self, value: str) -> None:
        self.vm.status = value

    @property
    def running(self) -> bool:
        return self.status == "running"

    # -- events ------------------------------------------------------------

    def add_listener(self, listener: EventListener) -> None:
        """Call ``listener`` with every event (a dict with timestamp, event, data)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: EventListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def emit(self, name: str, data: dict[str, Any] | None = None) -> None:
        """Send event ``name`` to every listener, with QEMU's timestamp."""
        now = self.clock()
        seconds = int(now)
        event: dict[str, Any] = {
            "event": name,
            "timestamp": {"seconds": seconds, "microseconds": int((now - seconds) * 1e6)},
        }
        if data is not None:
            event["data"] = data
        thread = self.command_thread
        if thread is not None and not thread.loop.running_here:
            # Listeners write to transports, which belong to the event loop: an
            # event raised on the command thread or the CPU thread goes there,
            # in order (before the reply of a command that raised it).
            with contextlib.suppress(RuntimeError):   # the loop is closed: pyqom ends
                thread.loop.call_soon_threadsafe(self._dispatch, event)
        else:
            self._dispatch(event)

    def _dispatch(self, event: dict[str, Any]) -> None:
        for listener in list(self._listeners):
            listener(event)

    # -- quit ----------------------------------------------------------------

    def on_quit(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once ``quit`` has been answered."""
        self._quit_callbacks.append(callback)

    def request_quit(self) -> None:
        """``quit``: the SHUTDOWN event now; the callbacks run after the reply."""
        if not self.quit_requested:
            self.quit_requested = True
            self.vm.shutdown_reason = "host-qmp-quit"
            self.emit("SHUTDOWN", {"guest": False, "reason": "host-qmp-quit"})

    def shutdown(self, reason: str, *, guest: bool = False) -> None:
        """The process ends for another reason (``host-signal``, or the guest's
        ``guest-shutdown``): SHUTDOWN, then the quit callbacks, as for ``quit``
        but with no reply to wait for."""
        if not self.quit_requested:
            self.quit_requested = True
            self.vm.shutdown_reason = reason
            self.emit("SHUTDOWN", {"guest": guest, "reason": reason})
        self.finish_quit()

    def finish_quit(self) -> None:
        """Run the quit callbacks (the transports call this once the reply is out)."""
        callbacks, self._quit_callbacks = self._quit_callbacks, []
        for callback in callbacks:
            callback()

    def close(self) -> None:
        """Stop receiving the VM's events (and end the command thread)."""
        if self.command_thread is not None:
            self.command_thread.close()
        if self.vm.pm.is_registered(self._relay):
            self.vm.pm.unregister(self._relay)

    def execute(self, name: str, arguments: Mapping[str, Any] | None = None) -> Any:
        """Run a QMP command (see :meth:`CommandTable.execute`)."""
        return self.commands.execute(self, name, arguments)


