"""The monitor command types: what a plugin needs to add QMP and HMP commands.

Part of the contract: a plugin implements ``qom_register_monitor_commands``
and registers :class:`Command` and :class:`HmpCommand` values on the
:class:`CommandTable` it is given::

    from plugins import hookimpl
    from plugins.commands import Arg, Command

    def query_greeting(control, name):
        return {"text": f"hello {name}"}

    @hookimpl
    def qom_register_monitor_commands(commands):
        commands.register(Command("x-query-greeting", query_greeting, (Arg("name"),)))

Every QMP :class:`Command` declares its arguments (:class:`Arg`: name, JSON
type, optional), and :meth:`CommandTable.execute` checks them before the
handler runs, with QEMU's messages in QEMU's order (schema order for missing
and mistyped members, then unexpected ones).

Handlers take the :class:`MonitorControl` and keyword arguments (named as in
the schema, ``-`` replaced by ``_``), return JSON-ready values (``None`` means
``{}``), and raise :class:`qom.QomError` whose ``error_class`` is the QMP
error class.  Build dicts in the QAPI schema's member order: QEMU prints them
in QDict order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, Protocol

import attrs

import qom
from qom.qdict import qdict_order
from qom.reprs import FieldsValue


class MonitoredVm(Protocol):
    """The VM as commands see it: its tree and its machine."""

    @property
    def tree(self) -> qom.ObjectTree: ...

    @property
    def machine(self) -> Any: ...


class MonitorControl(Protocol):
    """What a QMP handler gets as ``control``: the VM, its run state, and the table."""

    @property
    def vm(self) -> MonitoredVm: ...

    @property
    def status(self) -> str: ...

    def execute(self, name: str, arguments: Mapping[str, Any] | None = None) -> Any:
        """Run another QMP command."""
        ...

    def emit(self, name: str, data: dict[str, Any] | None = None) -> None:
        """Send an event to every monitor."""
        ...


class HmpOutput(Protocol):
    """What an HMP handler gets as ``session``: where to print, and the control."""

    @property
    def control(self) -> MonitorControl: ...

    def print(self, text: str) -> None:
        """Print a line (``\n`` appended) to this monitor."""
        ...


#: JSON type names of :class:`Arg` and the word QEMU's errors use for each.
JSON_TYPES: Mapping[str, str] = {
    "str": "string", "int": "integer", "bool": "boolean", "number": "number",
    "array": "array", "object": "object", "any": "any",
}


class CommandNotFoundError(qom.QomError):
    """QMP error class ``CommandNotFound``."""

    error_class: ClassVar[str] = "CommandNotFound"


class MonitorError(qom.QomError):
    """A monitor error with an explicit QMP class (for plugin commands)."""

    def __init__(self, message: str, error_class: str = "GenericError") -> None:
        super().__init__(message)
        self.error_class = error_class  # type: ignore[misc]


@attrs.frozen(repr=False, eq=False)
class Arg(FieldsValue):
    """One declared QMP argument.

    :ivar name: the JSON member name.
    :ivar type: a key of :data:`JSON_TYPES`.
    :ivar optional: whether it may be left out.
    """

    name: str
    type: str = "str"
    optional: bool = False

    def __attrs_post_init__(self) -> None:
        if self.type not in JSON_TYPES:
            raise ValueError(f"unknown argument type {self.type!r}")


@attrs.frozen(repr=False, eq=False)
class Member(FieldsValue):
    """A member of a return :class:`ObjectType` (QAPI's struct member).

    :ivar type: a :data:`SchemaType`.
    """

    name: str
    type: SchemaType = "str"
    optional: bool = False


@attrs.frozen(repr=False, eq=False)
class ObjectType(FieldsValue):
    """A QAPI struct a command takes or returns; ``name`` is its QAPI name (shown
    mangled to a number by ``query-qmp-schema``, as QEMU does).  A union has a
    ``tag`` member and, for each value of it, the struct of further members."""

    name: str
    members: tuple[Member, ...] = ()
    tag: str | None = None
    variants: tuple[tuple[str, ObjectType], ...] = ()


@attrs.frozen(repr=False, eq=False)
class EnumType(FieldsValue):
    """A QAPI enum: its name and values."""

    name: str
    values: tuple[str, ...]


@attrs.frozen(repr=False, eq=False)
class ArrayType(FieldsValue):
    """A QAPI array of ``element``."""

    element: SchemaType


#: a QAPI type as ``query-qmp-schema`` describes it: a built-in name (``str``,
#: ``int``, ``bool``, ``number``, ``any``, ``null``) or a struct, enum or array
SchemaType = str | ObjectType | EnumType | ArrayType

#: QAPI's empty struct (``q_empty``): a command that returns ``{}``
NO_DATA: ObjectType = ObjectType("q_empty")

Handler = Callable[..., Any]


@attrs.frozen(repr=False, eq=False)
class Command(FieldsValue):
    """A QMP command.

    :ivar name: the QMP name (``query-memdev``).
    :ivar handler: ``handler(control, **arguments)``; with ``boxed``,
        ``handler(control, arguments)`` with the raw argument dict.
    :ivar args: declared arguments, in schema order.
    :ivar boxed: skip argument checking (the handler validates); ``args``
        then only describe the members the schema shows.
    :ivar returns: what the command returns, as ``query-qmp-schema`` shows
        it: :data:`NO_DATA` for ``{}``; ``any`` (the default) where no
        structure is declared.
    :ivar arg_type: for a ``boxed`` command whose arguments depend on the VM
        (``object-add``: a union over the user-creatable types), their
        struct, made from the VM; else ``args`` describe them.
    """

    name: str
    handler: Handler
    args: tuple[Arg, ...] = ()
    boxed: bool = False
    returns: SchemaType = "any"
    arg_type: Callable[[MonitoredVm], ObjectType] | None = None


@attrs.frozen(repr=False, eq=False)
class Event(FieldsValue):
    """A QMP event a VM's monitors may send, as ``query-qmp-schema`` shows it.

    :ivar name: the event name (``DEVICE_DELETED``).
    :ivar data: the struct of its ``data`` (:data:`NO_DATA` for none).
    :ivar features: QAPI features (``deprecated``).
    """

    name: str
    data: ObjectType = NO_DATA
    features: tuple[str, ...] = ()


@attrs.frozen(repr=False, eq=False)
class HmpCommand(FieldsValue):
    """An HMP command (a row of QEMU's ``hmp-commands.hx``).

    :ivar name: the name, with aliases after ``|`` (``quit|q``).
    :ivar args_type: QEMU's argument spec (``path:s,property:s``; types
        ``s`` string, ``s?`` optional string, ``S`` rest of line, ``O``
        QemuOpts, ``-x`` flag).
    :ivar params: the parameter text ``help`` shows.
    :ivar help: the help text.
    :ivar handler: ``handler(session, args)``; prints with ``session.print``
        and raises :class:`qom.QomError` for ``Error: ...`` lines.
    :ivar info: a subcommand of ``info``.
    :ivar completion: QEMU's ``command_completion``: ``completion(session,
        nb_args, word)`` returns the Tab completions of ``word``, the last of
        ``nb_args`` words on the line (the command name counts).
    """

    name: str
    args_type: str
    params: str
    help: str
    handler: Callable[[Any, dict[str, Any]], None]
    info: bool = False
    completion: Callable[[Any, int, str], list[str]] | None = None

    def matches(self, name: str) -> bool:
        """Whether ``name`` is this command's name or one of its aliases."""
        return name in self.name.split("|")


