"""Devices: the ``device`` type, realize/unrealize, and the hotplug-handler interface.

A device is made, gets its properties, then is *realized*; a realized device
refuses changes to its qdev properties.  Bus-less devices (pc-dimm) are
plugged by the machine's hotplug handler, found through the ``/machine``
object's class slot ``get_hotplug_handler``::

    handler.pre_plug(dev)        validate only; raise to refuse
    dev.realize()                the device's own checks and set-up
    handler.plug(dev, undo)      the plug phases (see plugins.phases); push undo steps
    dev.realized = True

Every step that changes state pushes its undo on the
:class:`~qom.undo.UndoStack`, so a failure anywhere leaves the machine as it
was.  ``device_del`` asks the handler for an unplug *request*; the handler
finishes it later (when the guest ejects) with :func:`complete_unplug`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import attrs

from qom import errors
from qom.object import Object
from qom.properties import NO_DEFAULT, Property, qom_property
from qom.undo import UndoStack
from qom.values import BOOL, Kind

TYPE_DEVICE = "device"
TYPE_HOTPLUG_HANDLER = "hotplug-handler"

#: class slot: devices of this class may be given to ``-device``/``device_add``
SLOT_USER_CREATABLE = "user_creatable"
#: class slot: devices of this class may be added and removed while running
SLOT_HOTPLUGGABLE = "hotpluggable"
#: QEMU's ``DeviceClass.desc``: what ``-device help`` says of the type
SLOT_DESC = "desc"
#: class slot: the bus a device sits on (``"isa.0"``), or absent for a bus-less device
SLOT_BUS = "bus"
#: class slot: QEMU's ``DeviceCategory`` of ``-device help`` (``"Misc"``), or absent
SLOT_CATEGORY = "category"
#: machine class slot: ``get_hotplug_handler(machine, device) -> HotplugHandler | None``
SLOT_GET_HOTPLUG_HANDLER = "get_hotplug_handler"


@runtime_checkable
class HotplugHandler(Protocol):
    """What a hotplug handler (the machine, for bus-less devices) implements.

    ``unplug_request`` may be absent (then ``device_del`` unplugs at once).
    """

    def pre_plug(self, device: Device) -> None:
        """Validate ``device`` (slot, address, ...); may assign its properties; no other change."""

    def plug(self, device: Device, undo: UndoStack) -> None:
        """Wire the realized ``device`` in, pushing an undo step for every change."""

    def unplug(self, device: Device) -> None:
        """Undo what ``plug`` did; the device is unrealized and deleted next."""


@attrs.define(eq=False, repr=False)
class Device(Object):
    """Base of every device.  Subclasses override :meth:`realize` and :meth:`unrealize`."""

    id: str | None = attrs.field(default=None, init=False)
    realized: bool = attrs.field(default=False, init=False)
    hotplugged: bool = attrs.field(default=False, init=False)

    def realize(self) -> None:
        """The device's own realize step; raise :class:`~qom.errors.QomError` to refuse."""

    def unrealize(self) -> None:
        """Undo :meth:`realize`."""

    def check_property_set(self, prop: Property) -> None:
        if self.realized and prop.frozen_after_realize:
            if self.id is not None:
                raise errors.InvalidPropertyValue(
                    f"Attempt to set property '{prop.name}' on device '{self.id}'"
                    f" (type '{self.type_name}') after it was realized")
            raise errors.InvalidPropertyValue(
                f"Attempt to set property '{prop.name}' on anonymous device"
                f" (type '{self.type_name}') after it was realized")

    def on_unparent(self) -> None:
        if self.realized:
            path = self.canonical_path
            self.realized = False
            self.unrealize()
            data: dict[str, Any] = {"path": path}
            if self.id is not None:
                data = {"device": self.id, "path": path}
            if self.tree is not None:
                self.tree.emit("DEVICE_DELETED", data)


