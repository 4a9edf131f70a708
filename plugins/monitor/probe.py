"""What a management tool asks before it starts a guest: the target, machines,
CPU models, command-line options and schema, and the subsystems pyqom lacks.

libvirt probes its emulator with these (``virQEMUCapsInitQMPMonitor``), then
asks the running domain about its block devices, I/O threads, balloon and
chardevs.  Every answer comes from pyqom's state: the machine and CPU types in
its registry, its command table (``query-qmp-schema``), the command-line
options it parses (``query-command-line-options``).  A subsystem pyqom does
not model answers as QEMU 7.2 does when the subsystem is there but empty (no
drives: ``query-block`` is ``[]``) or absent (no balloon, no KVM for SEV and
SGX), never with capabilities pyqom could not honour.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import qom
from plugins.commands import (
    NO_DATA,
    Arg,
    ArrayType,
    Command,
    CommandTable,
    EnumType,
    Member,
    ObjectType,
)
from plugins.commands import MonitorError as _MonitorError

if TYPE_CHECKING:
    from plugins.monitor.control import VmControl

#: QEMU's QMP ``target`` of pyqom (``qemu-system-x86_64``)
TARGET_ARCH = "x86_64"


#: ``query-command-line-options``: the QemuOpts options :mod:`pyqom.command_line`
#: parses, each with those of QEMU 7.2's parameters it accepts (and their
#: types), in QEMU's order (tests/conformance/test_libvirt_vs_qemu.py checks
#: them against QEMU's list; tests/plugins/monitor/test_probe.py starts pyqom
#: with each).  As QEMU does, ``machine`` lists its legacy options only, not the
#: machine's properties; ``-sandbox`` is not there: pyqom applies no seccomp
#: filter.
COMMAND_LINE_OPTIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "machine": (("usb", "boolean"), ("dump-guest-core", "boolean"), ("accel", "string"),
                ("type", "string")),
    "numa": (),
    "name": (("guest", "string"),),
    "msg": (("timestamp", "boolean"),),
    "overcommit": (("cpu-pm", "boolean"), ("mem-lock", "boolean")),
    "object": (),
    "boot-opts": (("strict", "boolean"),),
    "smp-opts": (("maxcpus", "number"), ("threads", "number"), ("cores", "number"),
                 ("clusters", "number"), ("dies", "number"), ("sockets", "number"),
                 ("cpus", "number")),
    "memory": (("maxmem", "size"), ("slots", "number"), ("size", "size")),
    "accel": (),
    "mon": (("chardev", "string"), ("mode", "string")),
    "rtc": (("clock", "string"), ("base", "string")),
    "device": (),
    "chardev": (("server", "boolean"), ("wait", "boolean"), ("fd", "string"),
                ("port", "string"), ("host", "string"), ("path", "string"),
                ("backend", "string")),
}


def query_target(control: VmControl) -> dict[str, str]:
    """``query-target``: the architecture pyqom emulates."""
    return {"arch": TARGET_ARCH}


def query_machines(control: VmControl) -> list[dict[str, Any]]:
    """``query-machines``: every machine type in the registry (the pc types and
    ``none``), with what pyqom does with each: its CPU limit, whether ``-numa
    node,mem=`` works, the default CPU model and RAM id.  No CPU can be
    hot-plugged on any of them (``hotpluggable-cpus`` false)."""
    from devices.machine import (
        MACHINE_ALIASES,
        MAIN_RAM_ID,
        PC_MAX_CPUS,
        SLOT_VERSION,
        numa_mem_supported,
    )

    registry = control.vm.tree.registry
    aliases = {type_name: name for name, type_name in MACHINE_ALIASES.items()
               if not name.startswith("pc-")}
    machines: list[dict[str, Any]] = []
    for klass in registry.list_classes("machine", include_abstract=False):
        name = klass.name.removesuffix("-machine")
        entry: dict[str, Any] = {"name": name}
        if klass.name == "none-machine":
            entry.update({"cpu-max": 1, "hotpluggable-cpus": False,
                          "numa-mem-supported": False, "deprecated": False,
                          "default-ram-id": "ram"})
            machines.append(entry)
            continue
        alias = aliases.get(klass.name)
        if alias is not None:
            entry["alias"] = alias
            entry["is-default"] = True
        version = klass.slots.get(SLOT_VERSION, (7, 2))
        entry.update({"cpu-max": PC_MAX_CPUS, "hotpluggable-cpus": False,
                      "numa-mem-supported": numa_mem_supported(version),
                      "deprecated": False, "default-cpu-type": "qemu64-x86_64-cpu",
                      "default-ram-id": MAIN_RAM_ID})
        machines.append(entry)
    return machines


def query_cpu_definitions(control: VmControl) -> list[dict[str, Any]]:
    """``query-cpu-definitions``: the CPU models ``-cpu`` takes (the concrete
    ``x86_64-cpu`` types), none of them lacking a feature under pyqom's TCG."""
    registry = control.vm.tree.registry
    models = []
    for klass in registry.list_classes("x86_64-cpu", include_abstract=False):
        name = klass.name.removesuffix("-x86_64-cpu")
        models.append({"name": name, "migration-safe": name != "max", "static": False,
                       "unavailable-features": [], "typename": klass.name,
                       "deprecated": False})
    return models


