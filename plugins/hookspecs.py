"""Every hook pyqom calls, grouped by phase.  Implement them with
:data:`plugins.hookimpl`; argument names must match exactly.

Rules for all implementations:

* Never keep state in module globals: attach it to the object you are given
  (``obj.stash[KEY]``) or to your plugin instance.
* Raise :class:`qom.QomError` (with QEMU's message) to refuse; never exit.
* Validation hooks (``qom_device_pre_plug``) must not change anything.
* Order: pluggy calls the implementations of one hook last-registered first
  (``tryfirst``/``trylast`` aside).  Where order matters between plugins, it
  is given by separate hooks called in a fixed sequence (the plug and unplug
  phases below), never by registration order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from plugins.commands import CommandTable
    from plugins.services import AcpiTableBuilder, Services
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
def qom_machine_services(machine: Object, services: Services) -> None:
    """Offer the services you provide for this machine: ``services.provide(KEY, impl,
    provider=NAME)`` (keys and Protocols in :mod:`plugins.services`).

    The first machine hook: called once per machine, after ``/machine`` and its
    main RAM backend exist and before anything is mapped, so that every later
    hook and every device's ``realize`` finds every service.  Implementations
    must not use another plugin's service here (it may not be offered yet).

    :param machine: the machine object at ``/machine``.
    :param services: the machine's services (``services_of(machine)``).
    """


@hookspec
def qom_machine_init(machine: Object) -> None:
    """The machine's RAM is laid out and mapped; set up what the guest needs before
    any device (claim ports, create register blocks).

    Called once per machine, after ``qom_machine_services`` and after the
    machine mapped its main RAM through the ``guest-memory`` service, before
    ``-device`` options are cold-plugged.  Implementations must not depend on
    each other's order; an exception aborts start-up and everything is undone.

    :param machine: the machine object at ``/machine``.
    """


@hookspec
def qom_machine_ready(machine: Object) -> None:
    """Every cold-plugged device is in place; the guest is about to run.

    From now on added devices are hot-plugged.  Prepare what describes the
    final configuration here (the ACPI plugin marks its tables due: they are
    built, asking every plugin through ``qom_acpi_build``, just before guest
    memory is first used or when first asked for).

    :param machine: the machine object at ``/machine``.
    """


@hookspec
def qom_machine_shutdown(machine: Object, reason: str) -> None:
    """The machine is going away; release what you hold for it.

    Every implementation is called, each once, even when one raises: the
    failure is reported (a warning naming the plugin) and the next runs.
    Implementations should still not raise.

    :param machine: the machine object at ``/machine``.
    :param reason: QEMU's shutdown cause, e.g. ``"host-qmp-quit"``.
    """


# ---------------------------------------------------------------------------
# Hotplug, in phases
#
# The hotplug handler the machine chooses for a device (QEMU's
# get_hotplug_handler) calls, for every device it plugs:
#
#   qom_device_pre_plug                  validate; the handler has already
#                                        chosen a memory device's slot and address
#   device.realize()
#   qom_device_plug_claim     (undo)     record what the device now holds
#   qom_device_plug_map       (undo)     map its memory, claim its ports
#   qom_device_plug_describe  (undo)     describe it to the guest (ACPI state, tables)
#   qom_device_plug_announce  (undo)     tell the guest (GPE, insert event): hot plug only
#
# and to remove it, after the guest agreed (qom_device_unplug_request):
#
#   qom_device_unplug_describe           the reverse of describe
#   qom_device_unplug_map                the reverse of map
#   qom_device_unplug_claim              the reverse of claim
#   device.unrealize()                   then DEVICE_DELETED
#
# Each phase is its own hook, so the order between phases is fixed whatever
# order plugins were registered in (pluggy itself calls the implementations
# of one hook last-registered first).  Implementations of the same phase must
# not depend on each other.  tests/plugins/test_hook_order.py pins this order.
# ---------------------------------------------------------------------------


@hookspec
def qom_device_pre_plug(machine: Object, device: Device) -> None:
    """Validate a device before it is realized; raise to refuse it.

    Called by the machine's handler for cold- and hot-plugged bus-less devices
    alike (devices on the ISA bus have no hotplug handler, as in QEMU, and see
    no plug hooks: they do their own set-up in ``realize``); the first
    exception stops the plug and is reported to the user.  Must not change anything.  For a
    memory device the handler has already chosen its slot and address, so
    an implementation can check them.  A plan (``x-plan-plug``) calls it too
    and then stops short of the plug phases: a check that lives here (or in
    the device's ``realize``) is one the plan reports; a check in a plug
    phase would be missed by plans.

    :param machine: the machine object at ``/machine``.
    :param device: the device, with its properties set, not yet realized.
    """


@hookspec
def qom_memory_device_pre_plug(machine: Object, device: Device) -> None:
    """Check what a memory device's type requires of the machine; raise to refuse.

    Called by the machine's handler for a memory device, cold- or hot-plugged,
    before it places the device: after its own check that ACPI is there to
    tell the guest and before every other one (memory hotplug support, slot,
    address), where QEMU's ``pc_memory_pre_plug`` checks a type's own switch
    (``nvdimm is not enabled: missing 'nvdimm' in '-M'``).  Must not change
    anything; ``qom_device_pre_plug`` follows once the device is placed.

    :param machine: the machine object at ``/machine``.
    :param device: the memory device, with its properties set, not yet placed.
    """


@hookspec
def qom_device_plug_claim(machine: Object, device: Device, undo: UndoStack) -> None:
    """Plug phase 1: record what the realized device holds (slots, ranges, ids).

    After each change succeeds, push the callable that reverses it with
    ``undo.push(fn, label)``: if any later step fails, the stack runs in
    reverse and the machine is exactly as before.

    :param machine: the machine object at ``/machine``.
    :param device: the realized device.
    :param undo: the undo stack of this plug.
    """


@hookspec
def qom_device_plug_map(machine: Object, device: Device, undo: UndoStack) -> None:
    """Plug phase 2: make the device reachable by the guest (the address-space
    plugin maps a memory device's host memory at its address).  Push undo steps.

    :param machine: the machine object at ``/machine``.
    :param device: the realized device.
    :param undo: the undo stack of this plug.
    """


@hookspec
def qom_device_plug_describe(machine: Object, device: Device, undo: UndoStack) -> None:
    """Plug phase 3: describe the device to the guest (ACPI slot state, tables
    rebuilt).  The device is mapped by now.  Push undo steps.

    :param machine: the machine object at ``/machine``.
    :param device: the realized device.
    :param undo: the undo stack of this plug.
    """


@hookspec
def qom_device_plug_announce(machine: Object, device: Device, undo: UndoStack) -> None:
    """Plug phase 4: tell a running guest that the device arrived (insert event,
    GPE); ``device.hotplugged`` says whether it is a hot plug.  Everything the
    guest will look at is in place by now.  Push undo steps.

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
def qom_device_unplug_describe(machine: Object, device: Device) -> None:
    """Unplug phase 1 (the reverse of ``qom_device_plug_describe``): the guest no
    longer sees the device described.  Must not raise for a plugged device.

    :param machine: the machine object at ``/machine``.
    :param device: the device being removed.
    """


@hookspec
def qom_device_unplug_map(machine: Object, device: Device) -> None:
    """Unplug phase 2 (the reverse of ``qom_device_plug_map``): unmap, release ports.

    :param machine: the machine object at ``/machine``.
    :param device: the device being removed.
    """


@hookspec
def qom_device_unplug_claim(machine: Object, device: Device) -> None:
    """Unplug phase 3 (the reverse of ``qom_device_plug_claim``): free what the
    device held.  The device is unrealized and deleted next.

    :param machine: the machine object at ``/machine``.
    :param device: the device being removed.
    """


# ---------------------------------------------------------------------------
# ACPI
# ---------------------------------------------------------------------------


@hookspec
def qom_acpi_build(machine: Object, tables: AcpiTableBuilder) -> None:
    """Contribute to the machine's ACPI tables: AML in the DSDT, an SSDT of your
    own, or a whole table (an NVDIMM's NFIT).

    Called every time the tables are built: once after the machine is ready,
    just before guest memory is first used or the tables are first asked for
    (``x-query-acpi-tables``, ``-dump-acpi``); from then on in the ``describe``
    phase of every plug (after every ``claim``), and at the very
    end of every unplug (after every ``unplug_claim``: the ACPI plugin rebuilds
    there with ``trylast``).  So what you add must follow from what your
    ``claim`` implementations record, and it is gone from the tables once
    ``unplug_claim`` has forgotten it.  Must not
    change anything.  Not called for a machine without ACPI (``-no-acpi``).

    :param machine: the machine object at ``/machine``.
    :param tables: the builder; see :class:`plugins.services.AcpiTableBuilder`.
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

    :param commands: the :class:`plugins.commands.CommandTable` being built.
    """
