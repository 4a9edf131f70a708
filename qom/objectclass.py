"""``ObjectClass``: one per type, built lazily by the registry.

It holds what QEMU keeps in a class struct: the type, the parent class, the
interface classes, the class property table, and *slots*, the class-level
"virtual methods" and data that ``class_init`` may override while keeping
the parent's (slots are copied from the parent when the class is built, as
QEMU copies the parent class bytes).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import attrs

from qom.errors import TypeRegistrationError
from qom.typeinfo import TYPE_INTERFACE

if TYPE_CHECKING:
    from qom.object import Object
    from qom.properties import Property
    from qom.typeinfo import TypeInfo


@attrs.define(eq=False, repr=False)
class ObjectClass:
    """The class of a QOM type.

    :ivar name: the type name.
    :ivar info: the registered :class:`~qom.typeinfo.TypeInfo`.
    :ivar parent: the parent class, ``None`` for a root.
    :ivar impl: the Python class of instances.
    :ivar interfaces: the interface classes, inherited ones first.
    :ivar properties: this class's own class properties, in registration order.
    :ivar slots: overridable class data, copied from the parent.
    """

    name: str
    info: TypeInfo
    parent: ObjectClass | None
    impl: type[Object]
    interfaces: list[ObjectClass] = attrs.Factory(list)
    properties: dict[str, Property] = attrs.Factory(dict)
    slots: dict[str, Any] = attrs.Factory(dict)

    def __repr__(self) -> str:
        return f"<ObjectClass {self.name}>"

    @property
    def abstract(self) -> bool:
        # Interfaces have no instances in QEMU (instance_size 0): always abstract.
        return self.info.abstract or self.is_interface

    @property
    def is_interface(self) -> bool:
        return any(c.name == TYPE_INTERFACE for c in self.ancestors())

    def ancestors(self) -> Iterator[ObjectClass]:
        """This class, then its parent, up to the root."""
        klass: ObjectClass | None = self
        while klass is not None:
            yield klass
            klass = klass.parent

    def is_subclass_of(self, type_name: str) -> bool:
        """True if ``type_name`` is this type or one of its ancestors."""
        return any(c.name == type_name for c in self.ancestors())

    def dynamic_cast(self, type_name: str) -> ObjectClass | None:
        """QEMU's ``object_class_dynamic_cast``.

        An interface target matches through the interface list; more than one
        matching interface is ambiguous and fails, as in QEMU.
        """
        if self.name == type_name:
            return self
        matches = [iface for iface in self.interfaces if iface.is_subclass_of(type_name)]
        if matches:
            return matches[0] if len(matches) == 1 else None
        return self if self.is_subclass_of(type_name) else None

    def is_a(self, type_name: str) -> bool:
        """True if instances of this class can be cast to ``type_name``."""
        return self.dynamic_cast(type_name) is not None

    def find_property(self, name: str) -> Property | None:
        """A class property of this class or an ancestor."""
        for klass in self.ancestors():
            prop = klass.properties.get(name)
            if prop is not None:
                return prop
        return None

    def iter_properties(self) -> Iterator[Property]:
        """All class properties, root ancestor's first."""
        for klass in reversed(list(self.ancestors())):
            yield from klass.properties.values()

    def add_property(self, prop: Property) -> Property:
        """Register a class property (normally from ``class_init``).

        A duplicate name is a programmer error and raises TypeRegistrationError.
        """
        if self.find_property(prop.name) is not None:
            raise TypeRegistrationError(
                f"attempt to add duplicate property '{prop.name}' to class (type '{self.name}')"
            )
        self.properties[prop.name] = prop
        return prop
