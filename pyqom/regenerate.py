"""Regenerate a live machine's configuration as QEMU command-line options (a pyqom
addition, issue 14): the options that recreate the machine cold.

:func:`regenerate_options` reads the machine and the composition tree as they
are now and returns the options, in QEMU's syntax, that give the same machine
on a fresh pyqom or on QEMU 7.2:

* ``-machine TYPE`` (and ``max-ram-below-4g``, ``acpi=off`` when set);
* ``-machine ...,memory-backend=ID``, ``hmat=on``, ``nvdimm=on`` and
  ``nvdimm-persistence`` when set;
* ``-cpu MODEL[,phys-bits=N][,vendor=V]`` when one is not the default;
* ``-smp`` with every member when the machine has more than one CPU;
* ``-m size=...,slots=...,maxmem=...``;
* ``-numa node`` (memdev or mem, CPUs, initiator), ``-numa dist`` for every
  pair, and the HMAT's ``hmat-lb``/``hmat-cache``, unless the one node is the
  one pc made by itself;
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
from devices.machine import (
    CPU_VENDOR_AMD,
    DEFAULT_MAX_RAM_BELOW_4G,
    DEFAULT_PHYS_BITS,
    MAIN_RAM_ID,
    PcMachine,
)

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
    """``-machine TYPE[,max-ram-below-4g=...][,acpi=off][,memory-backend=ID][,hmat=on]``."""
    text = machine.type_name.removesuffix("-machine")
    if machine.max_ram_below_4g not in (0, DEFAULT_MAX_RAM_BELOW_4G):
        text += f",max-ram-below-4g={size_text(machine.max_ram_below_4g)}"
    if not machine.acpi:
        text += ",acpi=off"
    backend = machine.ram_backend
    if backend is not None and backend.name_in_parent != MAIN_RAM_ID:
        text += f",memory-backend={opts_value(str(backend.name_in_parent))}"
    if machine.numa.hmat_enabled:
        text += ",hmat=on"
    if machine.nvdimm:
        text += ",nvdimm=on"
    if machine.nvdimm_persistence is not None:
        text += f",nvdimm-persistence={machine.nvdimm_persistence}"
    return ["-machine", text]


def cpu_options(tree: qom.ObjectTree, machine: PcMachine) -> list[str]:
    """``-cpu MODEL[,phys-bits=N][,vendor=V]`` when any is not the default (the
    vendor decides the AMD 1 TiB hole, so the layout)."""
    model = machine.cpu_type.removesuffix("-x86_64-cpu")
    text = model
    if machine.phys_bits != DEFAULT_PHYS_BITS:
        text += f",phys-bits={machine.phys_bits}"
    if machine.cpu_vendor != CPU_VENDOR_AMD:
        text += f",vendor={opts_value(machine.cpu_vendor)}"
    return [] if text == "qemu64" else ["-cpu", text]


def smp_options(tree: qom.ObjectTree, machine: PcMachine) -> list[str]:
    """``-smp`` with every member, when the topology is not one CPU."""
    smp = machine.smp
    if smp.max_cpus == 1:
        return []
    return ["-smp", f"cpus={smp.cpus},sockets={smp.sockets},dies={smp.dies},"
                    f"cores={smp.cores},threads={smp.threads},maxcpus={smp.max_cpus}"]


def numa_options(tree: qom.ObjectTree, machine: PcMachine) -> list[str]:
    """``-numa node`` per node (its memdev or mem, its CPUs, its initiator), a
    ``-numa dist`` per ordered pair, and the HMAT entries; nothing for the node
    pc makes by itself."""
    from devices.numa import (
        HMAT_ASSOCIATIVITIES,
        HMAT_DATA_TYPES,
        HMAT_HIERARCHIES,
        HMAT_POLICIES,
        MAX_NODES,
    )

    state = machine.numa
    if not state.num_nodes or state.automatic:
        return []
    options: list[str] = []
    for node in state.ordered():
        text = f"node,nodeid={node.node_id}"
        if node.memdev is not None:
            text += f",memdev={opts_value(str(node.memdev.name_in_parent))}"
        elif state.have_mem:
            text += f",mem={size_text(node.mem)}"
        cpus = [slot.index for slot in machine.cpu_slots if slot.node_id == node.node_id]
        text += "".join(f",cpus={part}" for part in _node_ranges(cpus))
        if state.hmat_enabled and node.initiator < MAX_NODES and not node.has_cpu:
            text += f",initiator={node.initiator}"
        options += ["-numa", text]
    if state.have_distance:
        for src in state.ordered():
            for dst in state.ordered():
                if src.node_id != dst.node_id:
                    options += ["-numa", f"dist,src={src.node_id},dst={dst.node_id},"
                                         f"val={state.distance(src.node_id, dst.node_id)}"]
    for (hierarchy, data_type), lb in sorted(state.hmat_lb.items()):
        kind = "latency" if data_type <= HMAT_DATA_TYPES.index("write-latency") else "bandwidth"
        for initiator, target, value in lb.entries:
            options += ["-numa", f"hmat-lb,initiator={initiator},target={target},"
                                 f"hierarchy={HMAT_HIERARCHIES[hierarchy]},"
                                 f"data-type={HMAT_DATA_TYPES[data_type]},{kind}={value}"]
    for node_id in sorted(state.hmat_cache):
        for level, cache in sorted(state.hmat_cache[node_id].items()):
            options += ["-numa", f"hmat-cache,node-id={node_id},size={cache.size},"
                                 f"level={level},"
                                 f"associativity={HMAT_ASSOCIATIVITIES[cache.associativity]},"
                                 f"policy={HMAT_POLICIES[cache.policy]},"
                                 f"line={cache.line}"]
    return options


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
    machine_options, cpu_options, smp_options, memory_options, global_options,
    object_options, numa_options, device_options,
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