class CommandTable:
    """The QMP and HMP commands of one VM's monitors."""

    def __init__(self) -> None:
        self._qmp: dict[str, Command] = {}
        self._events: dict[str, Event] = {}
        self._hmp_commands: list[HmpCommand] | None = None
        self._hmp_builtins: Callable[[], Iterable[HmpCommand]] = tuple

    def hmp_builtins_from(self, loader: Callable[[], Iterable[HmpCommand]]) -> None:
        """Where the built-in HMP commands come from: ``loader()`` is called on the
        first HMP use (a lookup or a registration), and its commands come first.
        A QMP-only monitor then never imports the human monitor."""
        self._hmp_builtins = loader

    @property
    def _hmp(self) -> list[HmpCommand]:
        if self._hmp_commands is None:
            self._hmp_commands = list(self._hmp_builtins())
        return self._hmp_commands

    # -- registration ----------------------------------------------------

    def register(self, command: Command) -> Command:
        """Add a QMP command; a name can be registered once."""
        if command.name in self._qmp:
            raise ValueError(f"QMP command {command.name!r} is already registered")
        self._qmp[command.name] = command
        return command

    def register_event(self, event: Event) -> Event:
        """Declare an event the monitors may send (for ``query-qmp-schema``); a
        name can be declared once."""
        if event.name in self._events:
            raise ValueError(f"QMP event {event.name!r} is already declared")
        self._events[event.name] = event
        return event

    def events(self) -> list[Event]:
        """The declared events, in declaration order."""
        return list(self._events.values())

    def register_hmp(self, command: HmpCommand) -> HmpCommand:
        """Add an HMP command (or ``info`` subcommand)."""
        for name in command.name.split("|"):
            if self.find_hmp(name, info=command.info) is not None:
                raise ValueError(f"HMP command {name!r} is already registered")
        self._hmp.append(command)
        return command

    # -- lookup ----------------------------------------------------------

    def get(self, name: str) -> Command | None:
        """The QMP command ``name``, or ``None``."""
        return self._qmp.get(name)

    def names(self) -> list[str]:
        """QMP command names, in registration order."""
        return list(self._qmp)

    def hmp_commands(self, *, info: bool = False) -> list[HmpCommand]:
        """HMP commands (or ``info`` subcommands) sorted by name, as QEMU sorts them."""
        return sorted((cmd for cmd in self._hmp if cmd.info == info), key=lambda c: c.name)

    def find_hmp(self, name: str, *, info: bool = False) -> HmpCommand | None:
        """The HMP command called ``name`` (or one of its aliases)."""
        for command in self._hmp:
            if command.info == info and command.matches(name):
                return command
        return None

    # -- running ---------------------------------------------------------

    def check_arguments(self, command: Command, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """QEMU's QAPI input checks; the keyword arguments for the handler.

        :raises ParameterError: ``Parameter 'x' is missing``, ``Invalid
            parameter type for 'x', expected: string``, ``Parameter 'x' is
            unexpected``.
        """
        kwargs: dict[str, Any] = {}
        for arg in command.args:
            if arg.name not in arguments:
                if not arg.optional:
                    raise qom.errors.parameter_missing(arg.name)
                continue
            value = arguments[arg.name]
            if not _has_type(value, arg.type):
                raise qom.errors.invalid_parameter_type(arg.name, JSON_TYPES[arg.type])
            kwargs[arg.name.replace("-", "_")] = value
        declared = {arg.name for arg in command.args}
        for name in qdict_order(arguments):
            if name not in declared:
                raise qom.errors.parameter_unexpected(name)
        return kwargs

    def execute(self, control: Any, name: str,
                arguments: Mapping[str, Any] | None = None) -> Any:
        """Run QMP command ``name``: check arguments, then call the handler.

        :raises CommandNotFoundError: no such command.
        :raises qom.QomError: the command's error (QEMU's message and class).
        """
        command = self._qmp.get(name)
        if command is None:
            raise CommandNotFoundError(f"The command {name} has not been found")
        arguments = {} if arguments is None else arguments
        if command.boxed:
            return command.handler(control, dict(arguments))
        return command.handler(control, **self.check_arguments(command, arguments))


def _has_type(value: Any, type_name: str) -> bool:
    if type_name == "any":
        return True
    if type_name == "str":
        return isinstance(value, str)
    if type_name == "bool":
        return isinstance(value, bool)
    if type_name == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if type_name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if type_name == "array":
        return isinstance(value, list)
    return isinstance(value, dict)


