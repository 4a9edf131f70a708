"""QEMU's command line, parsed and applied in QEMU 7.2's order (used by ``pyqom``
and :meth:`pyqom.vm.VM.from_args`).

1. :func:`parse_command_line` - every option is checked as it comes (``-m``,
   ``-object`` and ``-device`` syntax, ids, duplicate ids); these errors carry
   the option's text as their location (``-m 1GB: Parameter 'size' ...``);
2. :func:`start` - ``-object`` backends are created (no location), then the
   machine (``-m`` fix-ups, ``machine_set_mem``, board init; no location),
   then ``-device`` cold plug (located), then the machine is ready.

Errors are :class:`StartupError`, a :class:`qom.QomError` whose ``str()`` is
QEMU's message and whose ``location`` is the option text QEMU prints first.
Warnings go to ``warn`` as the text QEMU prints after its program name.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import attrs

import qom
from devices.machine import (
    CPU_VENDOR_AMD,
    DEFAULT_PHYS_BITS,
    check_nvdimm_persistence,
    machine_smp,
    machine_type_for,
)
from devices.memory_options import fix_up_memory_options, machine_set_mem, parse_memory_option
from devices.numa import NumaOption, NumaOptionError, parse_numa_option
from devices.topology import SmpConfig, smp_options
from plugins.monitor import help_text
from plugins.monitor.chardev import Chardev, ChardevError, check_stdio_once, parse_chardev
from plugins.services import ACPI, services_of
from pyqom.chardevs import ChardevSpec, parse_chardev_option, parse_legacy_chardev
from qom.errors import QomError
from qom.keyval import qemu_opts_dict
from qom.reprs import FieldsRepr
from qom.user_creatable import check_id

if TYPE_CHECKING:
    from pathlib import Path

    from devices.memory_options import MemoryConfig
    from pyqom.vm import VM

Warn = Callable[[str], None]

#: options that take an argument
WITH_ARGUMENT = frozenset({
    "-machine", "-M", "-m", "-object", "-device", "-cpu", "-display", "-name", "-qmp",
    "-monitor", "-accel", "-global", "-dump-acpi", "-chardev", "-debugcon",
    "-kernel", "-append", "-initrd", "-smp", "-numa", "-x-record", "-x-memory-map",
    "-pidfile", "-mon", "-overcommit", "-uuid", "-rtc", "-boot", "-msg", "-sandbox",
    "-audiodev",
})
#: options without an argument
FLAGS = frozenset({"-S", "-nodefaults", "-no-acpi", "-version", "-h", "-help", "-nographic",
                   "-x-prealloc-progress", "-no-user-config", "-daemonize", "-no-shutdown",
                   "-x-check-config"})


def _boot_kernel(vm: VM, line: CommandLine, warn: Warn) -> None:
    """``-kernel``: QEMU loads it at board init (``x86_load_linux``), after RAM."""
    from devices.multiboot import KernelLoadError, boot_kernel  # only with -kernel

    assert line.kernel is not None
    try:
        booted = boot_kernel(vm.machine, line.kernel, append=line.append or "",
                             initrd=line.initrd, warn=lambda text: warn(text))
    except KernelLoadError as err:
        raise _after_monitors(StartupError(err.message, bare=err.bare)) from None
    if not booted:
        raise _after_monitors(StartupError(
            f"{line.kernel}: not a Multiboot kernel (pyqom boots Multiboot v1 kernels only)"))


class StartupError(QomError):
    """A fatal start-up error: QEMU prints ``<prog>: [<location>: ]<message>``, exits 1.

    :ivar location: the option text QEMU puts first (``-m 1GB``), or ``None``.
    """

    def __init__(self, message: str, hint: str | None = None,
                 location: str | None = None, also: tuple[str, ...] = (), *,
                 bare: bool = False) -> None:
        super().__init__(message, hint=hint)
        self.location = location
        #: printed as it is, without the program name (QEMU's ``qemu: ...`` lines)
        self.bare = bare
        #: further messages QEMU prints with the same location (a chardev's
        #: "parse error: ..." line)
        self.also = also
        #: raised after QEMU has opened its monitors (board init, ``-device``): a
        #: stdio monitor has already printed its greeting by then.
        self.monitors_open = False

    @classmethod
    def located(cls, option: str, argument: str, err: QomError) -> StartupError:
        """An error QEMU reports with the option's own text in front."""
        return cls(err.message, err.hint, f"{option} {argument}")

    @classmethod
    def unlocated(cls, err: QomError) -> StartupError:
        return cls(err.message, err.hint)

    def render(self, prog: str) -> str:
        """The stderr text: ``prog: location: message`` and the hint lines."""
        where = f"{self.location}: " if self.location else ""
        start = "" if self.bare else f"{prog}: {where}"
        # an empty message: QEMU exits having said what it had to already
        text = "".join(f"{start}{message}\n" for message in (self.message, *self.also)
                       if message)
        if self.hint:
            text += self.hint.rstrip("\n") + "\n"
        return text


