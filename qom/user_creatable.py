"""User-creatable objects: ``object-add`` and ``object-del`` as QEMU 7.2 does them.

``object-add`` runs in two phases, and the order of its errors follows them
(checked against QEMU 7.2):

1. :func:`parse_object_options` - the QAPI phase.  ``qom-type`` must name a
   concrete user-creatable type, ``id`` must be there, then every member of
   the type's schema (its writable class properties and those marked
   ``schema_member``, in declaration order)
   is converted by the input (JSON, keyval or opts) or reported missing;
   members the schema does not know come last.
2. :func:`create_object` - the id must be an identifier; the object is made
   and its properties set in QDict order (setter errors); it becomes the
   child ``id`` of ``/objects`` (a duplicate id fails here); ``complete()``
   runs.  Any failure removes and finalizes the object: nothing is left.

A user-creatable type implements the ``user-creatable`` interface and may
define ``complete()`` (finish construction; allocate) and
``can_be_deleted() -> bool`` on its impl class.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from qom import errors
from qom.core_types import TYPE_USER_CREATABLE
from qom.inputs import JSON, Input
from qom.paths import resolve_component
from qom.qdict import qdict_order
from qom.reprs import FieldsValue

if TYPE_CHECKING:
    from qom.object import Object
    from qom.objectclass import ObjectClass
    from qom.registry import TypeRegistry
    from qom.tree import ObjectTree

_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9._-]*")


class UserCreatable(Protocol):
    """The optional methods of a user-creatable object."""

    def complete(self) -> None:
        """Finish construction after all properties are set; raise to refuse."""

    def can_be_deleted(self) -> bool:
        """False while something uses the object."""
        ...


def id_wellformed(text: str) -> bool:
    """QEMU's ``id_wellformed``: a letter, then letters, digits, ``-``, ``.``, ``_``."""
    return _IDENTIFIER.fullmatch(text) is not None


def check_id(text: str) -> str:
    """``text`` if it is a well-formed id, else QEMU's error (with its hint)."""
    if not id_wellformed(text):
        raise errors.bad_identifier("id")
    return text


def creatable_classes(registry: TypeRegistry) -> list[ObjectClass]:
    """The values ``qom-type`` accepts: concrete types implementing user-creatable."""
    return registry.list_classes(implements=TYPE_USER_CREATABLE)


def object_schema(klass: ObjectClass) -> list[str]:
    """The members ``object-add`` accepts for ``klass``, in declaration order."""
    return [prop.name for prop in klass.iter_properties()
            if (prop.writable or prop.schema_member) and prop.kind is not None]


@attrs.frozen(repr=False, eq=False)
class ObjectOptions(FieldsValue):
    """``object-add`` arguments after the QAPI phase: typed and complete.

    :ivar qom_type: the type to create.
    :ivar id: the id, not yet checked for form.
    :ivar props: converted property values, in the order they were given.
    """

    qom_type: str
    id: str
    props: Mapping[str, Any]


def parse_object_options(registry: TypeRegistry, arguments: Mapping[str, Any],
                         source: Input = JSON) -> ObjectOptions:
    """The QAPI phase of object-add: validate and convert ``arguments``.

    :param arguments: ``qom-type``, ``id`` and the properties, as given.
    :param source: how values are read (QMP JSON, HMP keyval, CLI opts).
    :raises ParameterError: with QEMU's message for the first problem.
    """
    if "qom-type" not in arguments:
        raise source.missing("qom-type")
    qom_type = source.read_str("qom-type", arguments["qom-type"])
    klass = registry.find_class(qom_type)
    if klass is None or klass.abstract or not klass.is_a(TYPE_USER_CREATABLE):
        raise errors.enum_rejects("qom-type", qom_type)
    if "id" not in arguments:
        raise source.missing("id")
    object_id = source.read_str("id", arguments["id"])
    props: dict[str, Any] = {}
    schema = object_schema(klass)
    for name in schema:
        prop = klass.find_property(name)
        assert prop is not None and prop.kind is not None
        if name in arguments:
            props[name] = prop.kind.read(source, name, arguments[name])
        elif prop.mandatory:
            raise source.missing(name)
    for name in arguments:
        if name not in ("qom-type", "id") and name not in props:
            raise source.unexpected(name)
    ordered = {name: props[name] for name in arguments if name in props}
    return ObjectOptions(qom_type=qom_type, id=object_id, props=ordered)


def attach_object(tree: ObjectTree, options: ObjectOptions) -> Object:
    """The creation phase of object-add up to ``complete()``: the object made, its
    properties set and attached as ``/objects/<id>`` (a failure finalizes it).
    :func:`create_object` completes it; a plan (``x-plan-plug``) dry-runs that."""
    check_id(options.id)
    obj = tree.new(options.qom_type)
    try:
        for name in qdict_order(options.props):
            obj.set_value(name, options.props[name])
        tree.objects.add_child(options.id, obj)
    except Exception:
        obj.finalize()
        raise
    return obj


def create_object(tree: ObjectTree, options: ObjectOptions) -> Object:
    """The creation phase of object-add; see the module docstring for the order."""
    obj = attach_object(tree, options)
    try:
        complete = getattr(obj, "complete", None)
        if complete is not None:
            complete()
    except Exception:
        obj.unparent()
        raise
    return obj


def object_add(tree: ObjectTree, arguments: Mapping[str, Any], source: Input = JSON) -> Object:
    """QMP ``object-add`` (and, with another ``source``, HMP ``object_add``).

    :returns: the new object, now at ``/objects/<id>``.
    """
    return create_object(tree, object_add_options(tree, arguments, source))


def object_add_options(tree: ObjectTree, arguments: Mapping[str, Any],
                       source: Input = JSON) -> ObjectOptions:
    """``object-add``'s checks before creation: the id first where QemuOpts checks
    it first, then the QAPI phase (:func:`parse_object_options`)."""
    object_id = arguments.get("id")
    if source.id_checked_first and isinstance(object_id, str):
        check_id(object_id)  # QemuOpts: a bad id beats a bad size or unknown key
    return parse_object_options(tree.registry, arguments, source)


def object_del(tree: ObjectTree, object_id: str) -> None:
    """QMP ``object-del``: delete the direct child ``object_id`` of ``/objects``."""
    obj = resolve_component(tree.objects, object_id)
    if obj is None:
        raise errors.QomError(f"object '{object_id}' not found")
    can_be_deleted = getattr(obj, "can_be_deleted", None)
    if can_be_deleted is not None and not can_be_deleted():
        raise errors.ObjectInUseError(f"object '{object_id}' is in use, can not be deleted")
    obj.unparent()
