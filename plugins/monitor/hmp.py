"""HMP: QEMU 7.2's human monitor, its line parser and its output byte for byte.

:class:`HmpSession` runs lines the way ``monitor/hmp.c`` does:

* the command name runs to the first space or ``/``; an unknown one prints
  ``unknown command: '<line up to the name>'``; ``info`` looks its
  subcommand up the same way;
* arguments follow the command's ``args_type`` (``s`` string, quoted or
  not; ``S`` rest of line; ``O`` QemuOpts; ``-x`` flag); a parse error
  prints ``<name>: string expected`` (or ``extraneous characters at the end
  of line``...) and ``Try "help <command>" for more information``;
* a command's error prints ``Error: <message>`` and each hint line;
* all output uses CRLF line ends.

The same session class serves ``human-monitor-command`` (``hosted``: what
QEMU prints on stderr while parsing goes to the process's stderr without a
program prefix) and an interactive HMP monitor (banner and ``(qemu)``
prompts; stderr lines carry the program prefix, as QEMU's do).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import qom
from devices.numa import node_memory
from plugins.commands import HmpCommand
from plugins.monitor import qjson
from plugins.monitor.commands import QEMU_VERSION, guest_reader, package_string
from plugins.monitor.control import VmControl
from plugins.monitor.help_text import (
    device_help_text,
    device_list_text,
    object_help_text,
    object_list_text,
)
from plugins.monitor.memdump import MonitorArgumentError, memory_dump, parse_expression
from plugins.monitor.readline import Readline
from plugins.services import GUEST_CPU, services_of
from qom.device import SLOT_HOTPLUGGABLE, SLOT_USER_CREATABLE
from qom.logs import LazyLogger
from qom.qdict import qdict_ordered_deep

log = LazyLogger(__name__)

#: QEMU's get_str buffer (1024 bytes with the NUL): longer words are cut.
_STR_BUFFER = 1023
#: QEMU's MAX_ARGS: words of a command line that Tab completion looks at
_MAX_ARGS = 16

BANNER_VERSION = "{major}.{minor}.{micro}".format(**QEMU_VERSION)


class _ParseFailure(Exception):
    """An argument-parsing error; its text was already printed."""


def banner() -> str:
    """The greeting an interactive HMP monitor prints first, with its ``(qemu) `` prompt."""
    return (f"QEMU {BANNER_VERSION} monitor - type 'help' for more information\r\n"
            "(qemu) ")


class HmpSession:
    """One HMP monitor (or one ``human-monitor-command`` call).

    :param control: the VM's shared monitor state.
    :param hosted: run inside QMP ``human-monitor-command``.
    :param stderr: where QEMU's stderr text goes (defaults to ``sys.stderr``).
    :param prog: the program name QEMU prefixes stderr lines with.
    """

    def __init__(self, control: VmControl, *, hosted: bool = False,
                 stderr: Callable[[str], Any] | None = None, prog: str = "pyqom") -> None:
        self.control = control
        self.hosted = hosted
        self._stderr = stderr if stderr is not None else sys.stderr.write
        self.prog = prog
        self._out: list[str] = []

    # -- output ----------------------------------------------------------

    def print(self, text: str) -> None:
        """Print to the monitor; ``\\n`` becomes ``\\r\\n`` as QEMU's monitor_puts does."""
        self._out.append(text.replace("\n", "\r\n"))

    def take_output(self) -> str:
        """Everything printed since the last call."""
        text = "".join(self._out)
        self._out.clear()
        return text

    def banner(self) -> str:
        """The greeting an interactive HMP monitor prints first (with its prompt)."""
        return banner()

    @staticmethod
    def prompt() -> str:
        return "(qemu) "

    def report_error(self, err: qom.QomError) -> None:
        """QEMU's ``hmp_handle_error``: ``Error: <msg>`` and the hint lines."""
        self.print(f"Error: {err}\n")
        if err.hint:
            self.print(err.hint.rstrip("\n") + "\n")

    def report_noisily(self, err: qom.QomError) -> None:
        """``error_report_err`` while parsing arguments: the process's stderr.

        Hosted in QMP the current monitor is the QMP one, so QEMU prints no
        program name; from a real HMP monitor it does.
        """
        prefix = "" if self.hosted else f"{self.prog}: "
        text = prefix + str(err) + "\n"
        if err.hint:
            text += err.hint.rstrip("\n") + "\n"
        self._stderr(text)

    # -- running lines ---------------------------------------------------------

    def run_line(self, line: str) -> None:
        """Parse and run one command line, printing what QEMU prints."""
        table = self.control.commands
        command, pos = self._find_command(line, 0, info=False)
        if command is None:
            return
        if command.name == "info" and pos < len(line):
            command, pos = self._find_command(line, pos, info=True)
            if command is None:
                return
        try:
            args, _ = self._parse_arguments(command, line, pos)
        except _ParseFailure:
            end = pos
            while end > 0 and line[end - 1].isspace():
                end -= 1
            self.print(f'Try "help {line[:end]}" for more information\n')
            return
        del table
        try:
            command.handler(self, args)
        except qom.QomError as err:
            self.report_error(err)

    def _find_command(self, line: str, pos: int, *, info: bool
                      ) -> tuple[HmpCommand | None, int]:
        while pos < len(line) and line[pos].isspace():
            pos += 1
        if pos >= len(line):
            return None, pos
        start = pos
        while pos < len(line) and line[pos] != "/" and not line[pos].isspace():
            pos += 1
        name = line[start:pos]
        command = self.control.commands.find_hmp(name, info=info)
        if command is None:
            self.print(f"unknown command: '{line[:pos]}'\n")
            return None, pos
        while pos < len(line) and line[pos].isspace():
            pos += 1
        return command, pos

    def _fail(self, command: HmpCommand, message: str) -> _ParseFailure:
        self.print(f"{command.name}: {message}\n")
        return _ParseFailure()

    def _parse_arguments(self, command: HmpCommand, line: str,
                         pos: int) -> tuple[dict[str, Any], int]:
        """QEMU's ``monitor_parse_arguments`` for the types pyqom's commands use."""
        args: dict[str, Any] = {}
        for spec in filter(None, command.args_type.split(",")):
            key, _, kind = spec.partition(":")
            optional = kind.endswith("?")
            kind = kind.rstrip("?")
            while pos < len(line) and line[pos].isspace():
                pos += 1
            if kind == "s":
                if optional and pos >= len(line):
                    continue
                value, pos = self._get_str(line, pos)
                if value is None:
                    raise self._fail(command, "string expected")
                args[key] = value
            elif kind == "S":
                if optional and pos >= len(line):
                    continue
                if pos >= len(line):
                    raise self._fail(command, "string expected")
                args[key] = line[pos:]
                pos = len(line)
            elif kind == "O":
                if pos >= len(line):
                    continue
                value, pos = self._get_str(line, pos)
                if value is None:
                    raise _ParseFailure()
                try:
                    args[key] = _parse_device_opts(value)
                except qom.QomError as err:
                    self.report_noisily(err)
                    raise _ParseFailure() from None
            elif kind == "/":
                try:
                    args[key], pos = self.control.dump_format.parse(line, pos)
                except MonitorArgumentError as err:
                    self.print(f"{err}\n")
                    raise _ParseFailure() from None
            elif kind in ("l", "i"):
                if optional and pos >= len(line):
                    continue
                try:
                    number, pos = parse_expression(line, pos, self._register)
                except MonitorArgumentError as err:
                    self.print(f"{err}\n")
                    raise _ParseFailure() from None
                if kind == "i" and (number >> 32) & 0xFFFFFFFF:
                    self.print(f"'{command.name.split('|')[0]}' has failed: "
                               "integer is for 32-bit values\n")
                    raise _ParseFailure()
                args[key] = number
            elif kind.startswith("-"):
                flag = kind[1:]
                if pos < len(line) and line[pos] == "-":
                    if line[pos + 1:pos + 2] != flag:
                        shown = line[pos + 1:pos + 2]
                        raise self._fail(command, f"unsupported option -{shown}")
                    args[key] = True
                    pos += 2
            else:
                raise ValueError(f"unsupported HMP argument type {kind!r}")
        while pos < len(line) and line[pos].isspace():
            pos += 1
        if pos < len(line):
            raise self._fail(command, "extraneous characters at the end of line")
        return args, pos

    def _register(self, name: str) -> int | None:
        """``$name`` in an expression: QEMU's x86 monitor registers."""
        register = _MONITOR_REGISTERS.get(name)
        machine = getattr(self.control.vm, "machine", None)
        cpu = services_of(machine).find(GUEST_CPU) if machine is not None else None
        if register is None or cpu is None:
            return None
        return cpu.reg_read(register)

    def _get_str(self, line: str, pos: int) -> tuple[str | None, int]:
        return get_str(line, pos, self._stderr)

    # -- completion --------------------------------------------------------

    def completions(self, text: str) -> tuple[list[str], int]:
        """QEMU's ``monitor_find_completion``: the Tab candidates for ``text`` (the
        line before the cursor) and the length of the word they complete."""
        words: list[str] = []
        pos = 0
        while True:
            while pos < len(text) and text[pos].isspace():
                pos += 1
            if pos >= len(text):
                break
            if len(words) >= _MAX_ARGS:
                return [], 0
            word, pos = get_str(text, pos, lambda message: None)
            if word is None:
                return [], 0
            words.append(word)
        if text and text[-1].isspace():
            if len(words) >= _MAX_ARGS:
                return [], 0
            words.append("")
        return self._complete_in(words, info=False)

    def _complete_in(self, words: list[str], *, info: bool) -> tuple[list[str], int]:
        table = self.control.commands
        if len(words) <= 1:
            prefix = words[0] if words else ""
            names = [name for command in table.hmp_commands(info=info)
                     for name in command.name.split("|") if name.startswith(prefix)]
            return names, len(prefix)
        command = table.find_hmp(words[0], info=info)
        if command is None:
            return [], 0
        if command.name == "info" and not info:
            return self._complete_in(words[1:], info=True)
        word = words[-1]
        if command.completion is not None:
            return command.completion(self, len(words), word), len(word)
        kinds = [spec.partition(":")[2] for spec in filter(None, command.args_type.split(","))]
        kinds = [kind for kind in kinds if not kind.startswith("-")]
        kind = kinds[len(words) - 2] if len(words) - 2 < len(kinds) else ""
        if kind.rstrip("?") in ("s", "S") and command.name == "help|?":
            return self._complete_in(words[1:], info=False)
        return [], 0


