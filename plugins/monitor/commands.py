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

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import attrs

import qom
from backends.base import query_memdev
from plugins.commands import (
    NO_DATA,
    Arg,
    ArrayType,
    Command,
    CommandNotFoundError,
    CommandTable,
    EnumType,
    Event,
    HmpCommand,
    Member,
    ObjectType,
    SchemaType,
)
from plugins.device_events import DeviceRef, removal_outcome
from plugins.monitor.memdump import save
from plugins.services import ACPI, GUEST_CPU, GUEST_MEMORY, GuestCpu, services_of

if TYPE_CHECKING:
    from plugins.monitor.control import VM, VmControl


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
    """``stop``: pause a running VM (the CPU stops, then the STOP event); otherwise
    nothing changes."""
    if control.running:
        cpu = _guest_cpu(control)
        if cpu is not None:
            cpu.pause()
        control.status = "paused"
        control.emit("STOP")


def cont(control: VmControl) -> None:
    """``cont``: run the VM (the RESUME event, then the CPU goes on) unless it
    already runs."""
    if not control.running:
        control.status = "running"
        control.emit("RESUME")
        cpu = _guest_cpu(control)
        if cpu is not None:
            cpu.resume()


def _guest_cpu(control: VmControl) -> GuestCpu | None:
    machine = getattr(control.vm, "machine", None)
    return services_of(machine).find(GUEST_CPU) if machine is not None else None


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


def x_device_del_wait(control: VmControl, id: str, timeout: float = 10.0) -> dict[str, Any]:
    """``x-device-del-wait`` (a pyqom addition): ``device_del``, then wait until the
    guest has ejected the device (``DEVICE_DELETED``; its data is the answer),
    refused it (its ``_OST`` failure), or ``timeout`` seconds have passed."""
    if not 0 <= timeout <= 3600:
        raise qom.errors.parameter_expects("timeout", "a number of seconds from 0 to 3600")
    device = DeviceRef.of(qom.find_device(control.vm.tree, id))
    outcome = control.wait_for_event(
        lambda name, data: removal_outcome(device, name, data),
        lambda: qom.device_del(control.vm.tree, id), timeout)
    if outcome is None:
        raise qom.QomError(f"Device '{id}' was not deleted within {timeout:g} s")
    if not outcome.ok:
        raise qom.QomError(outcome.message)
    return dict(outcome.data or {})


def x_plan_plug(control: VmControl, requests: list[Any]) -> dict[str, Any]:
    """``x-plan-plug`` (a pyqom addition): what ``requests`` (``{"execute":
    "object-add" | "device_add", "arguments": {...}}`` each) would do, with the
    machine left as it was (:func:`devices.plan.plan_plug`)."""
    from devices.plan import plan_plug, requests_from_qmp  # not needed to start

    return plan_plug(control.vm.tree, requests_from_qmp(requests))


def x_query_memory_capacity(control: VmControl,
                            alignments: list[Any] | None = None) -> dict[str, Any]:
    """``x-query-memory-capacity`` (a pyqom addition): free slots, free ``maxmem``,
    the free ranges and the largest DIMM that fits now per alignment
    (:func:`devices.plan.memory_capacity`)."""
    from devices.plan import DEFAULT_ALIGNMENTS, memory_capacity, pc_machine_of

    if alignments is None:
        alignments = list(DEFAULT_ALIGNMENTS)
    for index, align in enumerate(alignments):
        if isinstance(align, bool) or not isinstance(align, int):
            raise qom.QomError(
                f"Invalid parameter type for 'alignments[{index}]', expected: integer")
    return memory_capacity(pc_machine_of(control.vm.tree), alignments)


def query_memory_devices(control: VmControl) -> list[dict[str, Any]]:
    """``query-memory-devices``: realized memory devices by address."""
    return control.vm.machine.query_memory_devices()


