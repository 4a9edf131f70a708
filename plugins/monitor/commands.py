"""The monitor command table: QMP commands as plain functions over a VM, and HMP commands.

A :class:`CommandTable` is made per VM by :func:`build_command_table`: the
built-in commands first, then whatever plugins add through the
``qom_register_monitor_commands`` hook.  Nothing here is module-level state.

Every QMP :class:`Command` declares its arguments (:class:`Arg`: name, JSON
type, optional), and :meth:`CommandTable.execute` checks them before the
handler runs, with QEMU's messages in QEMU's order (schema order for missing
and mistyped members, then unexpected ones).  ``object-add`` and
``device_add`` take their arguments unchecked (QAPI ``boxed`` / ``gen:
false``): :mod:`qom` validates them as 7.2 does, and 7.2's ``device_add``
re-reads JSON values as strings (:func:`qom.qemu_opts_from_qdict`).

Handlers take the :class:`VmControl` and keyword arguments (named as in the
schema, ``-`` replaced by ``_``), return JSON-ready values (``None`` means
``{}``), and raise :class:`qom.QomError` whose ``error_class`` is the QMP
error class.  Dicts are built in the QAPI schema's member order, because
QEMU prints them in QDict order and a QDict's order depends on insertion
order within a hash bucket.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import qom
from backends.base import query_memdev
from plugins import hookimpl
from plugins.commands import (
    Arg,
    Command,
    CommandNotFoundError,
    CommandTable,
    HmpCommand,
)
from plugins.services import ACPI, services_of

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

#: The QEMU version pyqom answers as (``query-version``, the QMP greeting).
QEMU_VERSION: dict[str, int] = {"major": 7, "minor": 2, "micro": 22}

#: pyqom's own version; tests/plugins/monitor/test_commands.py checks that it
#: equals pyproject.toml's ``version``.  A constant rather than an
#: :mod:`importlib.metadata` lookup, which costs about 10 ms at start-up.
PYQOM_VERSION = "0.1.0"


def pyqom_version() -> str:
    """pyqom's version (:data:`PYQOM_VERSION`), as the greeting and ``query-version`` show it."""
    return PYQOM_VERSION


def package_string() -> str:
    """``package`` of ``query-version`` and the greeting: ``pyqom <version>``."""
    return f"pyqom {pyqom_version()}"


# ---------------------------------------------------------------------------
# The VM as the monitors see it
# ---------------------------------------------------------------------------

EventListener = Callable[[dict[str, Any]], None]


class _EventRelay:
    """A plugin instance forwarding the tree's events to one :class:`VmControl`."""

    def __init__(self, control: VmControl) -> None:
        self._control = control

    @hookimpl
    def qom_event(self, tree: qom.ObjectTree, name: str, data: dict[str, Any]) -> None:
        """Forward events of this VM's tree to the monitors."""
        if tree is self._control.vm.tree:
            self._control.emit(name, data)