def get_str(line: str, pos: int, report: Callable[[str], Any]) -> tuple[str | None, int]:
    """QEMU's ``get_str``: a word, or a double-quoted string with escapes; problems
    go to ``report`` and give ``None``."""
    while pos < len(line) and line[pos].isspace():
        pos += 1
    if pos >= len(line):
        return None, pos
    out: list[str] = []
    if line[pos] == '"':
        pos += 1
        while pos < len(line) and line[pos] != '"':
            char = line[pos]
            if char == "\\":
                escaped = line[pos + 1:pos + 2]
                pos += 2
                mapped = {"n": "\n", "r": "\r", "\\": "\\", "'": "'", '"': '"'}.get(escaped)
                if mapped is None:
                    report(f"unsupported escape code: '\\{escaped}'\n")
                    return None, pos
                out.append(mapped)
            else:
                out.append(char)
                pos += 1
        if pos >= len(line):
            report("unterminated string\n")
            return None, pos
        pos += 1
    else:
        start = pos
        while pos < len(line) and not line[pos].isspace():
            pos += 1
        out.append(line[start:pos])
    return "".join(out)[:_STR_BUFFER], pos


def _parse_device_opts(text: str) -> dict[str, str]:
    """``-device``-style QemuOpts (implied key ``driver``), id checked as QemuOpts does."""
    options: dict[str, str] = {}
    for opt in qom.parse_qemu_opts(text, implied_key="driver"):
        options[opt.name] = opt.value
    if "id" in options:
        qom.check_id(options["id"])
    return options