def query_command_line_options(control: VmControl, option: str | None = None
                               ) -> list[dict[str, Any]]:
    """``query-command-line-options``: the QemuOpts options pyqom parses and
    their parameters (:data:`COMMAND_LINE_OPTIONS`); QEMU's error for another
    name."""
    result = []
    for name, parameters in COMMAND_LINE_OPTIONS.items():
        if option is not None and option != name:
            continue
        result.append({"parameters": [{"name": parameter, "type": kind}
                                      for parameter, kind in parameters],
                       "option": name})
    if option is not None and not result:
        raise qom.QomError(f"invalid option name: {option}")
    return result


#: QEMU 7.2's migration capabilities (``MigrationCapability``), in its order
QEMU_MIGRATION_CAPABILITIES = (
    "xbzrle", "rdma-pin-all", "auto-converge", "zero-blocks", "compress", "events",
    "postcopy-ram", "x-colo", "release-ram", "block", "return-path",
    "pause-before-switchover", "multifd", "dirty-bitmaps", "postcopy-blocktime",
    "late-block-activate", "x-ignore-shared", "validate-uuid", "background-snapshot",
    "zero-copy-send", "postcopy-preempt")
#: the ones pyqom honours: ``events`` (migration events; pyqom never migrates,
#: so with it on there is simply never one to send)
HONOURED_MIGRATION_CAPABILITIES = ("events",)


def _migration_state(control: VmControl) -> dict[str, bool]:
    vm: Any = control.vm
    state: dict[str, bool] = vm.migration_capabilities
    return state


def query_migrate_capabilities(control: VmControl) -> list[dict[str, Any]]:
    """``query-migrate-capabilities``: the capabilities pyqom can honour and their
    state (pyqom cannot migrate: only ``events`` is among them)."""
    state = _migration_state(control)
    return [{"state": state.get(name, False), "capability": name}
            for name in HONOURED_MIGRATION_CAPABILITIES]


def migrate_set_capabilities(control: VmControl, capabilities: list[Any]) -> None:
    """``migrate-set-capabilities``: checked whole first (QAPI's messages), then
    applied; a capability pyqom cannot honour is refused and nothing changes."""
    wanted: list[tuple[str, bool]] = []
    for index, item in enumerate(capabilities):
        where = f"capabilities[{index}]"
        if not isinstance(item, dict):
            raise qom.errors.invalid_parameter_type(where, "object")
        for member, kind in (("capability", str), ("state", bool)):
            if member not in item:
                raise qom.errors.parameter_missing(f"{where}.{member}")
            if not isinstance(item[member], kind):
                raise qom.errors.invalid_parameter_type(
                    f"{where}.{member}", "string" if kind is str else "boolean")
        for member in item:
            if member not in ("capability", "state"):
                raise qom.errors.parameter_unexpected(f"{where}.{member}")
        name = item["capability"]
        if name not in QEMU_MIGRATION_CAPABILITIES:
            # QAPI's enum message names the member alone
            raise qom.errors.enum_rejects("capability", name)
        if name not in HONOURED_MIGRATION_CAPABILITIES and item["state"]:
            raise qom.QomError(f"pyqom does not support the migration capability '{name}'")
        wanted.append((name, item["state"]))
    state = _migration_state(control)
    for name, on in wanted:
        if name in HONOURED_MIGRATION_CAPABILITIES:
            state[name] = on


def query_sev_capabilities(control: VmControl) -> None:
    """``query-sev-capabilities``: SEV needs KVM, which pyqom does not have."""
    raise qom.QomError("KVM not enabled")


def query_sgx_capabilities(control: VmControl) -> None:
    """``query-sgx-capabilities``: SGX needs KVM, which pyqom does not have."""
    raise qom.QomError("SGX is not enabled in KVM")


def query_tpm_models(control: VmControl) -> list[str]:
    """``query-tpm-models``: pyqom has no TPM device."""
    return []


def query_tpm_types(control: VmControl) -> list[str]:
    """``query-tpm-types``: nor a TPM back end."""
    return []


def query_iothreads(control: VmControl) -> list[dict[str, Any]]:
    """``query-iothreads``: pyqom has no ``iothread`` objects."""
    return []


def query_block(control: VmControl) -> list[dict[str, Any]]:
    """``query-block``: pyqom has no drives."""
    return []


