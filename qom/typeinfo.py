"""Static type descriptions (QEMU's ``TypeInfo``) and the type-name rule."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import attrs

from qom.errors import TypeRegistrationError
from qom.reprs import FieldsRepr

if TYPE_CHECKING:
    from qom.object import Object
    from qom.objectclass import ObjectClass

TYPE_OBJECT = "object"
TYPE_INTERFACE = "interface"

# QEMU's rule for type names: letters, digits, '-', '_', '.', and ',' kept for
# legacy CPU models; we also insist on an alphanumeric first character.
_TYPE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.,-]*")

ClassInit = Callable[["ObjectClass", Any], None]
InstanceHook = Callable[["Object"], None]


def check_type_name(name: object) -> str:
    """Return ``name`` if it is a valid QOM type name, else raise TypeRegistrationError."""
    if not isinstance(name, str) or not _TYPE_NAME.fullmatch(name):
        raise TypeRegistrationError(
            f"invalid type name {name!r}: use letters, digits, '-', '_', '.' and ',',"
            " starting with a letter or digit"
        )
    return name


def _check_optional_type_name(_: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        check_type_name(value)


def _as_tuple(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _check_interfaces(_: Any, attribute: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    for name in value:
        check_type_name(name)
    if len(set(value)) != len(value):
        raise TypeRegistrationError(f"interface listed twice in {value!r}")


def _check_callable(_: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not callable(value):
        raise TypeRegistrationError(f"{attribute.name} must be callable, not {value!r}")


@attrs.frozen(kw_only=True, repr=False)
class TypeInfo(FieldsRepr):
    """Everything needed to register a QOM type; pure data, never mutated.

    :param name: the type name (``"memory-backend-ram"``).
    :param parent: the parent type; ``None`` only for the roots ``object`` and
        ``interface``.
    :param impl: the Python class of instances; defaults to the parent's.  It
        must subclass the parent's ``impl``.
    :param abstract: abstract types cannot be instantiated.
    :param interfaces: interface type names this type implements.
    :param class_init: ``class_init(object_class, class_data)``, run once when
        the class is built, after every ancestor's ``class_base_init``.
    :param class_base_init: run for every descendant class before its own
        ``class_init`` (QEMU's ``class_base_init``).
    :param instance_init: run root-first when an instance is made; must not fail.
    :param instance_post_init: run leaf-first after all ``instance_init``.
    :param instance_finalize: run leaf-first when the instance is finalized.
    :param class_data: passed to ``class_init``.
    """

    name: str = attrs.field(validator=lambda _, __, v: check_type_name(v))
    parent: str | None = attrs.field(default=TYPE_OBJECT,
                                     validator=_check_optional_type_name)
    impl: type[Object] | None = None
    abstract: bool = False
    interfaces: tuple[str, ...] = attrs.field(default=(), converter=_as_tuple,
                                              validator=_check_interfaces)
    class_init: ClassInit | None = attrs.field(default=None, validator=_check_callable)
    class_base_init: ClassInit | None = attrs.field(default=None, validator=_check_callable)
    instance_init: InstanceHook | None = attrs.field(default=None, validator=_check_callable)
    instance_post_init: InstanceHook | None = attrs.field(default=None,
                                                          validator=_check_callable)
    instance_finalize: InstanceHook | None = attrs.field(default=None,
                                                         validator=_check_callable)
    class_data: Any = None