# ---------------------------------------------------------------------------
# Formatting helpers
# ---------------------------------------------------------------------------


def format_node_list(nodes: list[int]) -> str:
    """QEMU's string output visitor for an int list: ranges like ``0-2,5,7-8``."""
    parts: list[str] = []
    index = 0
    ordered = sorted(set(nodes))
    while index < len(ordered):
        start = end = ordered[index]
        while index + 1 < len(ordered) and ordered[index + 1] == end + 1:
            index += 1
            end = ordered[index]
        parts.append(str(start) if start == end else f"{start}-{end}")
        index += 1
    return ",".join(parts)


def _bool(value: bool) -> str:
    return "true" if value else "false"


# ---------------------------------------------------------------------------
# The built-in HMP commands
# ---------------------------------------------------------------------------


def hmp_help(session: HmpSession, args: dict[str, Any]) -> None:
    """``help [cmd]``: QEMU's ``help_cmd``."""
    words = args.get("name", "").split()
    table = session.control.commands
    if not words:
        for command in table.hmp_commands():
            session.print(f"{command.name} {command.params} -- {command.help}\n")
        return
    found = table.find_hmp(words[0])
    if found is None:
        session.print(f"unknown command: '{words[0]}'\n")
        return
    command = found
    if command.name != "info":
        session.print(f"{command.name} {command.params} -- {command.help}\n")
        return
    if len(words) == 1:
        _info_help(session)
        return
    sub = table.find_hmp(words[1], info=True)
    if sub is None:
        session.print(f"unknown command: 'info {words[1]}'\n")
        return
    session.print(f"info {sub.name} {sub.params} -- {sub.help}\n")


def _info_help(session: HmpSession) -> None:
    for command in session.control.commands.hmp_commands(info=True):
        session.print(f"info {command.name} {command.params} -- {command.help}\n")


def hmp_info(session: HmpSession, args: dict[str, Any]) -> None:
    """``info`` alone lists its subcommands."""
    _info_help(session)


