"""``Object``: the base of every QOM instance.

An object has a class (:class:`~qom.objectclass.ObjectClass`), instance
properties on top of its class properties, at most one parent in the
composition tree, and a typed stash where plugins keep per-object state
without setting attributes on core objects.

Objects are made by :meth:`qom.registry.TypeRegistry.new`, never directly.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

import attrs

from qom import errors
from qom.inputs import JSON, Input
from qom.properties import Property
from qom.reprs import FieldsRepr

if TYPE_CHECKING:
    from qom.objectclass import ObjectClass
    from qom.tree import ObjectTree

T = TypeVar("T")


@attrs.frozen(eq=False, repr=False)
class StashKey(FieldsRepr, Generic[T]):
    """A key for :attr:`Object.stash`; define one per plugin module, compared by identity."""

    name: str


class Stash:
    """Typed per-object storage for plugins (pytest's ``Stash`` idea)."""

    def __init__(self) -> None:
        self._items: dict[StashKey[Any], Any] = {}

    def __setitem__(self, key: StashKey[T], value: T) -> None:
        self._items[key] = value

    def __getitem__(self, key: StashKey[T]) -> T:
        return cast(T, self._items[key])

    def get(self, key: StashKey[T], default: T | None = None) -> T | None:
        return cast("T | None", self._items.get(key, default))

    def pop(self, key: StashKey[T], default: T | None = None) -> T | None:
        return cast("T | None", self._items.pop(key, default))

    def __contains__(self, key: StashKey[Any]) -> bool:
        return key in self._items


@attrs.define(eq=False, repr=False)
class Object:
    """A QOM object.  Subclasses add attrs fields (see :func:`qom.qom_property`)."""

    object_class: ObjectClass = attrs.field(kw_only=True)
    instance_properties: dict[str, Property] = attrs.field(factory=dict, init=False)
    parent: Object | None = attrs.field(default=None, init=False)
    name_in_parent: str | None = attrs.field(default=None, init=False)
    stash: Stash = attrs.field(factory=Stash, init=False)
    finalized: bool = attrs.field(default=False, init=False)
    #: the tree this object was made for; paths (links) resolve against its root
    tree: ObjectTree | None = attrs.field(default=None, init=False)

    def __repr__(self) -> str:
        where = self.canonical_path or "unattached"
        return f"<{type(self).__name__} {self.type_name} {where}>"

    # -- type ------------------------------------------------------------

    @property
    def type_name(self) -> str:
        return self.object_class.name

    def is_a(self, type_name: str) -> bool:
        """True if this object can be cast to ``type_name`` (interfaces included)."""
        return self.object_class.is_a(type_name)

    # -- properties ------------------------------------------------------

    def find_property(self, name: str) -> Property | None:
        """Class properties first, then instance properties, as QEMU looks them up."""
        prop = self.object_class.find_property(name)
        return prop if prop is not None else self.instance_properties.get(name)

    def iter_properties(self) -> Iterator[Property]:
        yield from self.object_class.iter_properties()
        yield from self.instance_properties.values()

    def property_or_raise(self, name: str) -> Property:
        prop = self.find_property(name)
        if prop is None:
            raise errors.PropertyNotFoundError(f"Property '{self.type_name}.{name}' not found")
        return prop

    def add_property(self, prop: Property) -> Property:
        """Add an instance property; a taken name fails with QEMU's message.

        A name ending in ``[*]`` gets the first free index (``name[0]``...).
        """
        if prop.name.endswith("[*]"):
            stem = prop.name[:-3]
            index = 0
            while self.find_property(f"{stem}[{index}]") is not None:
                index += 1
            prop = attrs.evolve(prop, name=f"{stem}[{index}]")
        if self.find_property(prop.name) is not None:
            raise errors.DuplicatePropertyError(
                f"attempt to add duplicate property '{prop.name}' to object"
                f" (type '{self.type_name}')"
            )
        self.instance_properties[prop.name] = prop
        if self.tree is not None and prop.resolve is not None and not prop.is_child:
            self.tree.note_link_name(prop.name)
        return prop

    def del_property(self, name: str) -> None:
        """Delete an instance property, running its release hook."""
        prop = self.instance_properties.pop(name, None)
        if prop is None:
            raise errors.PropertyNotFoundError(f"Property '{self.type_name}.{name}' not found")
        if prop.release is not None:
            prop.release(self)

    def get(self, name: str) -> Any:
        """The Python value of property ``name``."""
        prop = self.property_or_raise(name)
        if prop.getter is None:
            raise errors.PropertyAccessError(
                f"Property '{self.type_name}.{name}' is not readable")
        return prop.getter(self)

    def get_json(self, name: str) -> Any:
        """The value of property ``name`` as ``qom-get`` returns it."""
        prop = self.property_or_raise(name)
        value = self.get(name)
        if prop.is_child:
            return value
        return prop.kind.to_json(value) if prop.kind is not None else value

    def set(self, name: str, raw: Any, source: Input = JSON) -> None:
        """Set property ``name`` from ``raw`` as read by ``source`` (QMP's JSON by default).

        The order of checks is QEMU's: the property must exist and be
        writable, the object may refuse changes (a realized device), then the
        value is converted and handed to the setter.
        """
        prop = self.property_or_raise(name)
        if prop.setter is None:
            raise errors.PropertyAccessError(
                f"Property '{self.type_name}.{name}' is not writable")
        self.check_property_set(prop)
        if prop.kind is None:
            raise errors.PropertyAccessError(
                f"Property '{self.type_name}.{name}' is not writable")
        prop.setter(self, prop.kind.read(source, name, raw))

    def set_value(self, name: str, value: Any) -> None:
        """Set property ``name`` to an already converted value (setter checks still run)."""
        prop = self.property_or_raise(name)
        if prop.setter is None:
            raise errors.PropertyAccessError(
                f"Property '{self.type_name}.{name}' is not writable")
        self.check_property_set(prop)
        prop.setter(self, value)

    def check_property_set(self, prop: Property) -> None:
        """Hook: refuse any change of ``prop`` now (devices refuse after realize)."""

    # -- composition -----------------------------------------------------

    def add_child(self, name: str, child: Object) -> str:
        """Make ``child`` the ``child<T>`` property ``name``; returns the final name."""
        if child.parent is not None:
            raise errors.QomError(
                f"object of type '{child.type_name}' already has a parent")
        if child.finalized:
            raise errors.QomError(f"object of type '{child.type_name}' is finalized")

        def release(owner: Object) -> None:
            child._detach()

        prop = self.add_property(Property(
            name=name,
            type=f"child<{child.type_name}>",
            getter=lambda owner: child.canonical_path,
            resolve=lambda owner: child,
            release=release,
        ))
        child.parent = self
        child.name_in_parent = prop.name
        if self.tree is not None:
            self.tree.index_child(prop.name, child)
        return prop.name

    def child(self, name: str) -> Object | None:
        """The direct child ``name``, if any."""
        prop = self.instance_properties.get(name)
        return prop.resolve(self) if prop is not None and prop.is_child and prop.resolve else None

    def children(self) -> Iterator[tuple[str, Object]]:
        """(name, child) for every ``child<>`` property, in insertion order."""
        for prop in list(self.instance_properties.values()):
            if prop.is_child and prop.resolve is not None:
                target = prop.resolve(self)
                if target is not None:
                    yield prop.name, target

    @property
    def canonical_path(self) -> str | None:
        """``/``-joined child names from the root, or ``None`` when unattached."""
        names: list[str] = []
        obj: Object = self
        while obj.parent is not None:
            assert obj.name_in_parent is not None
            names.append(obj.name_in_parent)
            obj = obj.parent
        if not obj.is_root:
            return None
        return "/" + "/".join(reversed(names))

    @property
    def is_root(self) -> bool:
        """True for the object at ``/`` of its tree."""
        return self.tree is not None and self.tree.root is self

    def unparent(self) -> None:
        """Remove this object from its parent; an object without a parent is finalized.

        QEMU frees the object when its last reference goes; here, unparenting
        finalizes it, because nothing else owns it.
        """
        if self.parent is not None:
            assert self.name_in_parent is not None
            self.parent.del_property(self.name_in_parent)
        elif not self.finalized:
            self.finalize()

    def _detach(self) -> None:
        self.on_unparent()
        tree = self.parent.tree if self.parent is not None else None
        if tree is not None and self.name_in_parent is not None:
            tree.unindex_child(self.name_in_parent, self)
        self.parent = None
        self.name_in_parent = None
        self.finalize()

    def on_unparent(self) -> None:
        """Hook run just before this object leaves its parent (QEMU's ``unparent``)."""

    def finalize(self) -> None:
        """Delete instance properties (children first), then ``instance_finalize`` leaf-first."""
        if self.finalized:
            return
        self.finalized = True
        for name in list(reversed(self.instance_properties)):
            if name in self.instance_properties:
                self.del_property(name)
        for klass in self.object_class.ancestors():
            if klass.info.instance_finalize is not None:
                klass.info.instance_finalize(self)


def is_a(obj: object, type_name: str) -> bool:
    """True if ``obj`` is a QOM object castable to ``type_name``."""
    return isinstance(obj, Object) and obj.is_a(type_name)


def dynamic_cast(obj: object, type_name: str) -> Object | None:
    """``obj`` if castable to ``type_name``, else ``None`` (QEMU's ``object_dynamic_cast``)."""
    return obj if isinstance(obj, Object) and obj.is_a(type_name) else None
