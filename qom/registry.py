"""The type registry: registration, one whole-graph check, lazy classes, instances.

There is no global registry: whoever needs one makes a :class:`TypeRegistry`
(the composition root, or a test), and plugins register into it through the
``qom_register_types`` hook.  A new registry already holds the core types
(``object``, ``interface``, ``container``, ``user-creatable``, ``device``,
``hotplug-handler``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import attrs

from qom.core_types import CORE_TYPES
from qom.errors import AbstractTypeError, TypeRegistrationError, UnknownTypeError
from qom.object import Object
from qom.objectclass import ObjectClass
from qom.properties import QOM_PROPERTY, field_property
from qom.typeinfo import TYPE_INTERFACE, TYPE_OBJECT, TypeInfo

if TYPE_CHECKING:
    from qom.tree import ObjectTree


class TypeRegistry:
    """All QOM types of one pyqom instance.

    Registration only records the :class:`TypeInfo`; :meth:`check` validates
    the whole graph (every parent and interface exists, no cycles, interfaces
    are interfaces); classes are built on first use, which runs the check
    first if a registration happened since the last one.
    """

    def __init__(self, *, core: bool = True) -> None:
        self._infos: dict[str, TypeInfo] = {}
        self._classes: dict[str, ObjectClass] = {}
        self._checked = False
        if core:
            for info in CORE_TYPES:
                self.register(info)

    # -- registration ----------------------------------------------------

    def register(self, info: TypeInfo) -> TypeInfo:
        """Record a type.  A name registered before is refused, as QEMU aborts on it."""
        if not isinstance(info, TypeInfo):
            raise TypeRegistrationError(f"expected a TypeInfo, got {info!r}")
        if info.name in self._infos:
            raise TypeRegistrationError(f"Registering `{info.name}' which already exists")
        if info.parent is None and info.name not in (TYPE_OBJECT, TYPE_INTERFACE):
            raise TypeRegistrationError(f"type '{info.name}' needs a parent type")
        self._infos[info.name] = info
        self._checked = False
        return info

    def __contains__(self, name: object) -> bool:
        return name in self._infos

    def type_names(self) -> list[str]:
        return list(self._infos)

    def info(self, name: str) -> TypeInfo:
        try:
            return self._infos[name]
        except KeyError:
            raise UnknownTypeError(f"unknown type '{name}'") from None

    # -- the graph check -------------------------------------------------

    def check(self) -> None:
        """Validate the whole type graph; raise TypeRegistrationError naming the culprit."""
        for info in self._infos.values():
            self._check_ancestry(info)
        for info in self._infos.values():
            for iface in info.interfaces:
                if iface not in self._infos:
                    raise TypeRegistrationError(
                        f"missing interface '{iface}' for object '{info.name}'")
                if not self._descends_from(iface, TYPE_INTERFACE):
                    raise TypeRegistrationError(
                        f"type '{info.name}' lists '{iface}' as an interface,"
                        " but it is not an interface type")
            if info.impl is not None and not (isinstance(info.impl, type)
                                              and issubclass(info.impl, Object)):
                raise TypeRegistrationError(
                    f"type '{info.name}': impl must be a subclass of qom.Object")
        self._checked = True

    def _check_ancestry(self, info: TypeInfo) -> None:
        seen = {info.name}
        current = info
        while current.parent is not None:
            parent = self._infos.get(current.parent)
            if parent is None:
                raise TypeRegistrationError(
                    f"type '{current.name}' has unknown parent '{current.parent}'")
            if parent.name in seen:
                raise TypeRegistrationError(
                    f"type '{info.name}' is its own ancestor (cycle through '{parent.name}')")
            seen.add(parent.name)
            current = parent

    def _descends_from(self, name: str, ancestor: str) -> bool:
        current: str | None = name
        while current is not None:
            if current == ancestor:
                return True
            current = self._infos[current].parent
        return False

    # -- classes ---------------------------------------------------------

    def get_class(self, name: str) -> ObjectClass:
        """The class of ``name``, built (with its ancestors) on first use."""
        klass = self._classes.get(name)
        if klass is not None:
            return klass
        if name not in self._infos:
            raise UnknownTypeError(f"unknown type '{name}'")
        if not self._checked:
            self.check()
        return self._build_class(name)

    def find_class(self, name: str) -> ObjectClass | None:
        """The class of ``name``, or ``None`` if no such type is registered."""
        return self.get_class(name) if name in self._infos else None

    def _build_class(self, name: str) -> ObjectClass:
        info = self._infos[name]
        parent = self.get_class(info.parent) if info.parent is not None else None
        impl = info.impl or (parent.impl if parent is not None else Object)
        if parent is not None and not issubclass(impl, parent.impl):
            raise TypeRegistrationError(
                f"type '{name}': impl {impl.__name__} must subclass"
                f" {parent.impl.__name__}, the impl of '{parent.name}'")
        klass = ObjectClass(
            name=name, info=info, parent=parent, impl=impl,
            interfaces=list(parent.interfaces) if parent is not None else [],
            slots=dict(parent.slots) if parent is not None else {},
        )
        for iface_name in info.interfaces:
            iface = self.get_class(iface_name)
            if any(existing.is_subclass_of(iface_name) for existing in klass.interfaces):
                continue  # an inherited interface already descends from it
            klass.interfaces.append(iface)
        self._add_field_properties(klass, parent)
        chain = list(klass.ancestors())
        for ancestor in chain[1:]:
            if ancestor.info.class_base_init is not None:
                ancestor.info.class_base_init(klass, info.class_data)
        if info.class_init is not None:
            info.class_init(klass, info.class_data)
        self._classes[name] = klass
        return klass

    @staticmethod
    def _add_field_properties(klass: ObjectClass, parent: ObjectClass | None) -> None:
        """Class properties for the :func:`qom_property` fields new in this impl."""
        if not attrs.has(klass.impl):
            return
        inherited = ({a.name for a in attrs.fields(parent.impl)}
                     if parent is not None and attrs.has(parent.impl) else set())
        for attribute in attrs.fields(klass.impl):
            spec = attribute.metadata.get(QOM_PROPERTY)
            if spec is not None and attribute.name not in inherited:
                klass.add_property(field_property(attribute.name, spec))

    def built_classes(self) -> list[ObjectClass]:
        """The classes built so far (every object's class is among them)."""
        return list(self._classes.values())

    def iter_classes(self) -> Iterator[ObjectClass]:
        """Every class, built if needed, in registration order."""
        for name in list(self._infos):
            yield self.get_class(name)

    # -- instances -------------------------------------------------------

    def new(self, name: str, *, tree: ObjectTree | None = None, **fields: Any) -> Object:
        """QEMU's ``object_new``: instance_init root-first, then post-init leaf-first.

        :param tree: the :class:`~qom.tree.ObjectTree` the object belongs to
            (its links resolve there); prefer :meth:`ObjectTree.new`.
        :param fields: initial values of the impl's attrs fields.
        """
        klass = self.get_class(name)
        if klass.abstract:
            raise AbstractTypeError(f"object type '{name}' is abstract")
        obj = klass.impl(object_class=klass, **fields)
        obj.tree = tree
        chain = list(klass.ancestors())
        for ancestor in reversed(chain):
            if ancestor.info.instance_init is not None:
                ancestor.info.instance_init(obj)
        for ancestor in chain:
            if ancestor.info.instance_post_init is not None:
                ancestor.info.instance_post_init(obj)
        return obj

    # -- queries ---------------------------------------------------------

    def list_classes(self, implements: str | None = None,
                     include_abstract: bool = False) -> list[ObjectClass]:
        """QEMU's ``object_class_get_list``: classes castable to ``implements``."""
        result = []
        for klass in self.iter_classes():
            if klass.abstract and not include_abstract:
                continue
            if implements is not None and not klass.is_a(implements):
                continue
            result.append(klass)
        return result