def hmp_quit(session: HmpSession, args: dict[str, Any]) -> None:
    """``quit``: the same as QMP ``quit``."""
    session.control.execute("quit")


def hmp_stop(session: HmpSession, args: dict[str, Any]) -> None:
    session.control.execute("stop")


def hmp_cont(session: HmpSession, args: dict[str, Any]) -> None:
    session.control.execute("cont")


#: QEMU's x86 ``monitor_defs``: the names ``$NAME`` takes (the full 64-bit
#: registers under their 32-bit names, as QEMU's x86-64 build has them)
_MONITOR_REGISTERS: dict[str, str] = {
    "eax": "rax", "ecx": "rcx", "edx": "rdx", "ebx": "rbx", "esp": "rsp", "sp": "rsp",
    "ebp": "rbp", "fp": "rbp", "esi": "rsi", "edi": "rdi",
    **{f"r{number}": f"r{number}" for number in range(8, 16)},
    "eflags": "rflags", "eip": "rip", "pc": "rip",
}


def _dump(session: HmpSession, args: dict[str, Any], *, virtual: bool) -> None:
    count, format_, size = args["fmt"]
    read = guest_reader(session.control, virtual=virtual)
    if read is None:
        if virtual:
            session.print("Can not dump without CPU\n")
            return
        read = lambda address, length: None  # noqa: E731  # nothing is mapped
    session.print(memory_dump(count, format_, size, args["addr"], read))


def hmp_x(session: HmpSession, args: dict[str, Any]) -> None:
    """``x /fmt addr``: guest-virtual memory."""
    _dump(session, args, virtual=True)


def hmp_xp(session: HmpSession, args: dict[str, Any]) -> None:
    """``xp /fmt addr``: guest-physical memory."""
    _dump(session, args, virtual=False)


def hmp_info_registers(session: HmpSession, args: dict[str, Any]) -> None:
    """``info registers [-a|vcpu]``: the one CPU's state, as QEMU prints it."""
    machine = getattr(session.control.vm, "machine", None)
    cpu = services_of(machine).find(GUEST_CPU) if machine is not None else None
    vcpu = args.get("vcpu")
    if vcpu is not None and vcpu != 0:
        session.print(f"CPU#{vcpu} not available\n")
        return
    if cpu is None:
        session.print("No CPU available\n")
        return
    from plugins.monitor.registers import dump_state

    session.print("\nCPU#0\n" + dump_state(cpu.cpu_state(), halted=cpu.halted))


def hmp_system_powerdown(session: HmpSession, args: dict[str, Any]) -> None:
    session.control.execute("system_powerdown")


def hmp_pmemsave(session: HmpSession, args: dict[str, Any]) -> None:
    session.control.execute("pmemsave", {"val": args["val"], "size": args["size"],
                                         "filename": args["filename"]})


def hmp_memsave(session: HmpSession, args: dict[str, Any]) -> None:
    session.control.execute("memsave", {"val": args["val"], "size": args["size"],
                                        "filename": args["filename"]})


def hmp_object_add(session: HmpSession, args: dict[str, Any]) -> None:
    """``object_add``: keyval (``qom-type`` implied) or a JSON object."""
    text: str = args["object"]
    if text.startswith("{"):
        try:
            arguments = qjson.parse_one(text)
        except qjson.JsonParseError as err:
            raise qom.QomError(str(err)) from None
        if not isinstance(arguments, dict):
            raise qom.QomError("Invalid parameter type, expected: object")
        qom.object_add(session.control.vm.tree, arguments)
        return
    if _print_object_help(session, text):
        return
    arguments = qom.parse_keyval(text, implied_key="qom-type")
    qom.object_add(session.control.vm.tree, arguments, qom.KEYVAL)


def _print_object_help(session: HmpSession, text: str) -> bool:
    """``object_add <type>,help`` / ``object_add help`` (QEMU's ``user_creatable_parse_str``).

    A known type prints its settable class properties, sorted as whole lines
    (``qemu_pstrcmp0``); no type or an unknown one prints the user-creatable types.
    """
    parts = [part for part in text.split(",") if part]
    if not parts or not any(part in ("help", "?") for part in parts):
        return False
    type_name = parts[0] if "=" not in parts[0] else None
    for part in parts:
        if part.startswith("qom-type="):
            type_name = part.removeprefix("qom-type=")
    registry = session.control.vm.tree.registry
    help_text = (None if type_name is None or type_name in ("help", "?")
                 else object_help_text(registry, type_name))
    session.print(help_text if help_text is not None else object_list_text(registry))
    return True


def hmp_object_del(session: HmpSession, args: dict[str, Any]) -> None:
    session.control.execute("object-del", {"id": args["id"]})


