"""Regenerate a live machine's configuration as QEMU command-line options (a pyqom
addition, issue 14): the options that recreate the machine cold.

:func:`regenerate_options` reads the machine and the composition tree as they
are now and returns the options, in QEMU's syntax, that give the same machine
on a fresh pyqom or on QEMU 7.2:

* ``-machine TYPE`` (and ``max-ram-below-4g``, ``acpi=off`` when set);
* ``-cpu qemu64,phys-bits=N`` when the address width is not the default;
* ``-m size=...,slots=...,maxmem=...``;
* ``-global`` settings (``PIIX4_PM.memory-hotplug-support=off``, and every
  device ``-global`` the machine was given);
* ``-object`` for every user-created object in ``/objects`` (plugged or not),
  with each property that differs from a fresh object of its type;
* ``-device`` for every device in ``/machine/peripheral`` and
  ``/machine/peripheral-anon``, with its non-default properties and, for a
  memory device, ``slot=`` and ``addr=`` pinned so placement cannot differ.

Each kind of option is one function ``(tree, machine) -> list[str]`` in
:data:`SECTIONS`; a new kind of option (``-smp``, ``-numa``) is one more
function in that tuple.  Values are written as QemuOpts reads them: a comma
inside a value is doubled.  Runtime options (monitors, ``-S``, ``-display``,
``-kernel``, chardevs) are not part of the configuration and are not
regenerated.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterable
from typing import Any, Final

import qom
from devices.machine import DEFAULT_MAX_RAM_BELOW_4G, DEFAULT_PHYS_BITS, MAIN_RAM_ID, PcMachine

#: A regenerated option kind: the options it contributes, from the live state.
Section = Callable[[qom.ObjectTree, PcMachine], list[str]]

#: device properties that describe state, not configuration (never written)
_DEVICE_STATE: Final = frozenset({"type", "realized", "hotplugged", "hotpluggable",
                                  "parent_bus", "id"})
#: memory-device properties always written, default or not
_PINNED: Final = ("slot", "addr")
_UNITS: Final = (("T", 40), ("G", 30), ("M", 20), ("K", 10))


def opts_value(value: str) -> str:
    """A QemuOpts value: each comma doubled, so ``a,b`` reads back as one value."""
    return value.replace(",", ",,")


def size_text(size: int) -> str:
    """A size QEMU's size parser reads back exactly, in the largest whole unit
    (``4G``, ``1536M``); ``0`` stays ``0``."""
    for suffix, shift in _UNITS:
        if size and size % (1 << shift) == 0:
            return f"{size >> shift}{suffix}"
    return str(size)


def _node_ranges(nodes: Iterable[int]) -> list[str]:
    """``[0, 1, 3]`` as ``["0-1", "3"]`` (QEMU's list syntax for ``host-nodes``)."""
    ranges: list[str] = []
    ordered = sorted(set(nodes))
    start = 0
    while start < len(ordered):
        end = start
        while end + 1 < len(ordered) and ordered[end + 1] == ordered[end] + 1:
            end += 1
        first, last = ordered[start], ordered[end]
        ranges.append(str(first) if first == last else f"{first}-{last}")
        start = end + 1
    return ranges


def _opts_items(prop: qom.Property, value: Any) -> list[str]:
    """``name=value`` items of one property's JSON value, as QemuOpts takes them."""
    name = prop.name
    if isinstance(value, bool):
        return [f"{name}={'on' if value else 'off'}"]
    if isinstance(value, list):
        return [f"{name}={part}" for part in _node_ranges(value)]
    if prop.is_link and isinstance(value, str):
        # a link to an object of /objects is written as its id, as users write it
        parent, _, last = value.rpartition("/")
        if parent == "/objects":
            value = last
    return [f"{name}={opts_value(str(value))}"]


def _writable_values(obj: qom.Object) -> dict[str, tuple[qom.Property, Any]]:
    """Every readable, writable, non-child property of ``obj``, with its value as
    ``qom-get`` shows it."""
    values: dict[str, tuple[qom.Property, Any]] = {}
    for prop in obj.iter_properties():
        if prop.is_child or not prop.readable or not prop.writable:
            continue
        try:
            values[prop.name] = (prop, obj.get_json(prop.name))
        except qom.QomError:
            continue   # a property with nothing to read now (QEMU leaves it out too)
    return values


def _non_default(tree: qom.ObjectTree, obj: qom.Object,
                 skip: frozenset[str] = frozenset()) -> dict[str, tuple[qom.Property, Any]]:
    """The properties of ``obj`` whose value differs from a fresh object of its type."""
    probe = tree.new(obj.type_name)
    try:
        defaults = {name: value for name, (_, value) in _writable_values(probe).items()}
    finally:
        probe.finalize()
    return {name: (prop, value) for name, (prop, value) in _writable_values(obj).items()
            if name not in skip and defaults.get(name, _MISSING) != value}


_MISSING: Final = object()


def machine_options(tree: qom.ObjectTree, machine: PcMachine) -> list[str]:
    """``-machine TYPE[,max-ram-below-4g=...][,acpi=off]``."""
    text = machine.type_name.removesuffix("-machine")
    if machine.max_ram_below_4g not in (0, DEFAULT_MAX_RAM_BELOW_4G):
        text += f",max-ram-below-4g={size_text(machine.max_ram_below_4g)}"
    if not machine.acpi:
        text += ",acpi=off"
    return ["-machine", text]


def cpu_options(tree: qom.ObjectTree, machine: PcMachine) -> list[str]:
    """``-cpu qemu64,phys-bits=N`` when the width is not the default (40)."""
    if machine.phys_bits == DEFAULT_PHYS_BITS:
        return []
    return ["-cpu", f"qemu64,phys-bits={machine.phys_bits}"]


def memory_options(tree: qom.ObjectTree, machine: PcMachine) -> list[str]:
    """``-m size=...[,slots=N,maxmem=...]`` (``size`` with a unit: a bare number is MiB)."""
    text = f"size={size_text(machine.ram_size)}"
    if machine.ram_slots or machine.maxram_size != machine.ram_size:
        text += f",slots={machine.ram_slots},maxmem={size_text(machine.maxram_size)}"
    return ["-m", text]


def global_options(tree: qom.ObjectTree, machine: PcMachine) -> list[str]:
    """``-global`` for PIIX4_PM's memory-hotplug switch and every device global."""
    options: list[str] = []
    if not machine.memory_hotplug_support:
        options += ["-global", "PIIX4_PM.memory-hotplug-support=off"]
    for driver, prop, value in tree.globals:
        options += ["-global", f"{driver}.{prop}={opts_value(value)}"]
    return options


def object_options(tree: qom.ObjectTree, machine: PcMachine) -> list[str]:
    """``-object TYPE,id=ID,...`` for every user-created object, in creation order
    (the machine's own ``pc.ram`` is the machine's, not the user's)."""
    options: list[str] = []
    for name, obj in tree.objects.children():
        if name == MAIN_RAM_ID or not obj.is_a(qom.TYPE_USER_CREATABLE):
            continue
        items = [obj.type_name, f"id={name}"]
        for prop, value in _non_default(tree, obj).values():
            items += _opts_items(prop, value)
        options += ["-object", ",".join(items)]
    return options


def _devices(tree: qom.ObjectTree) -> list[tuple[str | None, qom.Object]]:
    """Devices with an id, then those without (``-device`` ids are peripheral)."""
    found: list[tuple[str | None, qom.Object]] = []
    for container, named in (("/machine/peripheral", True), ("/machine/peripheral-anon", False)):
        try:
            parent = tree.container(container)
        except qom.QomError:
            continue
        found += [(name if named else None, device) for name, device in parent.children()]
    return found


def device_options(tree: qom.ObjectTree, machine: PcMachine) -> list[str]:
    """``-device DRIVER[,id=ID],...``: non-default properties, and for memory
    devices ``slot=`` and ``addr=`` always."""
    options: list[str] = []
    for device_id, device in _devices(tree):
        items = [device.type_name]
        if device_id is not None:
            items.append(f"id={device_id}")
        values = _non_default(tree, device, skip=_DEVICE_STATE)
        current = _writable_values(device)
        for pinned in _PINNED:
            if device.is_a(qom.TYPE_MEMORY_DEVICE) and pinned in current:
                values.setdefault(pinned, current[pinned])
        for prop, value in values.values():
            items += _opts_items(prop, value)
        options += ["-device", ",".join(items)]
    return options


#: The option kinds, in the order they are written (QEMU applies ``-object``
#: before the machine and ``-device`` after it, whatever the order).
SECTIONS: Final[tuple[Section, ...]] = (
    machine_options, cpu_options, memory_options, global_options,
    object_options, device_options,
)


def regenerate_options(tree: qom.ObjectTree, machine: PcMachine,
                       sections: Iterable[Section] = SECTIONS) -> list[str]:
    """The command-line options that recreate ``machine`` cold, as an argv list."""
    options: list[str] = []
    for section in sections:
        options += section(tree, machine)
    return options


def command_line_text(options: Iterable[str]) -> str:
    """The options as one shell line, each option and its argument quoted as needed."""
    return shlex.join(options)
