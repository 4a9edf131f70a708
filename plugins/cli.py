"""``pyqom``: a drop-in for ``qemu-system-x86_64`` on the memory-hotplug surface.

QEMU's start-up, in its order:

1. every option is parsed as it comes (``-m``, ``-object`` and ``-device``
   syntax, ids, duplicate ids); errors carry the option's text:
   ``pyqom: -m 1GB: Parameter 'size' expects ...``;
2. ``-object`` backends are created (errors without the option text);
3. the machine: ``-m`` fix-ups, ``machine_set_mem``, board init (no option text);
4. ``-device`` cold plug (errors with the option text);
5. the machine is ready; the monitors start answering.

Any error prints ``pyqom: <message>`` (hint lines follow) and exits 1 before
a monitor answers.  Options pyqom does not support are refused in QEMU's
words, never ignored.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

import attrs

import qom
from devices.machine import DEFAULT_PHYS_BITS, machine_type_for
from devices.memory_options import fix_up_memory_options, machine_set_mem, parse_memory_option
from plugins.vm import VM
from qom.errors import QomError
from qom.keyval import qemu_opts_dict
from qom.user_creatable import check_id

PROG = "pyqom"
QEMU_VERSION = "7.2.22"
PYQOM_VERSION = "0.1.0"

#: options that take an argument
WITH_ARGUMENT = frozenset({
    "-machine", "-M", "-m", "-object", "-device", "-cpu", "-display", "-name", "-qmp",
    "-monitor", "-accel", "-global", "-dump-acpi",
})
#: options without an argument
FLAGS = frozenset({"-S", "-nodefaults", "-no-acpi", "-version", "-h", "-help", "-nographic"})

USAGE = f"""\
QEMU emulator version {QEMU_VERSION} ({PROG} {PYQOM_VERSION})
usage: {PROG} [options]

The memory-hotplug surface of qemu-system-x86_64:
-machine [type=]pc[,max-ram-below-4g=size]
-m [size=]megs[,slots=n,maxmem=size]
-cpu qemu64[,phys-bits=N]
-object memory-backend-ram|memory-backend-file|memory-backend-memfd,id=ID,...
-device pc-dimm,[id=ID,]memdev=ID[,slot=N][,addr=A][,node=N]
-qmp stdio|unix:PATH,server=on,wait=off|tcp:HOST:PORT,server=on,wait=off
-monitor (same forms as -qmp, for HMP)
-S                start paused
-nodefaults -display none -name NAME -accel tcg -no-acpi
-global PIIX4_PM.memory-hotplug-support=on|off
-dump-acpi DIR    write the ACPI tables of the ready machine to DIR/SIG.dat
-version -h
"""


class StartupError(Exception):
    """A fatal command-line error: printed as ``pyqom: <text>`` (plus hints), exit 1."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    @classmethod
    def located(cls, option: str, argument: str, err: QomError) -> StartupError:
        """An error QEMU reports with the option's own text in front."""
        return cls(f"{option} {argument}: {err}", err.hint)

    def render(self) -> str:
        text = f"{PROG}: {self.message}\n"
        if self.hint:
            text += self.hint.rstrip("\n") + "\n"
        return text


@attrs.define
class CommandLine:
    """What the options asked for, validated as far as QEMU validates while parsing."""

    machine: str = "pc"
    max_ram_below_4g: int = 0
    acpi: bool = True
    memory_hotplug_support: bool = True
    memory: dict[str, str] = attrs.Factory(dict)
    phys_bits: int = DEFAULT_PHYS_BITS
    #: (option text, QAPI-checked arguments, input) in command-line order
    objects: list[tuple[str, dict[str, Any], qom.Input]] = attrs.Factory(list)
    #: (option text, options, input) in command-line order
    devices: list[tuple[str, dict[str, Any], qom.Input]] = attrs.Factory(list)
    paused: bool = False
    name: str | None = None
    qmp: list[str] = attrs.Factory(list)
    monitors: list[str] = attrs.Factory(list)
    dump_acpi: str | None = None
    show_version: bool = False
    show_help: bool = False


