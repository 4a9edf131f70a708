"""QOM properties: frozen descriptions plus the accessors behind them.

A :class:`Property` is what ``object_property_add`` registers: a name, the QOM
type string clients see, a value :class:`~qom.values.Kind` that converts input,
and getter/setter callables.  Class properties live in an ``ObjectClass`` and
are shared; instance properties (``child<>`` properties, mostly) live on one
object.

Two helpers cover the common cases:

* :func:`qom_property` declares an attrs field of an ``Object`` subclass that is
  also a class property (storage stays an attrs field; access by name goes
  through the property table, so QEMU's lookup order and messages apply).
* :func:`field_property` builds the same :class:`Property` by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import attrs

from qom.reprs import FieldsRepr
from qom.values import Kind, LinkKind

if TYPE_CHECKING:
    from qom.object import Object

#: attrs metadata key under which :func:`qom_property` stores its spec.
QOM_PROPERTY: Final = "qom.property"


class _NoDefault:
    """Marks a property without a default value (``default-value`` omitted)."""

    def __repr__(self) -> str:
        return "NO_DEFAULT"


NO_DEFAULT: Final = _NoDefault()

Getter = Callable[["Object"], Any]
Setter = Callable[["Object", Any], None]
Resolver = Callable[["Object"], "Object | None"]
Release = Callable[["Object"], None]


@attrs.frozen(kw_only=True, repr=False)
class Property(FieldsRepr):
    """One QOM property.

    :param name: the property name (``"mem-path"``).
    :param type: the type string QEMU reports (``"uint64"``, ``"child<pc-dimm>"``).
    :param kind: how input values are converted; ``None`` for ``child<>``.
    :param getter: returns the stored Python value; ``None`` if not readable.
    :param setter: stores an already converted value and applies QEMU's
        semantic checks (raising with QEMU's message); ``None`` if not writable.
    :param resolve: for ``child<>`` and ``link<>``: the object the property
        points to, used by path resolution.
    :param release: called when the property is deleted (a child is unparented).
    :param description: shown by ``qom-list-properties``.
    :param default: shown as ``default-value`` by ``device-list-properties``.
    :param mandatory: ``object-add`` refuses to go without it
        (``Parameter 'size' is missing``).
    :param frozen_after_realize: a device refuses to change it once realized
        (qdev properties).
    :param link_check: for ``link<>``: called with the owner, the property name
        and the resolved target (or ``None`` when clearing) before the link changes.
    :param schema_member: ``object-add`` takes it although it has no setter: a
        QAPI member QEMU keeps for compatibility (rng's ``opened``, secret's
        ``loaded``), read and type-checked like the others and then refused
        with ``Property 'T.p' is not writable`` when set.
    """

    name: str
    type: str
    kind: Kind | None = None
    getter: Getter | None = None
    setter: Setter | None = None
    resolve: Resolver | None = None
    release: Release | None = None
    description: str | None = None
    default: Any = NO_DEFAULT
    mandatory: bool = False
    frozen_after_realize: bool = False
    link_check: Callable[[Object, str, Object | None], None] | None = None
    schema_member: bool = False

    @property
    def is_child(self) -> bool:
        return self.type.startswith("child<")

    @property
    def is_link(self) -> bool:
        return isinstance(self.kind, LinkKind)

    @property
    def readable(self) -> bool:
        return self.getter is not None

    @property
    def writable(self) -> bool:
        return self.setter is not None


def qom_property(
    name: str,
    kind: Kind,
    *,
    type: str,
    default: Any = attrs.NOTHING,
    factory: Callable[[], Any] | None = None,
    description: str | None = None,
    readonly: bool = False,
    mandatory: bool = False,
    frozen_after_realize: bool = False,
    check: Callable[[Any, Any], None] | None = None,
    report_default: bool = False,
) -> Any:
    """An attrs field that is also a QOM class property.

    The registry turns every such field declared on a type's ``impl`` class
    into a class property when the class is built.

    :param name: the QOM property name (may contain ``-``).
    :param kind: the value kind used to convert input.
    :param type: the QOM type string reported to clients.
    :param default: the attrs default (and, with ``report_default``, the
        ``default-value`` shown by ``device-list-properties``).
    :param factory: an attrs factory instead of ``default``.
    :param description: shown by ``qom-list-properties``.
    :param readonly: no setter.
    :param mandatory: required by ``object-add``.
    :param frozen_after_realize: refuse changes after a device is realized.
    :param check: ``check(obj, value)`` raises with QEMU's message to refuse a
        value; it runs before the value is stored.
    :param report_default: expose ``default`` as the property's default value.
    """
    metadata = {
        QOM_PROPERTY: {
            "name": name,
            "kind": kind,
            "type": type,
            "description": description,
            "readonly": readonly,
            "mandatory": mandatory,
            "frozen_after_realize": frozen_after_realize,
            "check": check,
            "default": default if report_default else NO_DEFAULT,
        }
    }
    if factory is not None:
        return attrs.field(factory=factory, metadata=metadata)
    return attrs.field(default=default, metadata=metadata)


def field_property(attribute: str, spec: dict[str, Any]) -> Property:
    """The :class:`Property` for an attrs field declared with :func:`qom_property`
    or :func:`qom_link`."""
    check = spec["check"]
    if spec.get("link"):
        return link_property(
            spec["name"], spec["target_type"],
            get_target=lambda obj: getattr(obj, attribute),
            set_target=None if spec["readonly"] else lambda obj, t: setattr(obj, attribute, t),
            check=check, description=spec["description"],
        )

    def getter(obj: Object) -> Any:
        return getattr(obj, attribute)

    def setter(obj: Object, value: Any) -> None:
        if check is not None:
            check(obj, value)
        setattr(obj, attribute, value)

    return Property(
        name=spec["name"],
        type=spec["type"],
        kind=spec["kind"],
        getter=getter,
        setter=None if spec["readonly"] else setter,
        description=spec["description"],
        default=spec["default"],
        mandatory=spec["mandatory"],
        frozen_after_realize=spec["frozen_after_realize"],
    )


def link_property(
    name: str,
    target_type: str,
    *,
    get_target: Callable[[Object], Object | None],
    set_target: Callable[[Object, Object | None], None] | None,
    check: Callable[[Object, str, Object | None], None] | None = None,
    description: str | None = None,
) -> Property:
    """A ``link<target_type>`` property.

    Reading gives the target's canonical path (``""`` when unset); writing
    takes an absolute or partial path (``""`` clears), resolves it in the
    object's tree with QEMU's errors, runs ``check`` and stores the target.

    :param get_target: returns the current target.
    :param set_target: stores a new target; ``None`` makes the link read-only.
    :param check: ``check(obj, name, target)`` may refuse the change (raise
        with QEMU's message); ``target`` is ``None`` when clearing.
    """

    def getter(obj: Object) -> str:
        target = get_target(obj)
        return (target.canonical_path or "") if target is not None else ""

    def setter(obj: Object, path: str) -> None:
        assert set_target is not None
        target = None
        if path:
            if obj.tree is None:
                raise LookupError(f"object of type '{obj.type_name}' belongs to no tree")
            target = obj.tree.resolve_link_target(name, path, target_type)
        if check is not None:
            check(obj, name, target)
        set_target(obj, target)

    return Property(
        name=name,
        type=f"link<{target_type}>",
        kind=LinkKind(target_type),
        getter=getter,
        setter=setter if set_target is not None else None,
        resolve=get_target,
        description=description,
        link_check=check,
    )


def qom_link(name: str, target_type: str, *,
             check: Callable[[Object, str, Object | None], None] | None = None,
             description: str | None = None, readonly: bool = False) -> Any:
    """An attrs field holding the target of a ``link<target_type>`` class property."""
    return attrs.field(default=None, metadata={QOM_PROPERTY: {
        "link": True, "name": name, "target_type": target_type, "check": check,
        "description": description, "readonly": readonly,
    }})