def device_property(name: str, kind: Kind, *, type: str, default: Any = NO_DEFAULT,
                    description: str | None = None,
                    check: Callable[[Any, Any], None] | None = None) -> Any:
    """A qdev property: an attrs field that refuses changes once the device is realized.

    ``default`` is also reported as ``default-value`` by ``device-list-properties``.
    """
    if default is NO_DEFAULT:
        return qom_property(name, kind, type=type, default=None, description=description,
                            frozen_after_realize=True, check=check)
    return qom_property(name, kind, type=type, default=default, description=description,
                        frozen_after_realize=True, check=check, report_default=True)


def link_check_before_realize(device: Object, name: str, target: Object | None) -> None:
    """The ``check`` of a device's link property: refuse once realized (QEMU's wording)."""
    assert isinstance(device, Device)
    if device.realized:
        # QEMU prints the id with %s, so an anonymous device shows "(null)".
        raise errors.InvalidPropertyValue(
            f"Attempt to set link property '{name}'"
            f" on device '{device.id if device.id is not None else '(null)'}'"
            f" (type '{device.type_name}') after it was realized")


def hotplug_handler_of(device: Device) -> HotplugHandler | None:
    """The hotplug handler of a bus-less device: what ``/machine`` offers for it."""
    machine = device.tree.machine if device.tree is not None else None
    if machine is None:
        return None
    get_handler = machine.object_class.slots.get(SLOT_GET_HOTPLUG_HANDLER)
    return get_handler(machine, device) if get_handler is not None else None


def realize_device(device: Device, undo: UndoStack) -> None:
    """QEMU's ``device_set_realized(true)`` for a bus-less device.

    The caller owns ``undo`` and rolls it back if this raises.
    """
    if device.realized:
        return
    if device.parent is None:
        assert device.tree is not None
        name = f"device[{device.tree.unattached_count}]"
        device.tree.unattached_count += 1
        device.tree.container("/machine/unattached").add_child(name, device)
    handler = hotplug_handler_of(device)
    if handler is not None:
        handler.pre_plug(device)
    device.realize()
    undo.push(device.unrealize, f"unrealize {device.type_name}")
    if handler is not None:
        handler.plug(device, undo)
    device.realized = True
    undo.push(lambda: setattr(device, "realized", False), "mark unrealized")


def plan_realize(device: Device, undo: UndoStack) -> HotplugHandler | None:
    """The checks of :func:`realize_device` with nothing wired in (``x-plan-plug``):
    the handler's ``pre_plug`` (which places the device) and the device's own
    ``realize``, whose reverse goes on ``undo``; the handler's ``plug`` is not run.

    :returns: the device's hotplug handler, if any.
    """
    handler = hotplug_handler_of(device)
    if handler is not None:
        handler.pre_plug(device)
    device.realize()
    undo.push(device.unrealize, f"unrealize planned {device.type_name}")
    return handler


def complete_unplug(device: Device) -> None:
    """Finish an unplug: the handler undoes the plug, then the device is unrealized and deleted.

    Emits ``DEVICE_DELETED`` through the device's tree.
    """
    handler = hotplug_handler_of(device)
    if handler is not None:
        handler.unplug(device)
    device.unparent()


def device_class_init(klass: Any, data: Any) -> None:
    """``class_init`` of ``device``: the common properties and default slots."""
    klass.slots.setdefault(SLOT_USER_CREATABLE, True)
    klass.slots.setdefault(SLOT_HOTPLUGGABLE, True)
    klass.add_property(Property(name="parent_bus", type="link<bus>", getter=lambda obj: "",
                                resolve=lambda obj: None))
    klass.add_property(Property(name="realized", type="bool", kind=BOOL,
                                getter=lambda obj: bool(getattr(obj, "realized", False))))
    klass.add_property(Property(name="hotplugged", type="bool", kind=BOOL,
                                getter=lambda obj: bool(getattr(obj, "hotplugged", False))))
    klass.add_property(Property(
        name="hotpluggable", type="bool", kind=BOOL,
        getter=lambda obj: bool(obj.object_class.slots.get(SLOT_HOTPLUGGABLE, False))))
