"""The types every registry starts with, as QEMU registers them in ``qom/``."""

from __future__ import annotations

from typing import Any

from qom.device import TYPE_DEVICE, TYPE_HOTPLUG_HANDLER, Device, device_class_init
from qom.memory_device import TYPE_MEMORY_DEVICE
from qom.properties import Property
from qom.typeinfo import TYPE_INTERFACE, TYPE_OBJECT, TypeInfo
from qom.values import STR

TYPE_CONTAINER = "container"
TYPE_USER_CREATABLE = "user-creatable"


def object_class_init(klass: Any, data: Any) -> None:
    """Every object has the read-only ``type`` property."""
    klass.add_property(Property(name="type", type="string", kind=STR,
                                getter=lambda obj: obj.type_name))


CORE_TYPES: tuple[TypeInfo, ...] = (
    TypeInfo(name=TYPE_OBJECT, parent=None, abstract=True, class_init=object_class_init),
    TypeInfo(name=TYPE_INTERFACE, parent=None, abstract=True),
    TypeInfo(name=TYPE_CONTAINER, parent=TYPE_OBJECT),
    TypeInfo(name=TYPE_USER_CREATABLE, parent=TYPE_INTERFACE),
    TypeInfo(name=TYPE_HOTPLUG_HANDLER, parent=TYPE_INTERFACE),
    TypeInfo(name=TYPE_MEMORY_DEVICE, parent=TYPE_INTERFACE),
    TypeInfo(name=TYPE_DEVICE, parent=TYPE_OBJECT, impl=Device, abstract=True,
             class_init=device_class_init),
)