def query_named_block_nodes(control: VmControl, flat: bool = False) -> list[dict[str, Any]]:
    """``query-named-block-nodes``: nor block nodes."""
    return []


def query_balloon(control: VmControl) -> None:
    """``query-balloon``: pyqom has no balloon device."""
    raise _MonitorError("No balloon device has been activated", "DeviceNotActive")


def balloon(control: VmControl, value: int) -> None:
    """``balloon``: pyqom has no balloon device."""
    raise _MonitorError("No balloon device has been activated", "DeviceNotActive")


def query_uuid(control: VmControl) -> dict[str, str]:
    """``query-uuid``: ``-uuid``, or QEMU's all-zero one."""
    return {"UUID": getattr(control.vm, "uuid", "00000000-0000-0000-0000-000000000000")}


def query_chardev(control: VmControl) -> list[dict[str, Any]]:
    """``query-chardev``: the monitors' chardevs, then the others (``-chardev``,
    ``-debugcon``) in the order they were made."""
    entries = [describe() for describe in control.monitor_chardevs]
    host = getattr(control.vm, "chardevs", None)
    if host is not None:
        entries += host.query_chardev()
    return entries


def query_qmp_schema(control: VmControl) -> list[dict[str, Any]]:
    """``query-qmp-schema``: generated from this monitor's command table."""
    from plugins.monitor.schema import qmp_schema

    return qmp_schema(control.commands, control.vm)


_MACHINE_INFO = ObjectType("MachineInfo", (
    Member("name"), Member("alias", "str", True), Member("is-default", "bool", True),
    Member("cpu-max", "int"), Member("hotpluggable-cpus", "bool"),
    Member("numa-mem-supported", "bool"), Member("deprecated", "bool"),
    Member("default-cpu-type", "str", True), Member("default-ram-id", "str", True)))
_CPU_DEFINITION = ObjectType("CpuDefinitionInfo", (
    Member("name"), Member("migration-safe", "bool", True), Member("static", "bool"),
    Member("unavailable-features", ArrayType("str"), True), Member("typename"),
    Member("alias-of", "str", True), Member("deprecated", "bool")))
_OPTION_INFO = ObjectType("CommandLineOptionInfo", (
    Member("option"), Member("parameters", ArrayType(ObjectType("CommandLineParameterInfo", (
        Member("name"), Member("type", EnumType("CommandLineParameterType", (
            "string", "boolean", "number", "size"))),
        Member("help", "str", True), Member("default", "str", True))))),))
_MIGRATION_CAPABILITY = ObjectType("MigrationCapabilityStatus", (
    Member("capability", EnumType("MigrationCapability", QEMU_MIGRATION_CAPABILITIES)),
    Member("state", "bool")))

#: the commands of this module, for :func:`register`
PROBE_COMMANDS: tuple[Command, ...] = (
    Command("query-target", query_target,
            returns=ObjectType("TargetInfo", (Member("arch", EnumType(
                "SysEmuTarget", (TARGET_ARCH,))),))),
    Command("query-machines", query_machines, returns=ArrayType(_MACHINE_INFO)),
    Command("query-cpu-definitions", query_cpu_definitions,
            returns=ArrayType(_CPU_DEFINITION)),
    Command("query-command-line-options", query_command_line_options,
            (Arg("option", "str", True),), returns=ArrayType(_OPTION_INFO)),
    Command("query-migrate-capabilities", query_migrate_capabilities,
            returns=ArrayType(_MIGRATION_CAPABILITY)),
    Command("migrate-set-capabilities", migrate_set_capabilities,
            (Arg("capabilities", "array"),), returns=NO_DATA),
    Command("query-sev-capabilities", query_sev_capabilities),
    Command("query-sgx-capabilities", query_sgx_capabilities),
    Command("query-tpm-models", query_tpm_models, returns=ArrayType(EnumType("TpmModel", ()))),
    Command("query-tpm-types", query_tpm_types, returns=ArrayType(EnumType("TpmType", ()))),
    Command("query-iothreads", query_iothreads),
    Command("query-block", query_block),
    Command("query-named-block-nodes", query_named_block_nodes, (Arg("flat", "bool", True),)),
    Command("query-balloon", query_balloon),
    Command("balloon", balloon, (Arg("value", "int"),), returns=NO_DATA),
    Command("query-uuid", query_uuid, returns=ObjectType("UuidInfo", (Member("UUID"),))),
    Command("query-chardev", query_chardev, returns=ArrayType(ObjectType("ChardevInfo", (
        Member("label"), Member("filename"), Member("frontend-open", "bool"))))),
    Command("query-qmp-schema", query_qmp_schema),
)


def register(table: CommandTable) -> None:
    """Add the commands of this module to ``table``."""
    for command in PROBE_COMMANDS:
        table.register(command)