def hmp_device_add(session: HmpSession, args: dict[str, Any]) -> None:
    """``device_add``: ``help`` and ``<driver>,help`` print the device lists."""
    options: dict[str, str] = args.get("device", {})
    driver = options.get("driver")
    if driver == "help":
        _print_device_list(session)
        return
    if driver is not None and "help" in options:
        _print_device_help(session, driver)
        return
    qom.device_add(session.control.vm.tree, options)


def _print_device_list(session: HmpSession) -> None:
    """``device_add help`` (QEMU's ``qdev_print_devinfos``)."""
    session.print(device_list_text(session.control.vm.tree.registry))


def _print_device_help(session: HmpSession, driver: str) -> None:
    """``device_add <driver>,help``: QEMU's property list (sorted, defaults aligned)."""
    session.print(device_help_text(session.control.vm.tree, driver))


def hmp_device_del(session: HmpSession, args: dict[str, Any]) -> None:
    session.control.execute("device_del", {"id": args["id"]})


def hmp_qom_list(session: HmpSession, args: dict[str, Any]) -> None:
    """``qom-list [path]``: without a path QEMU prints ``/``."""
    path = args.get("path")
    if path is None:
        session.print("/\n")
        return
    for entry in session.control.execute("qom-list", {"path": path}):
        session.print(f"{entry['name']} ({entry['type']})\n")


def hmp_qom_get(session: HmpSession, args: dict[str, Any]) -> None:
    """``qom-get``: the value as pretty JSON."""
    value = session.control.execute("qom-get", {"path": args["path"],
                                                "property": args["property"]})
    session.print(qjson.to_json(qdict_ordered_deep(value), pretty=True) + "\n")


def hmp_qom_set(session: HmpSession, args: dict[str, Any]) -> None:
    """``qom-set [-j] path property value``: keyval-typed, or JSON with ``-j``."""
    tree = session.control.vm.tree
    if args.get("json"):
        try:
            value = qjson.parse_one(args["value"])
        except qjson.JsonParseError as err:
            raise qom.QomError(str(err)) from None
        qom.qom_set(tree, args["path"], args["property"], value)
        return
    qom.qom_set(tree, args["path"], args["property"], args["value"], qom.KEYVAL)


def hmp_info_status(session: HmpSession, args: dict[str, Any]) -> None:
    info = session.control.execute("query-status")
    text = "VM status: " + ("running" if info["running"] else "paused")
    if not info["running"] and info["status"] != "paused":
        text += f" ({info['status']})"
    session.print(text + "\n")


def hmp_info_memory_devices(session: HmpSession, args: dict[str, Any]) -> None:
    for entry in session.control.execute("query-memory-devices"):
        data = entry["data"]
        if entry["type"] not in ("dimm", "nvdimm"):
            _print_other_memory_device(session, entry["type"], data)
            continue
        session.print(f"Memory device [{entry['type']}]: \"{data.get('id', '')}\"\n"
                      f"  addr: 0x{data['addr']:x}\n"
                      f"  slot: {data['slot']}\n"
                      f"  node: {data['node']}\n"
                      f"  size: {data['size']}\n"
                      f"  memdev: {data['memdev']}\n"
                      f"  hotplugged: {_bool(data['hotplugged'])}\n"
                      f"  hotpluggable: {_bool(data['hotpluggable'])}\n")


def _print_other_memory_device(session: HmpSession, kind: str, data: dict[str, Any]) -> None:
    """A kind QEMU 7.2 does not have (a plugin's device): its members in order,
    addresses in hex, as QEMU prints its own kinds (a pyqom addition)."""
    lines = [f"Memory device [{kind}]: \"{data.get('id', '')}\""]
    for key, value in data.items():
        if key == "id":
            continue
        if isinstance(value, bool):
            text = _bool(value)
        elif isinstance(value, int) and key in ("addr", "memaddr"):
            text = f"0x{value:x}"
        else:
            text = str(value)
        lines.append(f"  {key}: {text}")
    session.print("\n".join(lines) + "\n")


def hmp_info_memdev(session: HmpSession, args: dict[str, Any]) -> None:
    for memdev in session.control.execute("query-memdev"):
        text = (f"memory backend: {memdev['id']}\n"
                f"  size:  {memdev['size']}\n"
                f"  merge: {_bool(memdev['merge'])}\n"
                f"  dump: {_bool(memdev['dump'])}\n"
                f"  prealloc: {_bool(memdev['prealloc'])}\n"
                f"  share: {_bool(memdev['share'])}\n")
        if "reserve" in memdev:
            text += f"  reserve: {_bool(memdev['reserve'])}\n"
        text += (f"  policy: {memdev['policy']}\n"
                 f"  host nodes: {format_node_list(memdev['host-nodes'])}\n")
        session.print(text)
    session.print("\n")


