"""``device_add`` and ``device_del`` for bus-less devices, as QEMU 7.2 orders them.

``device_add`` (QEMU's ``qdev_device_add``), first failure wins:

1. the id must be an identifier (QemuOpts checks it before anything else);
2. ``driver`` must be given and name a concrete, pluggable device type;
3. a ``bus`` cannot be found (bus-less devices only here);
4. the device is made; after machine init it needs a hotplug handler;
5. the id is registered: ``/machine/peripheral/<id>``, or
   ``/machine/peripheral-anon/device[N]`` (N grows even if a later step fails);
6. properties are set in QDict order;
7. the device is realized through its hotplug handler (pre_plug, realize,
   plug), with an undo stack.

On any failure after step 4 the device is unparented and finalized, and the
undo stack has given back whatever the plug had taken.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from qom import errors
from qom.device import (
    SLOT_BUS,
    SLOT_HOTPLUGGABLE,
    SLOT_USER_CREATABLE,
    TYPE_DEVICE,
    Device,
    complete_unplug,
    hotplug_handler_of,
    realize_device,
)
from qom.inputs import KEYVAL, Input
from qom.qdict import qdict_order
from qom.undo import UndoStack
from qom.user_creatable import check_id

if TYPE_CHECKING:
    from qom.tree import ObjectTree

_OPTION_KEYS = ("driver", "id", "bus")


def device_add(tree: ObjectTree, options: Mapping[str, Any], source: Input = KEYVAL) -> Device:
    """Create, configure, realize and plug a device.

    :param options: ``driver``, optional ``id``, and the device's properties.
        With the default ``source`` every value is a string (``-device``,
        HMP, and QMP in 7.2, which re-parses JSON values as strings).
    :returns: the realized device.
    """
    device = prepare_device(tree, options, source)
    try:
        with UndoStack() as undo:
            realize_device(device, undo)
    except Exception:
        device.unparent()
        raise
    return device


def prepare_device(tree: ObjectTree, options: Mapping[str, Any],
                   source: Input = KEYVAL) -> Device:
    """Steps 1 to 6 of :func:`device_add`: the device made, named and configured,
    not yet realized (a failure unparents it).  :func:`device_add` realizes it;
    a plan (``x-plan-plug``) checks it with :func:`qom.device.plan_realize`."""
    device_id = options.get("id")
    if device_id is not None:
        check_id(source.read_str("id", device_id))
    if "driver" not in options:
        raise errors.parameter_missing("driver")
    driver = source.read_str("driver", options["driver"])
    klass = tree.registry.find_class(driver)
    if klass is None or not klass.is_a(TYPE_DEVICE):
        raise errors.QomError(f"'{driver}' is not a valid device model name")
    if klass.abstract:
        raise errors.parameter_expects("driver", "a non-abstract device type")
    if not klass.slots.get(SLOT_USER_CREATABLE) or (
            tree.machine_ready and not klass.slots.get(SLOT_HOTPLUGGABLE)):
        raise errors.parameter_expects("driver", "a pluggable device type")
    if "bus" in options:
        raise errors.QomError(f"Bus '{options['bus']}' not found")
    bus = klass.slots.get(SLOT_BUS)
    if bus and tree.machine_ready:
        raise errors.QomError(f"Bus '{bus}' does not support hotplugging")

    device = tree.new(driver)
    assert isinstance(device, Device)
    device.hotplugged = tree.machine_ready
    try:
        if tree.machine_ready and hotplug_handler_of(device) is None:
            raise errors.QomError(f"Device '{driver}' can not be hotplugged on this machine")
        _register_id(tree, device, device_id)
        _apply_globals(tree, device)
        props = [name for name in options if name not in _OPTION_KEYS]
        for name in qdict_order(props):
            device.set(name, options[name], source)
    except Exception:
        device.unparent()
        raise
    return device


def qemu_opts_from_qdict(arguments: Mapping[str, Any]) -> dict[str, str]:
    """QMP ``device_add`` arguments as 7.2 turns them into QemuOpts strings.

    QEMU's ``qemu_opts_from_qdict``: strings stay, numbers are printed
    (``%.17g`` for floats), booleans become ``on``/``off``, and null, lists and
    objects are silently dropped.  An ``id`` that is not a string is dropped
    too, so the device becomes anonymous.  Pass the result to
    :func:`device_add` with the default (keyval) input.
    """
    options: dict[str, str] = {}
    for key, value in arguments.items():
        if isinstance(value, str):
            options[key] = value
        elif key == "id":
            continue
        elif isinstance(value, bool):
            options[key] = "on" if value else "off"
        elif isinstance(value, int):
            options[key] = str(value)
        elif isinstance(value, float):
            options[key] = f"{value:.17g}"
    return options


def _apply_globals(tree: ObjectTree, device: Device) -> None:
    """QEMU's ``qdev_prop_set_globals``: each matching ``-global``, in order."""
    for driver, name, value in tree.globals:
        if not device.is_a(driver):
            continue
        try:
            device.set(name, value, KEYVAL)
        except errors.QomError as err:
            raise errors.QomError(
                f"can't apply global {driver}.{name}={value}: {err}") from None


def _register_id(tree: ObjectTree, device: Device, device_id: str | None) -> None:
    """QEMU's ``qdev_set_id``."""
    if device_id is not None:
        try:
            tree.container("/machine/peripheral").add_child(device_id, device)
        except errors.DuplicatePropertyError:
            raise errors.QomError(f"Duplicate device ID '{device_id}'") from None
        device.id = device_id
    else:
        name = f"device[{tree.anon_device_count}]"
        tree.anon_device_count += 1
        tree.container("/machine/peripheral-anon").add_child(name, device)


def find_device(tree: ObjectTree, device_id: str) -> Device:
    """What ``device_del`` acts on: an id under ``/machine/peripheral`` or an absolute path."""
    obj = tree.resolve_at(tree.container("/machine/peripheral"), device_id)
    if obj is None:
        raise errors.device_not_found(device_id)
    if not isinstance(obj, Device) or not obj.is_a(TYPE_DEVICE):
        raise errors.QomError(f"{device_id} is not a hotpluggable device")
    return obj


def device_del(tree: ObjectTree, device_id: str) -> None:
    """QMP ``device_del``: ask the device's hotplug handler to unplug it.

    A handler with ``unplug_request`` (the pc machine) only starts the unplug;
    the guest finishes it.  Without one, the unplug completes at once.
    """
    device = find_device(tree, device_id)
    bus = device.object_class.slots.get(SLOT_BUS)
    if bus:
        raise errors.QomError(f"Bus '{bus}' does not support hotplugging")
    if not device.object_class.slots.get(SLOT_HOTPLUGGABLE):
        raise errors.QomError(f"Device '{device.type_name}' does not support hotplugging")
    handler = hotplug_handler_of(device)
    if handler is None:
        raise errors.QomError(f"Device '{device.type_name}' does not support hotplugging")
    unplug_request = getattr(handler, "unplug_request", None)
    if unplug_request is not None:
        unplug_request(device)
    else:
        complete_unplug(device)
