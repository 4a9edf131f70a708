"""Every hook pyqom calls, grouped by phase.  Implement them with
:data:`plugins.hookimpl`; argument names must match exactly.

Rules for all implementations:

* Never keep state in module globals: attach it to the object you are given
  (``obj.stash[KEY]``) or to your plugin instance.
* Raise :class:`qom.QomError` (with QEMU's message) to refuse; never exit.
* Validation hooks (``qom_device_pre_plug``) must not change anything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from plugins.monitor.commands import CommandTable
    from qom import Device, Object, ObjectTree, TypeRegistry, UndoStack

hookspec = pluggy.HookspecMarker("qom")

# ---------------------------------------------------------------------------
# Registration
# ---------------------------------------------------------------------------


@hookspec(historic=True)
def qom_add_hookspecs(pluginmanager: pluggy.PluginManager) -> None:
    """Add hook specifications of your own (like pytest's ``pytest_addhooks``).

    Called once, historic: a plugin registered later is still called.  Call
    ``pluginmanager.add_hookspecs(module)`` with a module of ``qom_*`` specs.

    :param pluginmanager: the plugin manager being built.
    """


@hookspec(historic=True)
def qom_register_types(registry: TypeRegistry) -> None:
    """Register QOM types: call ``registry.register(TypeInfo(...))`` for each.

    Called once per registry, before any object exists; historic, so a plugin
    registered later still registers its types (the registry re-runs its
    graph check before the next class is built).  A duplicate name raises at
    once, with your plugin on the stack.

    Must not create objects or touch anything but ``registry``.

    :param registry: the :class:`qom.TypeRegistry` being filled.
    """


# ---------------------------------------------------------------------------
# Machine lifecycle
# ---------------------------------------------------------------------------


@hookspec
def qom_machine_init(machine: Object) -> None:
    """The machine's base RAM exists; set up what the guest needs before any device.

    Called once per machine, after ``-object`` backends are created and before
    ``-device`` options are cold-plugged.  Each implementation runs once, in
    registration order; an exception aborts start-up.

    :param machine: the machine object at ``/machine``.
    """


@hookspec
def qom_machine_ready(machine: Object) -> None:
    """Every cold-plugged device is in place; the guest is about to run.

    From now on added devices are hot-plugged.  Build what describes the
    final configuration (ACPI tables) here.

    :param machine: the machine object at ``/machine``.
    """


@hookspec
def qom_machine_shutdown(machine: Object, reason: str) -> None:
    """The machine is going away; release what you hold for it.

    Must not raise: every implementation runs even if one fails.

    :param machine: the machine object at ``/machine``.
    :param reason: QEMU's shutdown cause, e.g. ``"host-qmp-quit"``.
    """


# ---------------------------------------------------------------------------
# Hotplug (the machine's hotplug handler calls these for every device)
# ---------------------------------------------------------------------------


@hookspec
def qom_device_pre_plug(machine: Object, device: Device) -> None:
    """Validate a device before it is realized; raise to refuse it.

    Called for cold- and hot-plugged devices alike, in registration order;
    the first exception stops the plug and is reported to the user.  An
    implementation may fill in the device's own properties (the slot and
    address a DIMM gets) but must not change anything else.

    :param machine: the machine object at ``/machine``.
    :param device: the device, with its properties set, not yet realized.
    """


@hookspec
def qom_device_plug(machine: Object, device: Device, undo: UndoStack) -> None:
    """Wire a realized device into the machine.

    After each change succeeds, push the callable that reverses it with
    ``undo.push(fn, label)``: if any later step fails, the stack runs in
    reverse and the machine is exactly as before.

    :param machine: the machine object at ``/machine``.
    :param device: the realized device.
    :param undo: the undo stack of this plug.
    """


@hookspec
def qom_device_unplug_request(machine: Object, device: Device, undo: UndoStack) -> None:
    """``device_del`` asked to remove ``device``: start the unplug, do not finish it.

    The guest completes the unplug later (for a DIMM, by ejecting it through
    ACPI).  May be called again for the same device before that happens.
    Raise to refuse; push an undo step for every change, so that when another
    implementation refuses, the machine is as it was (``device_del`` failed).

    :param machine: the machine object at ``/machine``.
    :param device: the device to be removed.
    :param undo: the undo stack of this request (an implementation may omit the
        parameter if it changes nothing).
    """


@hookspec
def qom_device_unplug(machine: Object, device: Device) -> None:
    """Undo what ``qom_device_plug`` did; the device is unrealized and deleted next.

    Called in registration order.  Must not raise for a device that was
    plugged.

    :param machine: the machine object at ``/machine``.
    :param device: the device being removed.
    """


# ---------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------


@hookspec
def qom_event(tree: ObjectTree, name: str, data: dict[str, Any]) -> None:
    """An event left the core (``DEVICE_DELETED``, ``ACPI_DEVICE_OST`` ...).

    Monitors implement this to forward events to their clients.  Must not
    raise and must not change the tree.

    :param tree: the tree that emitted it.
    :param name: the QMP event name.
    :param data: the event's data object.
    """


# ---------------------------------------------------------------------------
# Monitors
# ---------------------------------------------------------------------------


@hookspec
def qom_register_monitor_commands(commands: CommandTable) -> None:
    """Add QMP and HMP commands to a VM's monitors.

    Called once for each command table, when a VM's monitors are set up,
    after the built-in commands are in.  Call ``commands.register(Command(...))``
    for a QMP command (its declared arguments are checked before your handler
    runs) and ``commands.register_hmp(HmpCommand(...))`` for an HMP one; an
    HMP handler usually calls the QMP one through ``session.control.execute``.
    A name that is already taken raises ``ValueError``.  Must not touch the
    machine.

    :param commands: the :class:`plugins.monitor.commands.CommandTable` being built.
    """
