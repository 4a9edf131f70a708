"""The composition tree of one pyqom instance: ``/``, ``/objects``, ``/machine``...

QEMU keeps one global root; pyqom makes an :class:`ObjectTree` per instance
(the composition root or a test creates it), so trees never leak between
tests.  The tree also carries the little per-instance state QEMU keeps in
statics: the anonymous-device counter, the machine phase, and the sink
through which core events (``DEVICE_DELETED``) leave for the monitors.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import attrs

from qom import errors
from qom.core_types import TYPE_CONTAINER
from qom.object import Object
from qom.paths import resolve_path, resolve_path_at
from qom.registry import TypeRegistry
from qom.reprs import FieldsRepr
from qom.typeinfo import TYPE_OBJECT

EventSink = Callable[[str, dict[str, Any]], None]

#: Containers every machine has (QEMU creates them under ``/machine``).
MACHINE_CONTAINERS = ("peripheral", "peripheral-anon", "unattached")


def _no_events(name: str, data: dict[str, Any]) -> None:
    """The default sink: a tree without monitors drops its events."""


@attrs.define(eq=False, repr=False)
class ObjectTree(FieldsRepr):
    """A root container and what hangs from it.

    Make one with :meth:`create`.

    :ivar registry: the types objects are made from.
    :ivar root: the object at ``/``.
    :ivar event_sink: called as ``event_sink(name, data)`` for every event.
    :ivar machine_ready: False while the command line is processed; devices
        added after it turns True are *hot*-plugged.
    :ivar anon_device_count: the next ``device[N]`` under
        ``/machine/peripheral-anon`` (it grows on failed attempts too, as in QEMU).
    """

    registry: TypeRegistry
    root: Object = attrs.field(init=False)
    event_sink: EventSink = _no_events
    machine_ready: bool = False
    #: ``-global DRIVER.PROP=VALUE`` settings: (driver, property, value), applied
    #: to every new device of that type (or a subtype) before its own properties
    globals: list[tuple[str, str, str]] = attrs.field(factory=list)
    anon_device_count: int = 0
    unattached_count: int = 0
    #: the machine lock (QEMU's big lock): whoever changes the machine holds it,
    #: a monitor command on the command thread, a guest's port access on the
    #: CPU thread; re-entrant, so a command may call into code that takes it too
    lock: threading.RLock = attrs.field(factory=threading.RLock, init=False)
    #: child name -> objects that are a child of that name somewhere (for partial paths)
    _children_named: dict[str, list[Object]] = attrs.field(factory=dict, init=False)
    #: names of link properties: class ones (cached per number of built classes), instance ones
    _class_link_names: tuple[int, frozenset[str]] = attrs.field(default=(-1, frozenset()),
                                                                init=False)
    _instance_link_names: set[str] = attrs.field(factory=set, init=False)

    @classmethod
    def create(cls, registry: TypeRegistry, *, event_sink: EventSink | None = None) -> ObjectTree:
        """A tree with ``/``, ``/objects`` and ``/chardevs``, as QEMU starts with."""
        tree = cls(registry=registry, event_sink=event_sink or _no_events)
        tree.root = registry.new(TYPE_CONTAINER, tree=tree)
        tree.container("/objects")
        tree.container("/chardevs")
        return tree

    def new(self, type_name: str, **fields: Any) -> Object:
        """A new, unattached object of ``type_name`` that belongs to this tree."""
        return self.registry.new(type_name, tree=self, **fields)

    def container(self, path: str) -> Object:
        """QEMU's ``container_get``: the container at ``path``, made (with parents) if missing."""
        current = self.root
        for part in path.split("/"):
            if not part:
                continue
            child = current.child(part)
            if child is None:
                child = self.new(TYPE_CONTAINER)
                current.add_child(part, child)
            current = child
        return current

    @property
    def objects(self) -> Object:
        """``/objects``: user-creatable objects, keyed by id."""
        return self.container("/objects")

    @property
    def machine(self) -> Object | None:
        """The object at ``/machine``, once one is attached."""
        return self.root.child("machine")

    def attach_machine(self, machine: Object) -> None:
        """Make ``machine`` the ``/machine`` child and give it its containers."""
        self.root.add_child("machine", machine)
        for name in MACHINE_CONTAINERS:
            self.container(f"/machine/{name}")

    def resolve(self, path: str, type_name: str = TYPE_OBJECT) -> tuple[Object | None, bool]:
        """``(object, ambiguous)`` for an absolute or partial ``path``.

        A one-component partial path (``mem1``, ``dimm1``: the common case)
        is answered from an index of child names instead of a walk of the
        whole tree, unless some link property has that name: then the walk
        decides, since QEMU's search follows links too.
        """
        if path and "/" not in path and path not in self._link_names():
            return self._resolve_child_name(path, type_name)
        return resolve_path(self.root, path, type_name)

    def index_child(self, name: str, child: Object) -> None:
        """Record that ``child`` became a child called ``name`` (called by Object)."""
        self._children_named.setdefault(name, []).append(child)

    def unindex_child(self, name: str, child: Object) -> None:
        """Forget ``child`` under ``name`` (called by Object when it leaves its parent)."""
        named = self._children_named.get(name, [])
        if child in named:
            named.remove(child)
        if not named:
            self._children_named.pop(name, None)

    def _resolve_child_name(self, name: str, type_name: str) -> tuple[Object | None, bool]:
        matches = [obj for obj in self._children_named.get(name, ())
                   if obj.is_a(type_name) and self._is_attached(obj)]
        if len(matches) > 1:
            return None, True
        return (matches[0] if matches else None), False

    def _is_attached(self, obj: Object) -> bool:
        while obj.parent is not None:
            obj = obj.parent
        return obj is self.root

    def note_link_name(self, name: str) -> None:
        """Record an instance link property's name (called by Object)."""
        self._instance_link_names.add(name)

    def _link_names(self) -> frozenset[str] | set[str]:
        """Names of every link property any object of this tree may have."""
        classes = self.registry.built_classes()
        if self._class_link_names[0] != len(classes):
            names = frozenset(prop.name for klass in classes
                              for prop in klass.properties.values()
                              if prop.resolve is not None and not prop.is_child)
            self._class_link_names = (len(classes), names)
        if self._instance_link_names:
            return self._class_link_names[1] | self._instance_link_names
        return self._class_link_names[1]

    def resolve_at(self, parent: Object, path: str) -> Object | None:
        """``path`` absolute from the root, or relative to ``parent``."""
        return resolve_path_at(parent, self.root, path)

    def resolve_link_target(self, prop_name: str, path: str, target_type: str) -> Object:
        """The object a ``link<target_type>`` set to ``path`` points to.

        Raises QEMU's errors: ambiguous path, wrong type, or DeviceNotFound.
        """
        target, ambiguous = self.resolve(path, target_type)
        if ambiguous:
            raise errors.AmbiguousPathError(
                f"Path '{path}' does not uniquely identify an object")
        if target is None:
            anything, ambiguous = self.resolve(path)
            if anything is not None or ambiguous:
                raise errors.invalid_parameter_type(prop_name, target_type)
            raise errors.device_not_found(path)
        return target

    def emit(self, name: str, data: dict[str, Any]) -> None:
        """Send event ``name`` with ``data`` to the sink (the monitors)."""
        self.event_sink(name, data)