def query_memdev_command(control: VmControl) -> list[dict[str, Any]]:
    """``query-memdev``: every backend, ``pc.ram`` included."""
    return query_memdev(control.vm.tree)


def query_memory_size_summary(control: VmControl) -> dict[str, int]:
    """``query-memory-size-summary``: base RAM and the sum of plugged devices."""
    return control.vm.machine.memory_size_summary()


def query_acpi_ospm_status(control: VmControl) -> list[dict[str, Any]]:
    """``query-acpi-ospm-status``: one entry per DIMM slot."""
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


def guest_reader(control: VmControl, *, virtual: bool
                 ) -> Callable[[int, int], bytes | None] | None:
    """``read(address, n)`` of the guest's memory for the dump and save commands:
    physical, or through the guest's page tables; ``None`` where nothing is
    mapped.  ``None`` itself when the machine has no guest memory (or, for
    virtual addresses, no CPU)."""
    machine = getattr(control.vm, "machine", None)
    if machine is None:
        return None
    services = services_of(machine)
    memory = services.find(GUEST_MEMORY)
    cpu = services.find(GUEST_CPU)
    if memory is None or (virtual and cpu is None):
        return None

    def physical(address: int, length: int) -> bytes | None:
        try:
            return memory.read(address, length)
        except qom.QomError:
            return None

    if not virtual:
        return physical
    assert cpu is not None
    return cpu.read_virtual


def pmemsave(control: VmControl, val: int, size: int, filename: str) -> None:
    """``pmemsave``: guest-physical memory into a file (unbacked memory reads as zeros)."""
    read = guest_reader(control, virtual=False)
    save(filename, val, size, read or (lambda address, length: None), virtual=False)


def memsave(control: VmControl, val: int, size: int, filename: str,
            cpu_index: int | None = None) -> None:
    """``memsave``: guest-virtual memory (the CPU's page tables) into a file."""
    if cpu_index not in (None, 0):
        raise qom.errors.parameter_expects("cpu-index", "a CPU number")
    read = guest_reader(control, virtual=True)
    if read is None:
        raise qom.errors.parameter_expects("cpu-index", "a CPU number")
    save(filename, val, size, read, virtual=True)


def system_powerdown(control: VmControl) -> None:
    """``system_powerdown``: the POWERDOWN event, then the ACPI power button (the
    guest sees it if it enabled it, and may power off)."""
    control.emit("POWERDOWN")
    machine = getattr(control.vm, "machine", None)
    acpi = services_of(machine).find(ACPI) if machine is not None else None
    if acpi is not None:
        acpi.press_power_button()


def query_cpus_fast(control: VmControl) -> list[dict[str, Any]]:
    """``query-cpus-fast``: each present CPU, its topology ids and node."""
    from devices.cpu import query_cpus_fast as cpus_of

    return cpus_of(control.vm.machine)


def query_hotpluggable_cpus(control: VmControl) -> list[dict[str, Any]]:
    """``query-hotpluggable-cpus``: every possible CPU (``maxcpus``), last first."""
    from devices.cpu import query_hotpluggable_cpus as slots_of
    from devices.none_machine import NoneMachine

    machine = control.vm.machine
    if isinstance(machine, NoneMachine):
        raise qom.QomError("The feature 'query-hotpluggable-cpus' is not enabled")
    return slots_of(machine, machine.cpu_type)


def query_kvm(control: VmControl) -> dict[str, bool]:
    """``query-kvm``: pyqom runs its guest on Unicorn, never on KVM."""
    return {"enabled": False, "present": False}


def _object_add_arguments(vm: Any) -> Any:
    from plugins.monitor.schema import object_add_arguments

    return object_add_arguments(vm)


#: QEMU's ``RunState``
RUN_STATES = ("debug", "inmigrate", "internal-error", "io-error", "paused", "postmigrate",
              "prelaunch", "finish-migrate", "restore-vm", "running", "save-vm", "shutdown",
              "suspended", "watchdog", "guest-panicked", "colo")