class CommandThread:
    """The one thread that runs monitor commands, so that a long one (a big
    preallocation) leaves the event loop free: greetings, echo, other clients'
    input and signals go on, and commands wait their turn in order.

    A daemon thread (a command still running when pyqom ends does not hold the
    exit up); results come back on the event loop.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._queue: queue.SimpleQueue[tuple[Callable[[], Any], asyncio.Future[Any]] | None] = (
            queue.SimpleQueue())
        self._thread = threading.Thread(target=self._work, name="pyqom-commands", daemon=True)
        self._thread.start()

    def on_thread(self) -> bool:
        """Whether the caller is this thread (a command running)."""
        return threading.current_thread() is self._thread

    def run(self, work: Callable[[], Any]) -> asyncio.Future[Any]:
        """Run ``work`` after the commands queued before it; its result or error."""
        future: asyncio.Future[Any] = self.loop.create_future()
        self._queue.put((work, future))
        return future

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            work, future = item
            try:
                result = work()
            except BaseException as err:  # handed to the awaiting session
                self._deliver(future, None, err)
            else:
                self._deliver(future, result, None)

    def _deliver(self, future: asyncio.Future[Any], result: Any,
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
    :param paused: started with ``-S`` (status ``prelaunch``).
    :param clock: seconds since the epoch, for event timestamps.
    """

    def __init__(self, vm: VM, *, paused: bool = True,
                 clock: Callable[[], float] = time.time) -> None:
        self.vm = vm
        self.status = "prelaunch" if paused else "running"
        self.clock = clock
        self.quit_requested = False
        self._listeners: list[EventListener] = []
        self._quit_callbacks: list[Callable[[], None]] = []
        self._relay = _EventRelay(self)
        vm.pm.register(self._relay)
        self.commands = build_command_table(vm)
        self.command_thread: CommandThread | None = None

    def use_command_thread(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run commands on a :class:`CommandThread` from now on (the ``pyqom`` process)."""
        if self.command_thread is None:
            self.command_thread = CommandThread(loop)

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
        if thread is not None and thread.on_thread():
            # Listeners write to transports, which belong to the event loop.
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
            self.emit("SHUTDOWN", {"guest": False, "reason": "host-qmp-quit"})

    def shutdown(self, reason: str) -> None:
        """The process ends for another reason (``host-signal``): SHUTDOWN, then the
        quit callbacks, as for ``quit`` but with no reply to wait for."""
        if not self.quit_requested:
            self.quit_requested = True
            self.emit("SHUTDOWN", {"guest": False, "reason": reason})
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


# ---------------------------------------------------------------------------
# The built-in commands
# ---------------------------------------------------------------------------


def qmp_capabilities(control: VmControl, enable: list[Any] | None = None) -> None:
    """Outside negotiation ``qmp_capabilities`` only fails (the session handles it)."""
    raise CommandNotFoundError("Capabilities negotiation is already complete, command ignored")


def check_capabilities(enable: Iterable[Any]) -> list[str]:
    """The ``enable`` list of ``qmp_capabilities`` checked as QAPI does (``oob`` only)."""
    result = []
    for item in enable:
        # QEMU names list elements 'null' in these messages.
        if not isinstance(item, str):
            raise qom.errors.invalid_parameter_type("null", "string")
        if item != "oob":
            raise qom.errors.enum_rejects("null", item)
        result.append(item)
    return result


def query_version(control: VmControl) -> dict[str, Any]:
    """``query-version``: QEMU 7.2.22, package ``pyqom <version>``."""
    return {"qemu": dict(QEMU_VERSION), "package": package_string()}


def query_commands(control: VmControl) -> list[dict[str, str]]:
    """``query-commands``: every QMP command name."""
    return [{"name": name} for name in control.commands.names()]


def query_status(control: VmControl) -> dict[str, Any]:
    """``query-status`` (StatusInfo: running, singlestep, status)."""
    return {"running": control.running, "singlestep": False, "status": control.status}


def stop(control: VmControl) -> None:
    """``stop``: pause a running VM (STOP event); otherwise nothing changes."""
    if control.running:
        control.status = "paused"
        control.emit("STOP")


def cont(control: VmControl) -> None:
    """``cont``: run the VM (RESUME event) unless it already runs."""
    if not control.running:
        control.status = "running"
        control.emit("RESUME")


def quit_(control: VmControl) -> None:
    """``quit``: SHUTDOWN now, the process ends after the reply."""
    control.request_quit()


def object_add(control: VmControl, arguments: dict[str, Any]) -> None:
    """``object-add`` (boxed: :mod:`qom` validates the ObjectOptions union)."""
    qom.object_add(control.vm.tree, arguments)


def object_del(control: VmControl, id: str) -> None:
    """``object-del``."""
    qom.object_del(control.vm.tree, id)


def device_add(control: VmControl, arguments: dict[str, Any]) -> None:
    """``device_add``: 7.2 turns the JSON values into QemuOpts strings first."""
    qom.device_add(control.vm.tree, qom.qemu_opts_from_qdict(arguments))


def device_del(control: VmControl, id: str) -> None:
    """``device_del``: the unplug request (the guest completes it)."""
    qom.device_del(control.vm.tree, id)


def query_memory_devices(control: VmControl) -> list[dict[str, Any]]:
    """``query-memory-devices``: realized memory devices by address."""
    return control.vm.machine.query_memory_devices()


def query_memdev_command(control: VmControl) -> list[dict[str, Any]]:
    """``query-memdev``: every backend, ``pc.ram`` included."""
    return query_memdev(control.vm.tree)


def query_memory_size_summary(control: VmControl) -> dict[str, int]:
    """``query-memory-size-summary``: base RAM and the sum of plugged devices."""
    machine = control.vm.machine
    return {"base-memory": machine.ram_size, "plugged-memory": machine.plugged_memory_size()}


def query_acpi_ospm_status(control: VmControl) -> list[dict[str, Any]]:
    """``query-acpi-ospm-status``: one entry per DIMM slot (spec 7.1)."""
    state = services_of(control.vm.machine).find(ACPI)
    if state is None:
        raise qom.QomError("command is not supported, missing ACPI device")
    return state.ospm_status()


def qom_list(control: VmControl, path: str) -> list[dict[str, str]]:
    """``qom-list``."""
    return qom.qom_list(control.vm.tree, path)


def qom_get(control: VmControl, path: str, property: str) -> Any:
    """``qom-get``."""
    return qom.qom_get(control.vm.tree, path, property)


def qom_set(control: VmControl, path: str, property: str, value: Any) -> None:
    """``qom-set`` (strictly JSON-typed)."""
    qom.qom_set(control.vm.tree, path, property, value)


def qom_list_types(control: VmControl, implements: str | None = None,
                   abstract: bool = False) -> list[dict[str, Any]]:
    """``qom-list-types``."""
    return qom.qom_list_types(control.vm.tree.registry, implements, abstract)


def qom_list_properties(control: VmControl, typename: str) -> list[dict[str, Any]]:
    """``qom-list-properties``."""
    return qom.qom_list_properties(control.vm.tree, typename)


def device_list_properties(control: VmControl, typename: str) -> list[dict[str, Any]]:
    """``device-list-properties``."""
    return qom.device_list_properties(control.vm.tree, typename)


def human_monitor_command(control: VmControl, command_line: str,
                          cpu_index: int | None = None) -> str:
    """``human-monitor-command``: run one HMP line, return what it printed."""
    from plugins.monitor.hmp import HmpSession

    if cpu_index is not None and cpu_index != 0:
        raise qom.errors.parameter_expects("cpu-index", "a CPU number")
    session = HmpSession(control, hosted=True)
    session.run_line(command_line)
    return session.take_output()


BUILTIN_COMMANDS: tuple[Command, ...] = (
    Command("qmp_capabilities", qmp_capabilities, (Arg("enable", "array", True),)),
    Command("query-version", query_version),
    Command("query-commands", query_commands),
    Command("query-status", query_status),
    Command("stop", stop),
    Command("cont", cont),
    Command("quit", quit_),
    Command("object-add", object_add, boxed=True),
    Command("object-del", object_del, (Arg("id"),)),
    Command("device_add", device_add, boxed=True),
    Command("device_del", device_del, (Arg("id"),)),
    Command("query-memory-devices", query_memory_devices),
    Command("query-memdev", query_memdev_command),
    Command("query-memory-size-summary", query_memory_size_summary),
    Command("query-acpi-ospm-status", query_acpi_ospm_status),
    Command("qom-list", qom_list, (Arg("path"),)),
    Command("qom-get", qom_get, (Arg("path"), Arg("property"))),
    Command("qom-set", qom_set, (Arg("path"), Arg("property"), Arg("value", "any"))),
    Command("qom-list-types", qom_list_types,
            (Arg("implements", "str", True), Arg("abstract", "bool", True))),
    Command("qom-list-properties", qom_list_properties, (Arg("typename"),)),
    Command("device-list-properties", device_list_properties, (Arg("typename"),)),
    Command("human-monitor-command", human_monitor_command,
            (Arg("command-line"), Arg("cpu-index", "int", True))),
)
"""Module constant (immutable): the built-in QMP commands."""


def _builtin_hmp_commands() -> tuple[HmpCommand, ...]:
    from plugins.monitor.hmp import BUILTIN_HMP_COMMANDS

    return BUILTIN_HMP_COMMANDS


def build_command_table(vm: VM) -> CommandTable:
    """A fresh table: the built-in QMP and HMP commands, then the plugins' ones.

    The HMP built-ins (and :mod:`.hmp`, with readline and the help texts) are
    loaded on the first HMP use: a QMP-only start-up does not need them.
    """
    table = CommandTable()
    for command in BUILTIN_COMMANDS:
        table.register(command)
    table.hmp_builtins_from(_builtin_hmp_commands)
    vm.pm.hook.qom_register_monitor_commands(commands=table)
    return table