def _json_option(option: str, text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise StartupError(f"{option} {text}: JSON parse error, premature EOI") from None
    if not isinstance(value, dict):
        raise StartupError(f"{option} {text}: Invalid parameter type, expected: dict")
    return value


def parse_command_line(argv: Sequence[str], warn: Callable[[str], None],
                       registry: qom.TypeRegistry) -> CommandLine:
    """QEMU's option loop: every option checked as it comes, in order.

    :param registry: the types ``-object`` may name.
    :raises StartupError: the first bad option, in QEMU's words.
    """
    line = CommandLine()
    object_ids: set[str] = set()
    device_ids: set[str] = set()
    index = 0
    while index < len(argv):
        option = argv[index]
        index += 1
        if option.startswith("--"):
            option = option[1:]
        if not option.startswith("-") or option == "-":
            raise StartupError(f"{option}: drive images are not supported by {PROG}")
        if option in FLAGS:
            if option == "-S":
                line.paused = True
            elif option == "-no-acpi":
                line.acpi = False
            elif option == "-version":
                line.show_version = True
            elif option in ("-h", "-help"):
                line.show_help = True
            elif option == "-nographic":
                raise StartupError("-nographic: pyqom has no display or serial console; "
                                   "use -display none")
            continue
        if option not in WITH_ARGUMENT:
            raise StartupError(f"{option}: invalid option")
        if index >= len(argv):
            raise StartupError(f"{option}: requires an argument")
        value = argv[index]
        index += 1
        _apply(line, option, value, warn, registry, object_ids, device_ids)
    return line


def _apply(line: CommandLine, option: str, value: str, warn: Callable[[str], None],
           registry: qom.TypeRegistry, object_ids: set[str], device_ids: set[str]) -> None:
    try:
        if option == "-m":
            line.memory = parse_memory_option(value, line.memory, warn)
        elif option in ("-machine", "-M"):
            _apply_machine(line, value, warn)
        elif option == "-cpu":
            _apply_cpu(line, value, warn)
        elif option == "-object":
            line.objects.append(_parse_object(value, warn, registry, object_ids))
        elif option == "-device":
            line.devices.append(_parse_device(value, warn, device_ids))
        elif option == "-display":
            if qom.parse_qemu_opts(value, implied_key="type")[0].value != "none":
                raise StartupError(f"Display '{value.split(',')[0]}' is not available.")
        elif option == "-accel":
            accel = qom.parse_qemu_opts(value, implied_key="accel")[0].value
            if accel != "tcg":
                raise StartupError(f"-accel {value}: invalid accelerator {accel}")
        elif option == "-name":
            line.name = qemu_opts_dict(value, "guest", warn).get("guest")
        elif option == "-qmp":
            line.qmp.append(value)
        elif option == "-monitor":
            line.monitors.append(value)
        elif option == "-global":
            _apply_global(line, value)
        elif option == "-dump-acpi":
            line.dump_acpi = value
    except QomError as err:
        raise StartupError.located(option, value, err) from None


def _apply_machine(line: CommandLine, value: str, warn: Callable[[str], None]) -> None:
    for name, raw in qemu_opts_dict(value, "type", warn).items():
        if name == "type":
            line.machine = raw
        elif name == "max-ram-below-4g":
            line.max_ram_below_4g = qom.KEYVAL.read_size(name, raw)
        elif name == "acpi":
            line.acpi = raw != "off"
        else:
            # QEMU applies machine properties after parsing, so no option text.
            try:
                type_name = machine_type_for(line.machine)
            except QomError as err:
                raise StartupError(err.message, err.hint) from None
            raise StartupError(f"Property '{type_name}.{name}' not found")


def _apply_cpu(line: CommandLine, value: str, warn: Callable[[str], None]) -> None:
    options = qemu_opts_dict(value, "model", warn)
    model = options.pop("model", "qemu64")
    if model not in ("qemu64", "max"):
        raise StartupError(f"unable to find CPU model '{model}'")
    for name, raw in options.items():
        if name != "phys-bits":
            raise StartupError(f"can't apply global {model}-x86_64-cpu.{name}={raw}: "
                               f"Property '{model}-x86_64-cpu.{name}' not found")
        line.phys_bits = qom.UINT32.read(qom.KEYVAL, name, raw)


def _apply_global(line: CommandLine, value: str) -> None:
    driver_prop, _, setting = value.partition("=")
    if driver_prop != "PIIX4_PM.memory-hotplug-support":
        raise StartupError(f"-global {value}: pyqom supports only "
                           "-global PIIX4_PM.memory-hotplug-support=on|off")
    line.memory_hotplug_support = qom.inputs.parse_bool("memory-hotplug-support", setting)


def _parse_object(value: str, warn: Callable[[str], None], registry: qom.TypeRegistry,
                  seen: set[str]) -> tuple[str, dict[str, Any], qom.Input]:
    """``-object``: QemuOpts (id form, duplicates) or JSON, then the QAPI check, located."""
    if value.startswith("{"):
        arguments, source = _json_option("-object", value), qom.JSON
    else:
        arguments, source = qemu_opts_dict(value, "qom-type", warn), qom.OPTS
        object_id = arguments.get("id")
        if object_id is not None:
            check_id(object_id)
            if object_id in seen:
                raise QomError(f"Duplicate ID '{object_id}' for object")
            seen.add(object_id)
    qom.parse_object_options(registry, arguments, source)
    return value, arguments, source


def _parse_device(value: str, warn: Callable[[str], None],
                  seen: set[str]) -> tuple[str, dict[str, Any], qom.Input]:
    """``-device``: QemuOpts checks the id and duplicates while parsing; the rest comes later."""
    if value.startswith("{"):
        return value, _json_option("-device", value), qom.JSON
    options = qemu_opts_dict(value, "driver", warn)
    device_id = options.get("id")
    if device_id is not None:
        check_id(device_id)
        if device_id in seen:
            raise QomError(f"Duplicate ID '{device_id}' for device")
        seen.add(device_id)
    return value, options, qom.KEYVAL


def build_vm(vm: VM, line: CommandLine, warn: Callable[[str], None]) -> None:
    """Objects, machine, devices, in QEMU's order; errors located as QEMU locates them."""
    try:
        config = machine_set_mem(fix_up_memory_options(line.memory, warn))
    except QomError as err:
        raise StartupError(err.message, err.hint) from None
    try:
        for _, arguments, source in line.objects:
            try:
                qom.object_add(vm.tree, arguments, source)
            except QomError as err:
                raise StartupError(err.message, err.hint) from None
        try:
            vm.create_machine(config, machine=line.machine, phys_bits=line.phys_bits,
                              max_ram_below_4g=line.max_ram_below_4g, acpi=line.acpi,
                              memory_hotplug_support=line.memory_hotplug_support)
        except QomError as err:
            raise StartupError(err.message, err.hint) from None
        for text, options, source in line.devices:
            try:
                qom.device_add(vm.tree, options, source)
            except QomError as err:
                raise StartupError.located("-device", text, err) from None
        vm.machine_ready(paused=line.paused)
    except BaseException:
        vm.close()
        raise


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None,
         stderr: TextIO | None = None) -> int:
    """Run ``pyqom``; returns the exit status."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    args = list(sys.argv[1:] if argv is None else argv)

    def warn(message: str) -> None:
        first, *rest = message.split("\n")
        err.write(f"{PROG}: warning: {first}\n" + "".join(f"{line}\n" for line in rest))

    vm = VM.empty()
    try:
        line = parse_command_line(args, warn, vm.tree.registry)
        if line.show_help:
            out.write(USAGE)
            vm.close()
            return 0
        if line.show_version:
            out.write(f"QEMU emulator version {QEMU_VERSION} ({PROG} {PYQOM_VERSION})\n"
                      "Copyright (c) 2003-2022 Fabrice Bellard and the QEMU Project "
                      "developers\n")
            vm.close()
            return 0
        build_vm(vm, line, warn)
    except StartupError as error:
        vm.close()
        err.write(error.render())
        return 1
    try:
        return serve(vm, line)
    finally:
        vm.close()


def serve(vm: VM, line: CommandLine) -> int:
    """Run until a monitor's ``quit`` (or SIGINT/SIGTERM without monitors)."""
    import signal
    import threading

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