def hmp_info_memory_size_summary(session: HmpSession, args: dict[str, Any]) -> None:
    info = session.control.execute("query-memory-size-summary")
    session.print(f"base memory: {info['base-memory']}\n")
    if "plugged-memory" in info:
        session.print(f"plugged memory: {info['plugged-memory']}\n")


def hmp_x_plan_plug(session: HmpSession, args: dict[str, Any]) -> None:
    """``x_plan_plug`` (a pyqom addition): ``object_add ARGS`` and ``device_add ARGS``
    pairs, in order, planned as ``x-plan-plug`` plans them."""
    from devices.plan import PlanRequest, plan_plug

    words = str(args["requests"]).split()
    if len(words) % 2:
        raise qom.QomError("x_plan_plug: expected object_add or device_add, each with "
                           "its arguments")
    requests = []
    for command, text in zip(words[::2], words[1::2], strict=True):
        if command == "object_add":
            requests.append(PlanRequest("object-add",
                                        qom.parse_keyval(text, implied_key="qom-type"),
                                        qom.KEYVAL))
        elif command == "device_add":
            requests.append(PlanRequest("device_add", _parse_device_opts(text), qom.KEYVAL))
        else:
            raise qom.QomError(f"x_plan_plug: '{command}' cannot be planned, "
                               "only object_add and device_add")
    answer = plan_plug(session.control.vm.tree, requests)
    for device in answer["devices"]:
        name = device.get("id", device["driver"])
        if "addr" in device:
            slot = f"slot {device['slot']}, " if "slot" in device else ""
            session.print(f"{name}: {slot}addr 0x{device['addr']:x}, size "
                          f"0x{device['size']:x}, align 0x{device['align']:x}, "
                          f"padding 0x{device['padding']:x}\n")
        else:
            session.print(f"{name}: plugged\n")
    if not answer["fits"]:
        session.print(f"request {answer['failed'] + 1} would fail: "
                      f"{answer['error']['desc']}\n")
    _print_room(session, answer, "slots-left", "maxmem-left")


def _print_room(session: HmpSession, answer: dict[str, Any], slots: str, maxmem: str) -> None:
    session.print(f"slots left: {answer[slots]}, maxmem left: 0x{answer[maxmem]:x}\n")
    highest = answer.get("highest-address")
    used = f"0x{highest:x}" if highest is not None else "none"
    session.print(f"highest address: {used}, phys-bits limit: "
                  f"0x{answer['phys-bits-limit']:x}\n")


def hmp_info_x_memory_capacity(session: HmpSession, args: dict[str, Any]) -> None:
    """``info x-memory-capacity`` (a pyqom addition): ``x-query-memory-capacity``."""
    info = session.control.execute("x-query-memory-capacity")
    session.print(f"device memory: 0x{info['device-memory-base']:x}, size "
                  f"0x{info['device-memory-size']:x}\n")
    _print_room(session, info, "free-slots", "maxmem-free")
    for free in info["free-ranges"]:
        session.print(f"free: 0x{free['addr']:x}-0x{free['addr'] + free['size'] - 1:x}"
                      f" (0x{free['size']:x})\n")
    session.print(f"fragmentation: {info['fragmentation']}%\n")
    for largest in info["largest-dimm"]:
        session.print(f"largest DIMM, align 0x{largest['align']:x}: "
                      f"0x{largest['size']:x}\n")


def hmp_info_numa(session: HmpSession, args: dict[str, Any]) -> None:
    """``info numa``: each node's present CPUs, its memory (DIMMs on it
    included) and what DIMMs add, as ``query_numa_node_mem`` counts them."""
    machine = session.control.vm.machine
    state = machine.numa
    session.print(f"{state.num_nodes} nodes\n")
    sizes = node_memory(state, machine.query_memory_devices())
    present = [slot for slot in machine.cpu_slots if slot.index < machine.smp.cpus]
    for node, (size, plugged) in zip(state.ordered(), sizes, strict=True):
        cpus = "".join(f" {slot.index}" for slot in present if slot.node_id == node.node_id)
        session.print(f"node {node.node_id} cpus:{cpus}\n"
                      f"node {node.node_id} size: {size >> 20} MB\n"
                      f"node {node.node_id} plugged: {plugged >> 20} MB\n")


def hmp_info_version(session: HmpSession, args: dict[str, Any]) -> None:
    """``info version``: QEMU prints the version and package with nothing between."""
    session.print(f"{BANNER_VERSION}{package_string()}\n")


