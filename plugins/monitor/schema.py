"""``query-qmp-schema``: pyqom's own command table in QEMU's introspection format.

QEMU 7.2's ``SchemaInfo`` list (``qapi/introspect.py``): first one entry per
command, in the table's order (``meta-type`` ``command`` with ``arg-type``
and ``ret-type``), then one per declared event (``meta-type`` ``event``, the
``arg-type`` of its data), then every type those name, in the order they were first
named: structs (``object``, with ``members``; an optional member has
``"default": null``), ``enum`` (``members`` and ``values``), ``array``
(``element-type``) and ``builtin`` (``json-type``).  Built-in types keep
their names (``str``, ``int``...); every other type is named by a number in
order of first use, as QEMU masks its type names (``"0"`` is the empty struct
of the first command without arguments).  An array is named after its
element in brackets (``[str]``, ``[12]``).

Arguments come from each command's :class:`~plugins.commands.Arg` list (the
struct QAPI calls ``q_obj_<command>-arg``), returns from its ``returns``.
Nothing here is recorded from QEMU: a command pyqom has is in the schema, one
it lacks is not.
"""

from __future__ import annotations

from typing import Any

from plugins.commands import (
    NO_DATA,
    ArrayType,
    Command,
    CommandTable,
    EnumType,
    Member,
    MonitoredVm,
    ObjectType,
    SchemaType,
)

#: QAPI's built-in types and the JSON type introspection gives each
BUILTIN_JSON_TYPES: dict[str, str] = {
    "str": "string", "int": "int", "bool": "boolean", "number": "number",
    "any": "value", "null": "null", "size": "int", "uint64": "int", "int64": "int",
}

#: an :class:`~plugins.commands.Arg` JSON type as a QAPI type
_ARG_TYPES: dict[str, SchemaType] = {
    "str": "str", "int": "int", "bool": "bool", "number": "number", "any": "any",
    "array": ArrayType("any"), "object": "any",
}


class _Generator:
    """One walk over the table: names handed out in order of first use."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.types: list[tuple[str, SchemaType]] = []

    def use(self, schema_type: SchemaType) -> str:
        """The name ``schema_type`` is shown under (queued for output on first use)."""
        if isinstance(schema_type, str):
            key, shown = f"builtin:{schema_type}", schema_type
            if key not in self.names:
                self.names[key] = shown
                self.types.append((shown, schema_type))
            return shown
        if isinstance(schema_type, ArrayType):
            shown = f"[{self.use(schema_type.element)}]"
            key = f"array:{shown}"
            if key not in self.names:
                self.names[key] = shown
                self.types.append((shown, schema_type))
            return shown
        key = f"{type(schema_type).__name__}:{schema_type.name}"
        if key not in self.names:
            self.names[key] = str(sum(not name.startswith(("builtin:", "array:"))
                                      for name in self.names))
            self.types.append((self.names[key], schema_type))
        return self.names[key]

    def entry(self, shown: str, schema_type: SchemaType) -> dict[str, Any]:
        if isinstance(schema_type, str):
            return {"name": shown, "json-type": BUILTIN_JSON_TYPES[schema_type],
                    "meta-type": "builtin"}
        if isinstance(schema_type, ArrayType):
            return {"name": shown, "element-type": self.use(schema_type.element),
                    "meta-type": "array"}
        if isinstance(schema_type, EnumType):
            return {"name": shown, "members": [{"name": value} for value in schema_type.values],
                    "meta-type": "enum", "values": list(schema_type.values)}
        members = []
        for member in schema_type.members:
            described: dict[str, Any] = {"name": member.name}
            if member.optional:
                described["default"] = None
            described["type"] = self.use(member.type)
            members.append(described)
        entry: dict[str, Any] = {"name": shown}
        if schema_type.tag is not None:
            entry["tag"] = schema_type.tag
            entry["variants"] = [{"case": case, "type": self.use(variant)}
                                 for case, variant in schema_type.variants]
        entry["members"] = members
        entry["meta-type"] = "object"
        return entry


def property_type(qom_type: str) -> SchemaType:
    """A QOM property type as QAPI introspection shows it: every integer type is
    ``int`` (QEMU folds them), ``bool`` and ``str`` stay, others are ``any``."""
    if qom_type in ("bool", "str", "string"):
        return "bool" if qom_type == "bool" else "str"
    if qom_type in ("int", "size", "int8", "int16", "int32", "int64", "uint8", "uint16",
                    "uint32", "uint64"):
        return "int"
    return "any"


def object_add_arguments(vm: MonitoredVm) -> ObjectType:
    """``object-add``'s arguments as the union QEMU 7.2 has (``ObjectOptions``):
    ``qom-type``, an enum of the user-creatable types in the registry, and
    ``id``; for each type, its settable properties."""
    import qom

    registry = vm.tree.registry
    classes = sorted((klass for klass in registry.list_classes(qom.TYPE_USER_CREATABLE)
                      if klass.name != qom.TYPE_USER_CREATABLE), key=lambda klass: klass.name)
    variants = []
    for klass in classes:
        members = tuple(Member(prop.name, property_type(prop.type), True)
                        for prop in klass.iter_properties() if prop.setter is not None)
        variants.append((klass.name, ObjectType(f"object-add:{klass.name}", members)))
    return ObjectType("ObjectOptions", (
        Member("qom-type", EnumType("ObjectType", tuple(name for name, _ in variants))),
        Member("id")), tag="qom-type", variants=tuple(variants))


def arguments_type(command: Command, vm: MonitoredVm) -> ObjectType:
    """The struct of a command's arguments (QAPI's ``q_obj_<name>-arg``, or the
    empty struct for none)."""
    if command.arg_type is not None:
        return command.arg_type(vm)
    if not command.args:
        return NO_DATA
    return ObjectType(f"q_obj_{command.name}-arg",
                      tuple(Member(arg.name, _ARG_TYPES[arg.type], arg.optional)
                            for arg in command.args))


def qmp_schema(table: CommandTable, vm: MonitoredVm) -> list[dict[str, Any]]:
    """``query-qmp-schema`` for the commands of ``table`` on ``vm``."""
    generator = _Generator()
    entries: list[dict[str, Any]] = []
    for name in table.names():
        command = table.get(name)
        assert command is not None
        arg_type = generator.use(arguments_type(command, vm))
        ret_type = generator.use(command.returns)
        entries.append({"name": name, "ret-type": ret_type, "meta-type": "command",
                        "arg-type": arg_type})
    for event in table.events():
        entry: dict[str, Any] = {"name": event.name, "meta-type": "event",
                                 "arg-type": generator.use(event.data)}
        if event.features:
            entry["features"] = list(event.features)
        entries.append(entry)
    done = 0
    while done < len(generator.types):   # entries name further types as they go
        shown, schema_type = generator.types[done]
        entries.append(generator.entry(shown, schema_type))
        done += 1
    return entries
