"""The QOM query commands as plain functions: ``qom-list``, ``qom-get``, ``qom-set``,
``qom-list-types``, ``qom-list-properties`` and ``device-list-properties``.

They take typed arguments, return JSON-ready values, and raise
:class:`~qom.errors.QomError` with QEMU 7.2's messages; the monitors wrap them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qom import errors
from qom.device import TYPE_DEVICE
from qom.inputs import JSON, Input
from qom.properties import NO_DEFAULT
from qom.typeinfo import TYPE_OBJECT

if TYPE_CHECKING:
    from qom.object import Object
    from qom.registry import TypeRegistry
    from qom.tree import ObjectTree

#: Properties ``device-list-properties`` leaves out (every device has them).
_COMMON_DEVICE_PROPERTIES = frozenset({"type", "realized", "hotpluggable", "hotplugged",
                                       "parent_bus"})


def _resolve_or_raise(tree: ObjectTree, path: str) -> Object:
    obj, _ = tree.resolve(path)
    if obj is None:
        raise errors.device_not_found(path)
    return obj


def qom_list(tree: ObjectTree, path: str) -> list[dict[str, str]]:
    """``qom-list``: name and type of every property of the object at ``path``."""
    obj, ambiguous = tree.resolve(path)
    if obj is None:
        if ambiguous:
            raise errors.AmbiguousPathError(f"Path '{path}' is ambiguous")
        raise errors.device_not_found(path)
    return [{"name": prop.name, "type": prop.type} for prop in obj.iter_properties()]


def qom_get(tree: ObjectTree, path: str, property: str) -> Any:
    """``qom-get``: the JSON value of ``property`` of the object at ``path``."""
    return _resolve_or_raise(tree, path).get_json(property)


def qom_set(tree: ObjectTree, path: str, property: str, value: Any,
            source: Input = JSON) -> None:
    """``qom-set``: set ``property`` of the object at ``path`` from ``value``."""
    _resolve_or_raise(tree, path).set(property, value, source)


def qom_list_types(registry: TypeRegistry, implements: str | None = None,
                   abstract: bool = False) -> list[dict[str, Any]]:
    """``qom-list-types``: ``abstract`` appears only on abstract types, ``parent`` when any."""
    result: list[dict[str, Any]] = []
    for klass in registry.list_classes(implements, include_abstract=abstract):
        entry: dict[str, Any] = {"name": klass.name}
        if klass.abstract:
            entry["abstract"] = True
        if klass.parent is not None:
            entry["parent"] = klass.parent.name
        result.append(entry)
    return result


def _describe(prop: Any, *, with_default: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": prop.name, "type": prop.type}
    if prop.description is not None:
        entry["description"] = prop.description
    if with_default and prop.default is not NO_DEFAULT:
        entry["default-value"] = prop.default
    return entry


def qom_list_properties(tree: ObjectTree, typename: str) -> list[dict[str, Any]]:
    """``qom-list-properties``: class properties, plus instance ones for concrete types."""
    klass = tree.registry.find_class(typename)
    if klass is None:
        raise errors.DeviceNotFoundError(f"Class '{typename}' not found")
    if not klass.is_subclass_of(TYPE_OBJECT):
        raise errors.parameter_expects("typename", "a QOM type")
    if klass.abstract:
        return [_describe(prop, with_default=False) for prop in klass.iter_properties()]
    probe = tree.new(typename)
    try:
        return [_describe(prop, with_default=False) for prop in probe.iter_properties()]
    finally:
        probe.finalize()


def device_list_properties(tree: ObjectTree, typename: str) -> list[dict[str, Any]]:
    """``device-list-properties``: a device type's own properties with default values."""
    klass = tree.registry.find_class(typename)
    if klass is None:
        raise errors.DeviceNotFoundError(f"Device '{typename}' not found")
    if not klass.is_a(TYPE_DEVICE) or klass.abstract:
        raise errors.parameter_expects("typename", "a non-abstract device type")
    probe = tree.new(typename)
    try:
        return [_describe(prop, with_default=True) for prop in probe.iter_properties()
                if prop.name not in _COMMON_DEVICE_PROPERTIES
                and not prop.name.startswith("legacy-")]
    finally:
        probe.finalize()