def hmp_info_qom_tree(session: HmpSession, args: dict[str, Any]) -> None:
    """``info qom-tree [path]``: children sorted by name with ``strcmp``."""
    tree = session.control.vm.tree
    path = args.get("path")
    if path is not None:
        obj, ambiguous = tree.resolve(path)
        if obj is None:
            session.print(f"Path '{path}' could not be resolved.\n")
            return
        if ambiguous:
            session.print(f"Warning: Path '{path}' is ambiguous.\n")
            return
    else:
        obj = tree.machine or tree.root
    _print_composition(session, obj, 0)


def _print_composition(session: HmpSession, obj: qom.Object, indent: int) -> None:
    if obj.is_root:
        name = ""
    else:
        name = (obj.canonical_path or "").rsplit("/", 1)[-1]
    session.print(f"{' ' * indent}/{name} ({obj.type_name})\n")
    children = sorted(obj.children(), key=lambda item: item[0].encode())
    for _, child in children:
        _print_composition(session, child, indent + 2)


def hmp_info_mtree(session: HmpSession, args: dict[str, Any]) -> None:
    """``info mtree``: QEMU's layout, for the regions pyqom models."""
    from plugins.monitor.mtree import info_mtree

    session.print(info_mtree(session.control.vm.machine))


def complete_object_type(session: HmpSession, nb_args: int, word: str) -> list[str]:
    """``object_add <Tab>``: user-creatable, non-abstract types (QEMU's
    ``object_add_completion``)."""
    if nb_args != 2:
        return []
    registry = session.control.vm.tree.registry
    return [klass.name for klass in registry.list_classes(qom.TYPE_USER_CREATABLE)
            if klass.name.startswith(word) and klass.name != qom.TYPE_USER_CREATABLE]


def complete_device_type(session: HmpSession, nb_args: int, word: str) -> list[str]:
    """``device_add <Tab>``: user-creatable device types (``device_add_completion``)."""
    if nb_args != 2:
        return []
    registry = session.control.vm.tree.registry
    return [klass.name for klass in registry.list_classes(qom.TYPE_DEVICE)
            if klass.slots.get(SLOT_USER_CREATABLE) and klass.name.startswith(word)]


def complete_object_id(session: HmpSession, nb_args: int, word: str) -> list[str]:
    """``object_del <Tab>``: the children of ``/objects`` (``object_del_completion``)."""
    if nb_args != 2:
        return []
    return [name for name, _ in session.control.vm.tree.objects.children()
            if name.startswith(word)]


def complete_device_id(session: HmpSession, nb_args: int, word: str) -> list[str]:
    """``device_del <Tab>``: ids of realized, hotpluggable devices under
    ``/machine/peripheral`` (``device_del_completion``)."""
    if nb_args != 2:
        return []
    tree = session.control.vm.tree
    found: list[str] = []

    def walk(obj: qom.Object) -> None:
        for _, child in obj.children():
            if isinstance(child, qom.Device) and child.realized and \
                    child.object_class.slots.get(SLOT_HOTPLUGGABLE) and \
                    child.id is not None and child.id.startswith(word):
                found.append(child.id)
            walk(child)

    if tree.machine is not None:
        peripheral = tree.machine.child("peripheral")
        if peripheral is not None:
            walk(peripheral)
    return found