@attrs.define(repr=False)
class CommandLine(FieldsRepr):
    """What the options asked for, validated as far as QEMU validates while parsing."""

    machine: str = "pc"
    max_ram_below_4g: int = 0
    acpi: bool = True
    memory_hotplug_support: bool = True
    #: ``-machine nvdimm=on`` and ``nvdimm-persistence=...``
    nvdimm: bool = False
    nvdimm_persistence: str | None = None
    memory: dict[str, str] = attrs.Factory(dict)
    phys_bits: int = DEFAULT_PHYS_BITS
    cpu_vendor: str = CPU_VENDOR_AMD
    #: (option text, QAPI-checked arguments, input) in command-line order
    objects: list[tuple[str, dict[str, Any], qom.Input]] = attrs.Factory(list)
    #: (option text, options, input) in command-line order
    devices: list[tuple[str, dict[str, Any], qom.Input]] = attrs.Factory(list)
    paused: bool = False
    name: str | None = None
    #: ``-qmp``/``-monitor`` in command-line order: (option, its text, the chardev)
    monitors: list[tuple[str, str, Chardev]] = attrs.Factory(list)
    #: each monitor's chardev id, as ``query-chardev`` labels it: QEMU's
    #: ``compat_monitorN`` for ``-qmp``/``-monitor``, the chardev's for ``-mon``
    monitor_labels: list[str] = attrs.Factory(list)
    #: where each monitor's chardev errors are located: its ``-qmp``/``-monitor``
    #: option, or for ``-mon`` the ``-chardev`` it names
    monitor_locations: list[str] = attrs.Factory(list)
    dump_acpi: str | None = None
    #: ``-chardev`` in command-line order: (its text, the parsed chardev)
    chardevs: list[tuple[str, ChardevSpec]] = attrs.Factory(list)
    #: ``-debugcon`` texts, in command-line order (each makes chardev and device
    #: ``debugcon``, so a second one fails as in QEMU)
    debugcons: list[str] = attrs.Factory(list)
    #: ``-global DRIVER.PROP=VALUE`` for devices: (option text, driver, prop, value)
    globals: list[tuple[str, str, str, str]] = attrs.Factory(list)
    #: ``-x-prealloc-progress``: say on stderr how far a preallocation of 1 GiB or
    #: more has come (a pyqom addition; QEMU says nothing)
    prealloc_progress: bool = False
    #: ``-x-check-config``: say whether the board would boot, and exit (a pyqom
    #: addition, :mod:`pyqom.check_config`)
    check_config: bool = False
    #: what a help option printed instead of a start-up: stdout text, then a
    #: stderr line (``-device nosuch,help``); pyqom then exits 0 as QEMU does
    help_text: str | None = None
    help_error: str | None = None
    #: ``-smp`` keys merged over every ``-smp`` (the later wins), as strings
    smp: dict[str, str] = attrs.Factory(dict)
    #: ``-numa`` options in command-line order
    numa: list[NumaOption] = attrs.Factory(list)
    #: ``-machine memory-backend=ID``
    memory_backend: str | None = None
    #: ``-machine hmat=on``
    hmat: bool = False
    #: the CPUs' QOM type (``-cpu MODEL``)
    cpu_type: str = "qemu64-x86_64-cpu"
    #: ``-kernel``, ``-append``, ``-initrd`` (the last of each counts, as in QEMU)
    kernel: str | None = None
    append: str | None = None
    initrd: str | None = None
    #: ``-x-record FILE``: every QMP exchange written to FILE (a pyqom addition,
    #: :mod:`plugins.monitor.record`)
    record: str | None = None
    #: ``-x-memory-map FILE``: the ready machine's memory map as SVG (a pyqom
    #: addition, :mod:`pyqom.memory_map`)
    memory_map: str | None = None
    #: ``-daemonize``: fork, the parent exits once start-up is done (:mod:`pyqom.daemon`)
    daemonize: bool = False
    #: ``-pidfile FILE``: written (and locked) before start-up goes on
    pidfile: str | None = None
    #: ``-no-shutdown``: a guest shutdown stops the VM instead of ending pyqom
    no_shutdown: bool = False
    #: ``-overcommit mem-lock=on``: all memory locked (``mlockall``) after board init
    mem_lock: bool = False
    #: ``-uuid``: the VM's UUID (``query-uuid``), lower case
    uuid: str = "00000000-0000-0000-0000-000000000000"
    #: how many of :attr:`monitors` came from ``-mon``
    mon_count: int = 0
    #: ``-msg timestamp=on``: error and warning lines start with the time
    msg_timestamp: bool = False
    #: ``-nodefaults``
    nodefaults: bool = False
    #: ``-accel NAME`` options, in order
    accelerators: list[str] = attrs.Factory(list)
    #: ``-machine accel=A:B``
    machine_accel: str | None = None


