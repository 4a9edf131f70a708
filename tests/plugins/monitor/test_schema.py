"""``query-qmp-schema`` generated from a command table: QEMU's introspection
format (tests/conformance/test_libvirt_vs_qemu.py compares it with QEMU's)."""

from __future__ import annotations

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
from plugins.monitor.schema import property_type, qmp_schema
from pyqom.vm import VM


def _handler(control: object, **arguments: object) -> None:
    return None


def test_names_are_masked_in_order_of_first_use() -> None:
    info = ObjectType("Info", (Member("name"), Member("kind", EnumType("Kind", ("a", "b"))),
                               Member("more", ArrayType("int"), True)))
    table = CommandTable()
    table.register(Command("first", _handler, returns=NO_DATA))
    table.register(Command("second", _handler, (Arg("id"), Arg("n", "int", True)),
                           returns=ArrayType(info)))
    vm = VM.empty()
    try:
        schema = qmp_schema(table, vm)
    finally:
        vm.close()
    assert schema == [
        {"name": "first", "ret-type": "0", "meta-type": "command", "arg-type": "0"},
        {"name": "second", "ret-type": "[2]", "meta-type": "command", "arg-type": "1"},
        {"name": "0", "members": [], "meta-type": "object"},
        {"name": "1", "members": [{"name": "id", "type": "str"},
                                  {"name": "n", "default": None, "type": "int"}],
         "meta-type": "object"},
        {"name": "2", "members": [{"name": "name", "type": "str"},
                                  {"name": "kind", "type": "3"},
                                  {"name": "more", "default": None, "type": "[int]"}],
         "meta-type": "object"},
        {"name": "[2]", "element-type": "2", "meta-type": "array"},
        {"name": "str", "json-type": "string", "meta-type": "builtin"},
        {"name": "int", "json-type": "int", "meta-type": "builtin"},
        {"name": "3", "members": [{"name": "a"}, {"name": "b"}], "meta-type": "enum",
         "values": ["a", "b"]},
        {"name": "[int]", "element-type": "int", "meta-type": "array"},
    ]


def test_the_real_table_lists_every_command_once_and_object_add_as_a_union() -> None:
    vm = VM.empty()
    try:
        from plugins.monitor.commands import build_command_table

        table = build_command_table(vm)
        schema = qmp_schema(table, vm)
    finally:
        vm.close()
    commands = [entry["name"] for entry in schema if entry["meta-type"] == "command"]
    assert commands == table.names()
    by_name = {entry["name"]: entry for entry in schema}
    union = by_name[by_name["object-add"]["arg-type"]]
    assert union["tag"] == "qom-type"
    cases = {variant["case"]: by_name[variant["type"]] for variant in union["variants"]}
    ram = {member["name"]: member for member in cases["memory-backend-ram"]["members"]}
    assert ram["size"] == {"name": "size", "default": None, "type": "int"}
    assert ram["share"]["type"] == "bool"
    assert by_name["query-qmp-schema"]["ret-type"] == "any"    # no structure declared


def test_property_types_fold_as_qemus_introspection() -> None:
    assert [property_type(name) for name in ("uint64", "size", "int32", "bool", "string",
                                             "str", "link<memory-backend>")] == [
        "int", "int", "int", "bool", "str", "str", "any"]