BUILTIN_HMP_COMMANDS: tuple[HmpCommand, ...] = (
    HmpCommand("cont|c", "", "", "resume emulation", hmp_cont),
    HmpCommand("device_add", "device:O", "driver[,prop=value][,...]",
               "add device, like -device on the command line", hmp_device_add,
               completion=complete_device_type),
    HmpCommand("device_del", "id:s", "device", "remove device", hmp_device_del,
               completion=complete_device_id),
    HmpCommand("help|?", "name:S?", "[cmd]", "show the help", hmp_help),
    HmpCommand("info", "item:s?", "[subcommand]",
               "show various information about the system state", hmp_info),
    HmpCommand("object_add", "object:S", "[qom-type=]type,id=str[,prop=value][,...]",
               "create QOM object", hmp_object_add, completion=complete_object_type),
    HmpCommand("object_del", "id:s", "id", "destroy QOM object", hmp_object_del,
               completion=complete_object_id),
    HmpCommand("qom-get", "path:s,property:s", "path property", "print QOM property",
               hmp_qom_get),
    HmpCommand("qom-list", "path:s?", "path", "list QOM properties", hmp_qom_list),
    HmpCommand("qom-set", "json:-j,path:s,property:s,value:S", "[-j] path property value",
               "set QOM property.\n\t\t\t-j: the value is specified in json format.",
               hmp_qom_set),
    HmpCommand("memsave", "val:l,size:i,filename:s", "addr size file",
               "save to disk virtual memory dump starting at 'addr' of size 'size'",
               hmp_memsave),
    HmpCommand("pmemsave", "val:l,size:i,filename:s", "addr size file",
               "save to disk physical memory dump starting at 'addr' of size 'size'",
               hmp_pmemsave),
    HmpCommand("quit|q", "", "", "quit the emulator", hmp_quit),
    HmpCommand("stop|s", "", "", "stop emulation", hmp_stop),
    HmpCommand("system_powerdown", "", "", "send system power down event",
               hmp_system_powerdown),
    HmpCommand("x_plan_plug", "requests:S",
               "object_add|device_add args [object_add|device_add args ...]",
               "plan a plug: where the devices would go, or why not (pyqom)",
               hmp_x_plan_plug),
    HmpCommand("x", "fmt:/,addr:l", "/fmt addr", "virtual memory dump starting at 'addr'",
               hmp_x),
    HmpCommand("xp", "fmt:/,addr:l", "/fmt addr", "physical memory dump starting at 'addr'",
               hmp_xp),
    HmpCommand("memdev", "", "", "show memory backends", hmp_info_memdev, info=True),
    HmpCommand("memory-devices", "", "", "show memory devices", hmp_info_memory_devices,
               info=True),
    HmpCommand("memory_size_summary", "", "",
               "show the amount of initially allocated and present hotpluggable (if "
               "enabled) memory in bytes.", hmp_info_memory_size_summary, info=True),
    HmpCommand("mtree", "flatview:-f,dispatch_tree:-d,owner:-o,disabled:-D",
               "[-f][-d][-o][-D]",
               "show memory tree (-f: dump flat view for address spaces;-d: dump dispatch "
               "tree, valid with -f only);-o: dump region owners/parents;-D: dump disabled "
               "regions", hmp_info_mtree, info=True),
    HmpCommand("numa", "", "", "show NUMA information", hmp_info_numa, info=True),
    HmpCommand("qom-tree", "path:s?", "[path]", "show QOM composition tree",
               hmp_info_qom_tree, info=True),
    HmpCommand("registers", "cpustate_all:-a,vcpu:i?", "[-a|vcpu]",
               "show the cpu registers (-a: show register info for all cpus; vcpu: specific"
               " vCPU to query; show the current CPU's registers if no argument is specified)",
               hmp_info_registers, info=True),
    HmpCommand("status", "", "", "show the current VM status (running|paused)",
               hmp_info_status, info=True),
    HmpCommand("version", "", "", "show the version of QEMU", hmp_info_version, info=True),
    HmpCommand("x-memory-capacity", "", "",
               "show the room left for memory devices (pyqom)",
               hmp_info_x_memory_capacity, info=True),
)
"""Module constant (immutable): the built-in HMP commands and ``info`` subcommands."""


class HmpConnection:
    """An interactive HMP monitor on one connection (a transport ``Session``).

    Input goes through QEMU's readline (:mod:`.readline`), byte by byte: its
    echo, line editing, history and Tab completion; Enter runs the line and
    prints the output and the ``(qemu)`` prompt.
    """

    def __init__(self, control: VmControl, write: Callable[[bytes], None], *,
                 stderr: Callable[[str], Any] | None = None, prog: str = "pyqom") -> None:
        self.session = HmpSession(control, stderr=stderr, prog=prog)
        self._write = write
        self.readline = Readline(write, self._run, self.session.completions,
                                 prompt=self.session.prompt())
        self.closed = False
        self._busy = False         # the entered line runs on the command thread
        self._held = b""           # what was typed meanwhile (QEMU suspends its readline)

    def start(self) -> None:
        self._write(self.session.banner().encode())

    def feed(self, data: bytes) -> None:
        if self._busy:
            self._held += data
            return
        self._held += self.readline.feed(
            data, lambda: self._busy or self.closed or self.session.control.quit_requested)

    def _execute(self, line: str) -> str:
        try:
            self.session.run_line(line)
        except Exception:  # a bug must not leave the monitor deaf: log it, prompt again
            log.exception("HMP command failed: %s", line)
        return self.session.take_output()

    def _run(self, line: str) -> None:
        thread = self.session.control.command_thread
        if thread is None:
            self._ran(self._execute(line))
            return
        self._busy = True
        future = thread.run(functools.partial(self._execute, line))
        future.add_done_callback(lambda done: self._ran(done.result()))

    def _ran(self, output: str) -> None:
        """The line's output, then the prompt; what was typed meanwhile goes on."""
        self._write(output.encode("utf-8", "replace"))
        if self.session.control.quit_requested:
            self.session.control.finish_quit()
            return
        self.readline.show_prompt()
        if self._busy:
            self._busy = False
            held, self._held = self._held, b""
            if held:
                self.feed(held)

    def close(self) -> None:
        self.closed = True

    @property
    def finished(self) -> bool:
        return self.session.control.quit_requested
