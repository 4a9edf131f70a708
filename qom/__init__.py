"""pyqom's object model: QEMU's QOM in Python (standard library and attrs only).

Start with :class:`TypeRegistry` (register :class:`TypeInfo` values, or let
plugins do it through ``qom_register_types``), then :meth:`ObjectTree.create`
for a composition tree, then :func:`object_add` / :func:`device_add` and the
query functions.  Errors are :class:`QomError` subclasses whose ``str()`` is
QEMU 7.2's message.
"""

from qom.core_types import TYPE_CONTAINER, TYPE_USER_CREATABLE
from qom.device import (
    TYPE_DEVICE,
    TYPE_HOTPLUG_HANDLER,
    Device,
    HotplugHandler,
    complete_unplug,
    device_property,
    hotplug_handler_of,
    link_check_before_realize,
    realize_device,
)
from qom.errors import (
    AbstractTypeError,
    AmbiguousPathError,
    DeviceNotFoundError,
    DuplicatePropertyError,
    InvalidPropertyValue,
    ObjectInUseError,
    ParameterError,
    PropertyAccessError,
    PropertyNotFoundError,
    QomError,
    RealizeError,
    TypeRegistrationError,
    UnknownTypeError,
)
from qom.hotplug import device_add, device_del, find_device, qemu_opts_from_qdict
from qom.inputs import JSON, KEYVAL, OPTS, Input
from qom.introspect import (
    device_list_properties,
    qom_get,
    qom_list,
    qom_list_properties,
    qom_list_types,
    qom_set,
)
from qom.keyval import QemuOpt, parse_keyval, parse_qemu_opts, qemu_opts_dict
from qom.memory_device import TYPE_MEMORY_DEVICE, HostRegion, MemoryDevice, as_memory_device
from qom.numbers import NumberFormatError, parse_i64, parse_size, parse_u64
from qom.object import Object, StashKey, dynamic_cast, is_a
from qom.objectclass import ObjectClass
from qom.properties import NO_DEFAULT, Property, link_property, qom_link, qom_property
from qom.qdict import qdict_order, qdict_ordered
from qom.registry import TypeRegistry
from qom.tree import ObjectTree
from qom.typeinfo import TYPE_INTERFACE, TYPE_OBJECT, TypeInfo
from qom.undo import UndoStack
from qom.user_creatable import (
    ObjectOptions,
    check_id,
    create_object,
    id_wellformed,
    object_add,
    object_del,
    parse_object_options,
)
from qom.values import (
    BOOL,
    INT8,
    INT16,
    INT32,
    INT64,
    SIZE,
    STR,
    UINT8,
    UINT16,
    UINT32,
    UINT64,
    BoolKind,
    EnumKind,
    IntKind,
    ListKind,
    SizeKind,
    StrKind,
)

__all__ = [
    "TYPE_MEMORY_DEVICE",
    "HostRegion",
    "MemoryDevice",
    "as_memory_device",
    "BOOL", "INT8", "INT16", "INT32", "INT64", "JSON", "KEYVAL", "NO_DEFAULT", "OPTS", "SIZE",
    "STR", "TYPE_CONTAINER", "TYPE_DEVICE", "TYPE_HOTPLUG_HANDLER", "TYPE_INTERFACE",
    "TYPE_OBJECT", "TYPE_USER_CREATABLE", "UINT8", "UINT16", "UINT32", "UINT64",
    "AbstractTypeError", "AmbiguousPathError", "BoolKind", "Device", "DeviceNotFoundError",
    "DuplicatePropertyError", "EnumKind", "HotplugHandler", "Input", "IntKind",
    "InvalidPropertyValue", "ListKind", "NumberFormatError", "Object", "ObjectClass",
    "ObjectInUseError", "ObjectOptions", "ObjectTree", "ParameterError", "Property",
    "PropertyAccessError", "PropertyNotFoundError", "QemuOpt", "QomError", "RealizeError",
    "SizeKind", "StashKey", "StrKind", "TypeInfo", "TypeRegistrationError", "TypeRegistry",
    "UndoStack", "UnknownTypeError", "check_id", "complete_unplug", "create_object",
    "device_add", "device_del", "device_list_properties", "device_property", "dynamic_cast",
    "find_device", "hotplug_handler_of", "id_wellformed", "is_a", "link_check_before_realize",
    "link_property", "object_add", "object_del", "parse_i64", "parse_keyval",
    "parse_object_options", "parse_qemu_opts", "parse_size", "parse_u64", "qdict_order",
    "qemu_opts_from_qdict",
    "qdict_ordered", "qom_get", "qom_link", "qom_list", "qom_list_properties",
    "qom_list_types", "qom_property", "qom_set", "qemu_opts_dict", "realize_device",
]