_ACPI_OST_INFO = ObjectType("ACPIOSTInfo", (
    Member("device", "str", True), Member("slot"),
    Member("slot-type", EnumType("ACPISlotType", ("DIMM", "CPU"))),
    Member("source", "int"), Member("status", "int")))
_PROPERTY_INFO = ObjectType("ObjectPropertyInfo", (
    Member("name"), Member("type"), Member("description", "str", True),
    Member("default-value", "any", True)))
_RETURNS: dict[str, SchemaType] = {
    "query-version": ObjectType("VersionInfo", (
        Member("qemu", ObjectType("VersionTriple", (
            Member("major", "int"), Member("minor", "int"), Member("micro", "int")))),
        Member("package"))),
    "query-commands": ArrayType(ObjectType("CommandInfo", (Member("name"),))),
    "query-status": ObjectType("StatusInfo", (
        Member("running", "bool"), Member("singlestep", "bool"),
        Member("status", EnumType("RunState", RUN_STATES)))),
    "query-kvm": ObjectType("KvmInfo", (Member("enabled", "bool"), Member("present", "bool"))),
    "query-memory-size-summary": ObjectType("MemoryInfo", (
        Member("base-memory", "int"), Member("plugged-memory", "int", True))),
    "query-memdev": ArrayType(ObjectType("Memdev", (
        Member("id", "str", True), Member("size", "int"), Member("merge", "bool"),
        Member("dump", "bool"), Member("prealloc", "bool"), Member("share", "bool"),
        Member("reserve", "bool", True), Member("host-nodes", ArrayType("int")),
        Member("policy", EnumType("HostMemPolicy",
                                  ("default", "preferred", "bind", "interleave")))))),
    "query-acpi-ospm-status": ArrayType(_ACPI_OST_INFO),
    "qom-list": ArrayType(_PROPERTY_INFO),
    "qom-list-properties": ArrayType(_PROPERTY_INFO),
    "device-list-properties": ArrayType(_PROPERTY_INFO),
    "qom-list-types": ArrayType(ObjectType("ObjectTypeInfo", (
        Member("name"), Member("abstract", "bool", True), Member("parent", "str", True)))),
    "human-monitor-command": "str",
}


def _with_returns(commands: tuple[Command, ...]) -> tuple[Command, ...]:
    """The commands with the return types of :data:`_RETURNS` declared."""
    return tuple(attrs.evolve(command, returns=_RETURNS[command.name])
                 if command.name in _RETURNS else command for command in commands)


BUILTIN_COMMANDS: tuple[Command, ...] = (
    Command("qmp_capabilities", qmp_capabilities, (Arg("enable", "array", True),), returns=NO_DATA),
    Command("query-version", query_version),
    Command("query-commands", query_commands),
    Command("query-status", query_status),
    Command("stop", stop, returns=NO_DATA),
    Command("cont", cont, returns=NO_DATA),
    Command("quit", quit_, returns=NO_DATA),
    Command("object-add", object_add, (Arg("qom-type"), Arg("id")), boxed=True,
            returns=NO_DATA, arg_type=_object_add_arguments),
    Command("object-del", object_del, (Arg("id"),), returns=NO_DATA),
    Command("device_add", device_add,
            (Arg("driver"), Arg("bus", "str", True), Arg("id", "str", True)), boxed=True,
            returns=NO_DATA),
    Command("device_del", device_del, (Arg("id"),), returns=NO_DATA),
    Command("query-memory-devices", query_memory_devices),
    Command("query-memdev", query_memdev_command),
    Command("query-memory-size-summary", query_memory_size_summary),
    Command("query-acpi-ospm-status", query_acpi_ospm_status),
    Command("qom-list", qom_list, (Arg("path"),)),
    Command("qom-get", qom_get, (Arg("path"), Arg("property"))),
    Command("qom-set", qom_set, (Arg("path"), Arg("property"), Arg("value", "any")),
            returns=NO_DATA),
    Command("qom-list-types", qom_list_types,
            (Arg("implements", "str", True), Arg("abstract", "bool", True))),
    Command("qom-list-properties", qom_list_properties, (Arg("typename"),)),
    Command("device-list-properties", device_list_properties, (Arg("typename"),)),
    Command("human-monitor-command", human_monitor_command,
            (Arg("command-line"), Arg("cpu-index", "int", True))),
    Command("pmemsave", pmemsave, (Arg("val", "int"), Arg("size", "int"), Arg("filename")),
            returns=NO_DATA),
    Command("memsave", memsave, (Arg("val", "int"), Arg("size", "int"), Arg("filename"),
                                 Arg("cpu-index", "int", True)), returns=NO_DATA),
    Command("query-kvm", query_kvm),
    Command("query-cpus-fast", query_cpus_fast),
    Command("query-hotpluggable-cpus", query_hotpluggable_cpus),
    Command("system_powerdown", system_powerdown, returns=NO_DATA),
    Command("x-device-del-wait", x_device_del_wait,
            (Arg("id"), Arg("timeout", "number", True))),
    Command("x-plan-plug", x_plan_plug, (Arg("requests", "array"),)),
    Command("x-query-memory-capacity", x_query_memory_capacity,
            (Arg("alignments", "array", True),)),
)
"""Module constant (immutable): the built-in QMP commands."""
BUILTIN_COMMANDS = _with_returns(BUILTIN_COMMANDS)


