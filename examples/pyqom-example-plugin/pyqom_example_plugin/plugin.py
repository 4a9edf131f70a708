"""The ``example-greeter`` type: a user-creatable object with typed properties.

It shows the three things most plugins do:

* declare properties as attrs fields with :func:`qom.qom_property`, so
  ``object-add``, ``qom-get`` and ``qom-set`` work with QEMU's messages;
* refuse bad values in a ``check`` with QEMU's wording, and finish
  construction in ``complete()``;
* register the type from the ``qom_register_types`` hook.
"""

from __future__ import annotations

from typing import Any

import attrs

from plugins import hookimpl
from plugins.commands import Arg, Command, CommandTable, HmpCommand, HmpOutput, MonitorControl
from qom import STR, UINT32, InvalidPropertyValue, Object, TypeInfo, TypeRegistry, qom_property

TYPE_EXAMPLE_GREETER = "example-greeter"


def _positive(obj: Object, value: int) -> None:
    if value == 0:
        raise InvalidPropertyValue(
            f"property 'repeat' of {obj.type_name} doesn't take value '0'")


def _frozen_once_complete(obj: Any, value: object) -> None:
    if obj.message:
        raise InvalidPropertyValue("cannot change property value")


@attrs.define(eq=False, repr=False)
class ExampleGreeter(Object):
    """Says its greeting ``repeat`` times once complete."""

    greeting: str = qom_property("greeting", STR, type="string", default="", mandatory=True,
                                 description="What to say", check=_frozen_once_complete)
    repeat: int = qom_property("repeat", UINT32, type="uint32", default=1,
                               description="How many times", check=_positive)
    message: str = qom_property("message", STR, type="string", default="", readonly=True,
                                description="The greeting, repeated (set by complete)")

    def complete(self) -> None:
        """Called by object-add after every property is set; may refuse."""
        if not self.greeting.strip():
            raise InvalidPropertyValue("greeting must not be empty")
        self.message = " ".join([self.greeting] * self.repeat)

    def can_be_deleted(self) -> bool:
        """object-del may always delete a greeter."""
        return True


@hookimpl
def qom_register_types(registry: TypeRegistry) -> None:
    """Register ``example-greeter`` as a user-creatable type."""
    registry.register(TypeInfo(
        name=TYPE_EXAMPLE_GREETER,
        parent="object",
        impl=ExampleGreeter,
        interfaces=("user-creatable",),
    ))


# ---------------------------------------------------------------------------
# A monitor command: QMP ``x-example-greet``, HMP ``example_greet [name]``
# ---------------------------------------------------------------------------


def _greet(control: MonitorControl, name: str = "world") -> dict[str, str]:
    """QMP handler: the arguments arrive already checked (``name`` is a string)."""
    return {"greeting": f"Hello, {name}!"}


def _hmp_greet(session: HmpOutput, args: dict[str, Any]) -> None:
    """HMP handler: call the QMP command, print its result as a line."""
    arguments = {"name": args["name"]} if "name" in args else {}
    session.print(session.control.execute("x-example-greet", arguments)["greeting"] + "\n")


@hookimpl
def qom_register_monitor_commands(commands: CommandTable) -> None:
    """Add ``x-example-greet`` to QMP and ``example_greet`` to HMP."""
    commands.register(Command("x-example-greet", _greet, (Arg("name", "str", optional=True),)))
    commands.register_hmp(HmpCommand("example_greet", "name:s?", "[name]",
                                     "say hello (example plugin)", _hmp_greet))