def _json_option(option: str, text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise StartupError("JSON parse error, premature EOI", location=f"{option} {text}") from None
    if not isinstance(value, dict):
        raise StartupError("Invalid parameter type, expected: dict", location=f"{option} {text}")
    return value


def parse_command_line(argv: Sequence[str], warn: Warn, registry: qom.TypeRegistry,
                       prog: str = "pyqom") -> CommandLine:
    """QEMU's option loop: every option checked as it comes, in order.

    As in QEMU, a first pass refuses unknown options and missing arguments
    wherever they are; then options apply in order.  ``-h``, ``-version``,
    ``-object ...help`` and ``-machine ...help`` answer as soon as they are
    reached (later options are not looked at); ``-cpu help`` and ``-device
    ...help`` answer after the whole line parsed (cpu help first, then the
    first device help).  Their text is ``help_text``.

    :param registry: the types ``-object`` may name.
    :raises StartupError: the first bad option, in QEMU's words.
    """
    options: list[tuple[str, str | None]] = []
    index = 0
    while index < len(argv):
        option = argv[index]
        index += 1
        if option.startswith("--"):
            option = option[1:]
        if not option.startswith("-") or option == "-":
            raise StartupError("drive images are not supported by pyqom", location=option)
        if option in FLAGS:
            options.append((option, None))
            continue
        if option not in WITH_ARGUMENT:
            raise StartupError("invalid option", location=option)
        if index >= len(argv):
            raise StartupError("requires an argument", location=option)
        options.append((option, argv[index]))
        index += 1

    line = CommandLine()
    mons: list[str] = []
    object_ids: set[str] = set()
    device_ids: set[str] = set()
    cpu_help = False
    device_help: tuple[str, str] | None = None
    for option, value in options:
        if value is None:
            if option == "-S":
                line.paused = True
            elif option == "-no-acpi":
                line.acpi = False
            elif option == "-x-prealloc-progress":
                line.prealloc_progress = True
            elif option == "-x-check-config":
                line.check_config = True
            elif option == "-version":
                line.help_text = help_text.version_text(prog)
                return line
            elif option in ("-h", "-help"):
                line.help_text = help_text.usage_text(prog)
                return line
            elif option == "-nographic":
                # Without the defaults there is no serial, parallel or monitor to
                # put on stdio: -nographic only means no display, which pyqom never
                # has.  With them, QEMU muxes a serial port pyqom does not model.
                if not any(name == "-nodefaults" for name, _ in options):
                    raise StartupError("pyqom has no serial console for -nographic; "
                                       "use -nodefaults or -display none",
                                       location="-nographic")
            elif option == "-nodefaults":
                line.nodefaults = True
            elif option == "-daemonize":
                line.daemonize = True
            elif option == "-no-shutdown":
                line.no_shutdown = True
            # -no-user-config: pyqom reads no configuration file to begin with
            continue
        if option == "-object" and (text := _object_help(value, registry)) is not None:
            line.help_text = text
            return line
        if option in ("-machine", "-M") and (text := _machine_help(value)) is not None:
            line.help_text = text
            return line
        if option == "-cpu" and _is_help(value.split(",")[0]):
            cpu_help = True
            continue
        if option == "-device" and _has_help(value):
            device_help = device_help or (option, value)
            continue
        if option == "-mon":
            _check_mon(value)
            mons.append(value)
            continue
        _apply(line, option, value, warn, registry, object_ids, device_ids)
    if line.help_text is None:
        for value in mons:
            _apply_mon(line, value)
    if cpu_help:
        line.help_text = help_text.cpu_list_text()
    elif device_help is not None:
        _device_help(line, device_help[1], registry)
    elif line.kernel is None:
        # QEMU's qemu_validate_options, once the options are read
        if line.append is not None:
            raise StartupError("-append only allowed with -kernel option")
        if line.initrd is not None:
            raise StartupError("-initrd only allowed with -kernel option")
    return line


def _is_help(text: str) -> bool:
    return text in ("help", "?")


def _has_help(text: str) -> bool:
    """An option argument asking for help: ``help``, ``?``, ``X,help``, ``help=on``,
    ``driver=help``, ``qom-type=help``."""
    if text.startswith("{"):
        return False
    for part in text.split(","):
        key, equals, value = part.partition("=")
        if _is_help(part) or (key == "help" and value == "on") or (
                equals and key in ("driver", "qom-type") and _is_help(value)):
            return True
    return False


def _implied(value: str, key: str) -> str | None:
    """What a QemuOpts string gives ``key``: ``key=...``, or a first element written
    without a key (the implied one)."""
    parts = value.split(",")
    named = next((part.removeprefix(f"{key}=") for part in parts
                  if part.startswith(f"{key}=")), None)
    if named is None and "=" not in parts[0]:
        named = parts[0]
    return named


def _object_help(value: str, registry: qom.TypeRegistry) -> str | None:
    """``-object help`` (the types) or ``-object TYPE,help`` (its properties)."""
    if not _has_help(value):
        return None
    type_name = _implied(value, "qom-type")
    if type_name is None or _is_help(type_name):
        return help_text.object_list_text(registry)
    text = help_text.object_help_text(registry, type_name)
    if text is None:
        raise StartupError(f"Parameter 'qom-type' does not accept value '{type_name}'",
                           location=f"-object {value}")
    return text


def _machine_help(value: str) -> str | None:
    """``-machine help`` (the machines) or ``-machine NAME,help`` (its properties)."""
    parts = value.split(",")
    name = parts[0] if "=" not in parts[0] else None
    if name is not None and _is_help(name):
        return help_text.machine_list_text()
    if not any(_is_help(part) or part == "help=on" for part in parts[1:]):
        return None
    try:
        type_name = machine_type_for(name or "pc")
    except QomError:
        return help_text.machine_list_text()   # QEMU lists the machines for an unknown one
    return help_text.machine_help_text(type_name)


def _device_help(line: CommandLine, value: str, registry: qom.TypeRegistry) -> None:
    driver = _implied(value, "driver")
    if driver is None or _is_help(driver):
        line.help_text = help_text.device_list_text(registry)
        return
    klass = registry.find_class(driver)
    if klass is None or not klass.is_a(qom.TYPE_DEVICE):
        line.help_text = ""
        line.help_error = f"-device {value}: Device '{driver}' not found"
        return
    line.help_text = help_text.device_help_text(qom.ObjectTree.create(registry), driver)


def _apply(line: CommandLine, option: str, value: str, warn: Warn,
           registry: qom.TypeRegistry, object_ids: set[str], device_ids: set[str]) -> None:
    try:
        if option == "-m":
            line.memory = parse_memory_option(
                value, line.memory, lambda message: warn(f"-m {value}: warning: {message}"))
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
            line.accelerators.append(accel)
        elif option == "-name":
            # process= (the thread's name) and debug-threads= are taken and
            # ignored: pyqom names its threads always
            line.name = _opts_checked(option, value, _NAME_OPTS, implied="guest").get("guest")
        elif option in ("-qmp", "-monitor"):
            _apply_monitor(line, option, value)
        elif option == "-global":
            _apply_global(line, value)
        elif option == "-dump-acpi":
            line.dump_acpi = value
        elif option == "-chardev":
            spec = parse_chardev_option(value)
            if spec.uses_stdio:
                _claim_stdio(line, option, value)
            line.chardevs.append((value, spec))
        elif option == "-debugcon":
            line.debugcons.append(value)
        elif option == "-smp":
            line.smp.update(qom.parse_keyval(value, implied_key="cpus"))
        elif option == "-numa":
            line.numa.append(parse_numa_option(value))
        elif option == "-kernel":
            line.kernel = value
        elif option == "-append":
            line.append = value
        elif option == "-initrd":
            line.initrd = value
        elif option == "-x-record":
            line.record = value
        elif option == "-x-memory-map":
            line.memory_map = value
        elif option == "-pidfile":
            line.pidfile = value
        else:
            _apply_host_option(line, option, value)
    except StartupError:
        raise
    except QomError as err:
        raise StartupError.located(option, value, err) from None


def _apply_monitor(line: CommandLine, option: str, value: str) -> None:
    """``-qmp``/``-monitor``: QEMU's chardev spec, checked as it comes (``-monitor
    none`` is no monitor)."""
    if option == "-monitor" and value == "none":
        return
    try:
        chardev = parse_chardev(value, hmp=option == "-monitor")
        check_stdio_once([chardev, *(known for _, _, known in line.monitors)])
        if chardev.kind == "stdio" and any(spec.uses_stdio for _, spec in line.chardevs):
            raise ChardevError("cannot use stdio by multiple character devices")
    except ChardevError as err:
        raise StartupError(err.lines[0], location=f"{option} {value}",
                           also=err.lines[1:]) from None
    line.monitor_labels.append(f"compat_monitor{len(line.monitors) - line.mon_count}")
    line.monitor_locations.append(f"{option} {value}")
    line.monitors.append((option, value, chardev))


def _apply_machine(line: CommandLine, value: str, warn: Warn) -> None:
    for name, raw in qemu_opts_dict(value, "type", warn).items():
        if name == "type":
            line.machine = raw
        elif name == "max-ram-below-4g":
            line.max_ram_below_4g = qom.KEYVAL.read_size(name, raw)
        elif name == "acpi":
            line.acpi = raw != "off"
        elif name == "memory-backend":
            line.memory_backend = raw
        elif name == "hmat":
            line.hmat = qom.BOOL.read(qom.KEYVAL, name, raw)
        elif name == "accel":
            line.machine_accel = raw
        elif name in ("usb", "dump-guest-core"):
            # pyqom's pc has no USB controller and dumps no guest core:
            # only the "off" libvirt asks for is true of it
            if not qom.BOOL.read(qom.KEYVAL, name, raw):
                continue
            raise StartupError(f"pyqom does not support -machine {name}=on")
        elif name == "nvdimm":
            line.nvdimm = qom.inputs.parse_bool(name, raw)
        elif name == "nvdimm-persistence":
            try:
                line.nvdimm_persistence = check_nvdimm_persistence(raw)
            except QomError as err:
                raise StartupError.unlocated(err) from None
        else:
            # QEMU applies machine properties after parsing, so no option text.
            try:
                type_name = machine_type_for(line.machine)
            except QomError as err:
                raise StartupError.unlocated(err) from None
            raise StartupError(f"Property '{type_name}.{name}' not found")


#: the spellings of a boolean QEMU's ``qapi_bool_parse`` takes
_TRUE = ("on", "yes", "true", "y")
_FALSE = ("off", "no", "false", "n")


def _opts_checked(option: str, value: str, known: dict[str, str],
                  implied: str | None = None) -> dict[str, str]:
    """A QemuOpts option checked against its description (``known``: name to
    ``bool``, ``str`` or ``uuid``), with QEMU's messages, located at the option."""
    result: dict[str, str] = {}
    for opt in qom.parse_qemu_opts(value, implied_key=implied):
        kind = known.get(opt.name)
        if kind is None:
            raise StartupError(f"Invalid parameter '{opt.name}'", location=f"{option} {value}")
        if kind == "bool" and opt.value not in _TRUE + _FALSE:
            raise StartupError(f"Parameter '{opt.name}' expects 'on' or 'off'",
                               location=f"{option} {value}")
        if kind == "bool":
            result[opt.name] = "on" if opt.value in _TRUE else "off"
        else:
            result[opt.name] = opt.value
    return result


def _unsupported(option: str, value: str, what: str) -> StartupError:
    return StartupError(f"pyqom does not support {what}", location=f"{option} {value}")


#: ``-name``'s QemuOpts description (``qemu_name_opts``)
_NAME_OPTS = {"guest": "str", "process": "str", "debug-threads": "bool"}
#: ``-rtc``'s QemuOpts description (``qemu_rtc_opts``)
_RTC_OPTS = {"base": "str", "clock": "str", "driftfix": "str"}
#: ``-boot``'s keys (QAPI ``BootConfiguration``, the machine's ``boot``)
_BOOT_KEYS = ("order", "once", "menu", "splash", "splash-time", "reboot-timeout", "strict")


def _apply_host_option(line: CommandLine, option: str, value: str) -> None:
    """The options that describe the host process rather than the machine
    (what libvirt passes): honoured where pyqom can, else refused in words."""
    if option == "-overcommit":
        # cpu-pm only matters to KVM: under TCG QEMU takes and ignores it too
        opts = _opts_checked(option, value, {"mem-lock": "bool", "cpu-pm": "bool"})
        line.mem_lock = opts.get("mem-lock", "off") == "on"
    elif option == "-uuid":
        line.uuid = _parse_uuid(value)
    elif option == "-rtc":
        opts = _opts_checked(option, value, _RTC_OPTS)
        # pyqom has no RTC device: only QEMU's defaults are true of it
        for name, default in (("base", "utc"), ("clock", "host")):
            if opts.get(name, default) != default:
                raise _unsupported(option, value, f"-rtc {name}={opts[name]} (it has no RTC)")
        if "driftfix" in opts:
            raise _unsupported(option, value, "-rtc driftfix (it has no RTC)")
    elif option == "-boot":
        _apply_boot(value)
    elif option == "-msg":
        opts = _opts_checked(option, value, {"timestamp": "bool", "guest-name": "bool"})
        if opts.get("guest-name") == "on":
            raise _unsupported(option, value, "-msg guest-name=on")
        line.msg_timestamp = opts.get("timestamp") == "on"
    elif option == "-sandbox":
        # pyqom applies no seccomp filter: as a QEMU built without seccomp
        raise StartupError("-sandbox support is not enabled in this QEMU binary",
                           location=f"{option} {value}")
    elif option == "-audiodev":
        _apply_audiodev(option, value)


def _apply_boot(value: str) -> None:
    """``-boot``: keyval, merged into the machine's ``boot`` property, whose errors
    QEMU reports without the option (``Parameter 'boot.strict' expects ...``).
    pyqom has no firmware and boots only ``-kernel``: of a boot order that does
    not exist only ``strict`` can be given."""
    for name, raw in qom.parse_keyval(value, implied_key="order").items():
        if name not in _BOOT_KEYS:
            raise StartupError(f"Parameter 'boot.{name}' is unexpected")
        if name != "strict":
            raise StartupError(f"pyqom does not support -boot {name} (it has no firmware)")
        try:
            qom.BOOL.read(qom.KEYVAL, f"boot.{name}", raw)
        except QomError as err:
            raise StartupError.unlocated(err) from None


def _parse_uuid(value: str) -> str:
    """``qemu_uuid_parse``: 8-4-4-4-12 hex digits."""
    import re

    if not re.fullmatch(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}", value):
        raise StartupError("failed to parse UUID string: wrong format",
                           location=f"-uuid {value}")
    return value.lower()


def _apply_audiodev(option: str, value: str) -> None:
    """``-audiodev``: pyqom has no sound card, so only the ``none`` driver (no
    host audio) is true of it."""
    if value.startswith("{"):
        arguments = _json_option(option, value)
    else:
        arguments = dict(qemu_opts_dict(value, "driver"))
    driver = arguments.get("driver")
    if driver is None:
        raise StartupError("Parameter 'driver' is missing", location=f"{option} {value}")
    if "id" not in arguments:
        raise StartupError("Parameter 'id' is missing", location=f"{option} {value}")
    if driver != "none":
        raise _unsupported(option, value, f"the audio driver '{driver}' (only none)")


#: ``-mon``'s QemuOpts description (``qemu_mon_opts``)
_MON_OPTS = {"mode": "str", "chardev": "str", "pretty": "bool", "id": "str"}


def _check_mon(value: str) -> None:
    """``-mon`` as QEMU parses it when it comes (the chardev is found later)."""
    opts = _opts_checked("-mon", value, _MON_OPTS, implied="chardev")
    if opts.get("mode", "readline") not in ("readline", "control"):
        raise StartupError(f"Parameter 'mode' does not accept value '{opts['mode']}'",
                           location=f"-mon {value}")
    if opts.get("pretty") == "on":
        raise _unsupported("-mon", value, "pretty=on")


def _apply_mon(line: CommandLine, value: str) -> None:
    """``-mon chardev=ID,mode=control|readline``: the monitor takes the socket of
    ``-chardev ...,id=ID`` (the chardev is the monitor's, not a device's)."""
    opts = _opts_checked("-mon", value, _MON_OPTS, implied="chardev")
    chardev_id = opts.get("chardev")
    if chardev_id is None:
        raise StartupError("Parameter 'chardev' is missing", location=f"-mon {value}")
    found = [entry for entry in line.chardevs if entry[1].id == chardev_id]
    if not found:
        raise StartupError(f'chardev "{chardev_id}" not found', location=f"-mon {value}")
    spec = found[0][1]
    hmp = opts.get("mode", "readline") == "readline"
    if spec.socket is None:
        raise _unsupported("-mon", value, f"a monitor on a {spec.backend} chardev")
    line.chardevs.remove(found[0])
    line.monitor_labels.append(chardev_id)
    line.monitor_locations.append(f"-chardev {found[0][0]}")
    line.mon_count += 1
    line.monitors.append(("-monitor" if hmp else "-qmp", value, spec.socket))


def _apply_cpu(line: CommandLine, value: str, warn: Warn) -> None:
    options = qemu_opts_dict(value, "model", warn)
    model = options.pop("model", "qemu64")
    if model not in ("qemu64", "max"):
        raise StartupError(f"unable to find CPU model '{model}'")
    line.cpu_type = f"{model}-x86_64-cpu"
    for name, raw in options.items():
        if name == "vendor":
            # QEMU's x86_cpuid_set_vendor: twelve characters
            if len(raw) != 12:
                raise StartupError(f"can't apply global {model}-x86_64-cpu.{name}={raw}: "
                                   f"Property '.vendor' doesn't take value '{raw}'")
            line.cpu_vendor = raw
            continue
        if name != "phys-bits":
            raise StartupError(f"can't apply global {model}-x86_64-cpu.{name}={raw}: "
                               f"Property '{model}-x86_64-cpu.{name}' not found")
        line.phys_bits = qom.UINT32.read(qom.KEYVAL, name, raw)


def _apply_global(line: CommandLine, value: str) -> None:
    """``-global DRIVER.PROP=VALUE``: PIIX4_PM's memory-hotplug switch, or a
    device property applied when a device of that type is created."""
    driver_prop, equals, setting = value.partition("=")
    driver, dot, prop = driver_prop.partition(".")
    if not equals or not dot:
        raise StartupError(f"Invalid parameter '{driver_prop}'", location=f"-global {value}")
    if driver_prop == "PIIX4_PM.memory-hotplug-support":
        line.memory_hotplug_support = qom.inputs.parse_bool("memory-hotplug-support", setting)
        return
    line.globals.append((value, driver, prop, setting))


def _claim_stdio(line: CommandLine, option: str, value: str) -> None:
    """stdio serves one chardev: a monitor or a device's, not both."""
    if _stdio_taken(line):
        raise StartupError("cannot use stdio by multiple character devices",
                           location=f"{option} {value}")


def _parse_object(value: str, warn: Warn, registry: qom.TypeRegistry,
                  seen: set[str]) -> tuple[str, dict[str, Any], qom.Input]:
    """``-object``: QemuOpts (id form, duplicates) or JSON, then the QAPI check, located."""
    source: qom.Input
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


def _parse_device(value: str, warn: Warn,
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


def _objects_and_chardevs(vm: VM, line: CommandLine, warn: Warn,
                          machine_options: Callable[[], SmpConfig] | None = None
                          ) -> SmpConfig | None:
    """QEMU's order: thread-context objects ("pre-sandbox"), the other early
    objects, the chardevs, then ``machine_options`` (the ``-global``s and the
    machine's ``smp`` property; its topology is returned), then the objects
    created late (memory backends, rng-egd), all before its monitors."""
    _add_objects(vm, line, _pre_sandbox)
    _add_objects(vm, line, _created_early)
    for text, spec in line.chardevs:
        try:
            vm.chardevs.open(spec, info=_located(warn, f"-chardev {text}"))
        except QomError as err:
            raise StartupError(str(err), location=f"-chardev {text}") from None
    smp = machine_options() if machine_options is not None else None
    _add_objects(vm, line, _created_late)
    return smp


def _pre_sandbox(qom_type: str) -> bool:
    """QEMU's ``object_create_pre_sandbox``: thread contexts come first."""
    return qom_type == "thread-context"


def _created_late(qom_type: str) -> bool:
    """QEMU's late objects (``object_create_early`` is false): memory backends
    may use thread contexts and rng-egd a chardev, so they come after those."""
    return qom_type.startswith("memory-backend-") or qom_type == "rng-egd"


def _created_early(qom_type: str) -> bool:
    return not _pre_sandbox(qom_type) and not _created_late(qom_type)


def _add_objects(vm: VM, line: CommandLine, wanted: Callable[[str], bool]) -> None:
    """``object_option_foreach_add``: the ``-object``s of one kind, in command-line order."""
    for _, arguments, source in line.objects:
        if not wanted(str(arguments.get("qom-type", ""))):
            continue
        try:
            qom.object_add(vm.tree, arguments, source)
        except QomError as err:
            raise StartupError.unlocated(err) from None


def _after_monitors(error: StartupError) -> StartupError:
    """Mark an error QEMU raises once its monitors are open (``qemu_init_board`` on)."""
    error.monitors_open = True
    return error


def configure_accelerators(line: CommandLine, warn: Warn) -> str:
    """QEMU's ``configure_accelerators`` for a build whose only accelerator is
    TCG (pyqom's CPU is Unicorn, QEMU's TCG): the others are "invalid", and the
    first usable one is taken with QEMU's "falling back" line.

    :returns: the accelerator (``tcg``).
    :raises StartupError: none usable, or both ``-accel`` and ``accel=``.
    """
    if line.accelerators and line.machine_accel is not None:
        raise StartupError('The -accel and "-machine accel=" options are incompatible')
    chosen = None
    failed = False
    if line.accelerators:
        # -accel options: each one tried in turn, its errors located at it
        for name in line.accelerators:
            if name == "tcg":
                chosen = name
                break
            failed = True
            warn(f"-accel {name}: invalid accelerator {name}")
    else:
        # "-machine accel=A:B": the unknown names are filtered out first
        names = (line.machine_accel or "tcg").split(":")
        for name in names:
            if name != "tcg":
                failed = True
                warn(f"invalid accelerator {name}")
        chosen = "tcg" if "tcg" in names else None
    if chosen is None:
        # QEMU says "no accelerator found" only when nothing failed before
        raise StartupError("" if failed else "no accelerator found")
    if failed:
        warn(f"falling back to {chosen}")
    return chosen


def start(vm: VM, line: CommandLine, warn: Warn) -> None:
    """Objects, machine, devices, in QEMU's order; errors located as QEMU locates them."""
    configure_accelerators(line, warn)
    vm.uuid = line.uuid
    try:
        # QEMU's none machine has no default RAM size
        config = machine_set_mem(fix_up_memory_options(
            line.memory, lambda message: warn(f"warning: {message}")),
            **({"default_ram_size": 0} if line.machine == "none" else {}))
    except QomError as err:
        raise StartupError.unlocated(err) from None
    if line.machine == "none":
        _start_none_machine(vm, line, config, warn)
        return
    try:
        def machine_options() -> SmpConfig:
            _check_globals(vm, line, warn)
            try:
                return machine_smp(line.machine, smp_options(line.smp),
                                   lambda message: warn(f"warning: {message}"))
            except QomError as err:
                raise StartupError.unlocated(err) from None

        smp = _objects_and_chardevs(vm, line, warn, machine_options)
        assert smp is not None
        for index, text in enumerate(line.debugcons):
            _open_debugcon(vm, line, text, first=index == 0, warn=warn)
        try:
            vm.create_machine(config, machine=line.machine, phys_bits=line.phys_bits,
                              cpu_vendor=line.cpu_vendor,
                              max_ram_below_4g=line.max_ram_below_4g, acpi=line.acpi,
                              memory_hotplug_support=line.memory_hotplug_support, smp=smp,
                              numa_options=line.numa, memory_backend=line.memory_backend,
                              custom_ram_size="size" in line.memory, hmat=line.hmat,
                              cpu_type=line.cpu_type, warn=warn, nvdimm=line.nvdimm,
                              nvdimm_persistence=line.nvdimm_persistence)
        except NumaOptionError as err:
            raise _after_monitors(StartupError(err.message, err.hint,
                                               location=f"-numa {err.option}")) from None
        except QomError as err:
            raise _after_monitors(StartupError.unlocated(err)) from None
        if line.kernel is not None:
            _boot_kernel(vm, line, warn)
        if line.mem_lock:
            _lock_memory(warn)
        for text, options, source in line.devices:
            try:
                qom.device_add(vm.tree, options, source)
            except QomError as err:
                raise _after_monitors(StartupError.located("-device", text, err)) from None
        for text in line.debugcons:
            _add_debugcon(vm, text)
        vm.machine_ready(paused=line.paused)
        if line.dump_acpi is not None:
            dump_acpi_tables(vm.machine, line.dump_acpi)
        if line.memory_map is not None:
            write_memory_map(vm.machine, line.memory_map)
    except BaseException:
        vm.shutdown_reason = "host-error"
        vm.close()
        raise


def _lock_memory(warn: Warn) -> None:
    """``-overcommit mem-lock=on`` (QEMU's ``realtime_init``, after board init):
    ``mlockall(MCL_CURRENT | MCL_FUTURE)``, or QEMU's two lines and exit 1."""
    import ctypes
    import os

    libc = ctypes.CDLL(None, use_errno=True)
    mcl_current, mcl_future = 1, 2          # <sys/mman.h> on Linux
    if libc.mlockall(mcl_current | mcl_future) != 0:
        warn(f"mlockall: {os.strerror(ctypes.get_errno())}")
        raise _after_monitors(StartupError("locking memory failed"))


def _start_none_machine(vm: VM, line: CommandLine, config: MemoryConfig, warn: Warn) -> None:
    """``-machine none``: objects, then an empty ``/machine``; nothing else fits on
    it (pyqom refuses what would need RAM or a CPU)."""
    for option, given in (("-smp", bool(line.smp)), ("-numa", bool(line.numa)),
                          ("-kernel", line.kernel is not None), ("-device", bool(line.devices)),
                          ("-debugcon", bool(line.debugcons))):
        if given:
            raise StartupError(f"pyqom's none machine takes no {option}")
    try:
        _objects_and_chardevs(vm, line, warn)
        try:
            vm.create_none_machine(config)
        except QomError as err:
            raise _after_monitors(StartupError.unlocated(err)) from None
        vm.machine_ready(paused=line.paused)
    except BaseException:
        vm.shutdown_reason = "host-error"
        vm.close()
        raise


def dump_acpi_tables(machine: qom.Object, directory: str | Path) -> list[Path]:
    """``-dump-acpi DIR``: write each current table as ``DIR/SIG.dat`` (a second
    table of one signature as ``SIG.1.dat``...); returns the files written."""
    state = services_of(machine).find(ACPI)
    if state is None:
        return []
    from pathlib import Path  # only -dump-acpi needs it

    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    seen: dict[str, int] = {}
    for signature, data in state.tables():
        count = seen.get(signature, 0)
        seen[signature] = count + 1
        path = target / (f"{signature}.{count}.dat" if count else f"{signature}.dat")
        path.write_bytes(data)
        written.append(path)
    return written


def write_memory_map(machine: qom.Object, path: str) -> None:
    """``-x-memory-map FILE``: the ready machine's guest-physical map as SVG."""
    from devices.machine import PcMachine
    from pyqom.memory_map import memory_map, render_svg  # only with -x-memory-map

    assert isinstance(machine, PcMachine)
    try:
        with open(path, "w", encoding="utf-8") as out:
            out.write(render_svg(memory_map(machine)))
    except OSError as err:
        raise StartupError(f"Could not open '{path}': {err.strerror}",
                           location=f"-x-memory-map {path}") from None


def _check_globals(vm: VM, line: CommandLine, warn: Warn) -> None:
    """Globals for devices go to the tree; QEMU warns (once the machine starts)
    about a driver that names no device type, and ignores it."""
    for _, driver, prop, setting in line.globals:
        klass = vm.tree.registry.find_class(driver)
        if klass is None or not klass.is_a(qom.TYPE_DEVICE):
            warn(f"warning: global {driver}.{prop} has invalid class name")
            continue
        vm.tree.globals.append((driver, prop, setting))


def _stdio_taken(line: CommandLine) -> bool:
    """Whether a monitor or a ``-chardev`` uses stdio already."""
    return (any(chardev.kind == "stdio" for _, _, chardev in line.monitors)
            or any(spec.uses_stdio for _, spec in line.chardevs))


def _located(warn: Warn, location: str) -> Callable[[str], None]:
    """``warn`` with QEMU's ``-option text: `` in front (a socket's waiting line)."""
    def say(message: str) -> None:
        warn(f"{location}: {message}")

    return say


def _open_debugcon(vm: VM, line: CommandLine, text: str, *, first: bool,
                   warn: Warn) -> None:
    """``-debugcon``, first half (QEMU's late back ends, before board init): chardev
    ``debugcon``, and the device's id checked against the ``-device`` ids.

    :param first: no ``-debugcon`` came before (a second one clashes with the
        first one's chardev in QEMU's container, not with a ``-chardev``).
    """
    location = f"-debugcon {text}"
    try:
        spec = parse_legacy_chardev("debugcon", text)
        if spec.id in vm.chardevs.ids():
            raise QomError("Duplicate ID 'debugcon' for chardev" if first else
                           "attempt to add duplicate property 'debugcon' to object "
                           "(type 'container')")
        if spec.uses_stdio and _stdio_taken(line):
            raise QomError("cannot use stdio by multiple character devices")
        vm.chardevs.open(spec, info=_located(warn, location))
    except QomError as err:
        raise StartupError(str(err), location=location,
                           also=(f"invalid character backend '{text}'",)) from None
    if any(options.get("id") == "debugcon" for _, options, _ in line.devices):
        raise StartupError("already have a debugcon device", location=location)


def _add_debugcon(vm: VM, text: str) -> None:
    """``-debugcon``, second half: ``isa-debugcon,id=debugcon,chardev=debugcon``,
    after every ``-device``."""
    location = f"-debugcon {text}"
    try:
        qom.device_add(vm.tree, {"driver": "isa-debugcon", "id": "debugcon",
                                 "chardev": "debugcon"})
    except QomError as err:
        raise _after_monitors(StartupError(str(err), location=location)) from None