#: QEMU's ``ShutdownCause``
SHUTDOWN_CAUSES = ("none", "host-error", "host-qmp-quit", "host-qmp-system-reset",
                   "host-signal", "host-ui", "guest-shutdown", "guest-reset", "guest-panic",
                   "subsystem-reset", "snapshot-load")
_DEVICE_AND_PATH = ObjectType("q_obj_DEVICE_DELETED-arg", (Member("device", "str", True),
                                                            Member("path")))

BUILTIN_EVENTS: tuple[Event, ...] = (
    Event("SHUTDOWN", ObjectType("q_obj_SHUTDOWN-arg", (
        Member("guest", "bool"), Member("reason", EnumType("ShutdownCause", SHUTDOWN_CAUSES))))),
    Event("POWERDOWN"),
    Event("STOP"),
    Event("RESUME"),
    Event("DEVICE_DELETED", _DEVICE_AND_PATH),
    Event("DEVICE_UNPLUG_GUEST_ERROR", ObjectType("q_obj_DEVICE_UNPLUG_GUEST_ERROR-arg",
                                                  _DEVICE_AND_PATH.members)),
    Event("ACPI_DEVICE_OST", ObjectType("q_obj_ACPI_DEVICE_OST-arg",
                                        (Member("info", _ACPI_OST_INFO),))),
    Event("MEM_UNPLUG_ERROR", ObjectType("q_obj_MEM_UNPLUG_ERROR-arg", (
        Member("device"), Member("msg"))), features=("deprecated",)),
)
"""Module constant (immutable): the events pyqom's own code sends."""


def _builtin_hmp_commands() -> tuple[HmpCommand, ...]:
    from plugins.monitor.hmp import BUILTIN_HMP_COMMANDS

    return BUILTIN_HMP_COMMANDS


def build_command_table(vm: VM) -> CommandTable:
    """A fresh table: the built-in QMP and HMP commands, then the plugins' ones.

    The HMP built-ins (and :mod:`.hmp`, with readline and the help texts) are
    loaded on the first HMP use: a QMP-only start-up does not need them.
    """
    from plugins.monitor.probe import register as register_probe_commands

    table = CommandTable()
    for command in BUILTIN_COMMANDS:
        table.register(command)
    register_probe_commands(table)
    for event in BUILTIN_EVENTS:
        table.register_event(event)
    table.hmp_builtins_from(_builtin_hmp_commands)
    vm.pm.hook.qom_register_monitor_commands(commands=table)
    return table
