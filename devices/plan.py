"""Planning a plug and reading the room left (pyqom additions, issue 14).

:func:`plan_plug` (QMP ``x-plan-plug``, HMP ``x_plan_plug``,
``VM.plan_plug``) answers what a list of ``object-add`` and ``device_add``
requests would do, without doing it.  It runs the real code, not a model
of it:

* ``object-add``: the QAPI phase and the creation phase
  (:func:`qom.user_creatable.object_add_options`,
  :func:`~qom.user_creatable.attach_object`: the id, every property setter,
  the place under ``/objects``), then, for a memory backend,
  :meth:`~backends.base.MemoryBackend.plan_complete`: ``complete()``'s
  checks with nothing allocated (its host memory is a *planned*
  :class:`~backends.host.HostMemory`; a 64 GiB plan maps nothing);
* ``device_add``: :func:`qom.hotplug.prepare_device` (steps 1 to 6 of
  ``device_add``), then :func:`qom.device.plan_realize`: the machine's
  ``pre_plug`` (the slot and address, QEMU's placement,
  ``qom_device_pre_plug``) and the device's ``realize`` (node, busy
  backend); the planned memory device is counted as plugged
  (:meth:`~devices.machine.PcMachine.record_plugged`) so the next request
  is placed after it.  The plug phases (mapping, ACPI, the GPE) are not run:
  they wire in what ``pre_plug`` placed and add no check of their own.

Every change goes on one :class:`~qom.UndoStack` that is rolled back
whatever happens, and the tree's device counters are put back, so the
machine is as it was (``tests/devices/test_plan.py`` checks the tree,
every property, the mappings, the ACPI tables and the host's mappings).
What a plan cannot foresee is the host refusing memory (``mmap`` or
``mbind`` failing).  A ``memory-backend-file`` plan opens the file as
``object-add`` does (one that does not exist yet is created and removed
again at once) and neither grows nor maps it; a backend type of a plugin
that does not plan its allocation is refused in one line (add it, then
plan the device).

:func:`memory_capacity` (``x-query-memory-capacity``) reads the free slots,
free ``maxmem``, the free ranges of the device-memory region and, for each
alignment, the largest DIMM that would fit now (asking QEMU's first fit,
:func:`devices.memory_device.find_address`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import attrs

from backends.base import MemoryBackend
from devices import memory_device
from devices.machine import SLOT_ENFORCE_ALIGNED_DIMM, PcMachine
from qom import KEYVAL, Input, MemoryDevice, ObjectTree, QomError, UndoStack, as_memory_device
from qom.device import plan_realize
from qom.hotplug import prepare_device
from qom.reprs import FieldsValue
from qom.user_creatable import attach_object, object_add_options

#: the alignments ``x-query-memory-capacity`` reports when not asked for others:
#: the page size (file backends), 2 MiB (RAM and memfd backends), 1 GiB huge pages
DEFAULT_ALIGNMENTS: Final = (4096, 2 << 20, 1 << 30)
#: the commands a plan takes
PLAN_COMMANDS: Final = ("object-add", "device_add")


@attrs.frozen(repr=False, eq=False)
class PlanRequest(FieldsValue):
    """One request of a plan.

    :ivar command: ``object-add`` or ``device_add``.
    :ivar arguments: its arguments; for ``device_add`` already QemuOpts strings
        (:func:`qom.qemu_opts_from_qdict`) when ``source`` is keyval.
    :ivar source: how the values are read (QMP JSON, HMP keyval).
    """

    command: str
    arguments: Mapping[str, Any]
    source: Input


def pc_machine_of(tree: ObjectTree) -> PcMachine:
    """The tree's pc machine; a one-line error before board init."""
    machine = tree.machine
    if not isinstance(machine, PcMachine):
        raise QomError("there is no machine yet")
    return machine


def plan_plug(tree: ObjectTree, requests: Sequence[PlanRequest]) -> dict[str, Any]:
    """Dry-run ``requests`` in order, as the real commands would run them, and
    give the machine back exactly as it was.

    :returns: ``fits`` (all requests would succeed); ``objects`` (each planned
        backend's ``id``, ``size``, ``align``) and ``devices`` (``id``,
        ``driver``; a memory device's ``slot``, ``addr``, ``size``, ``align``
        and ``padding``, the bytes left empty below it) for the requests that
        fit; when one does not, ``failed`` (its index) and ``error`` (``class``
        and ``desc``, exactly what the real command answers); then the
        machine as the requests that fit would leave it (:func:`summary`).
    """
    machine = pc_machine_of(tree)
    for request in requests:
        if request.command not in PLAN_COMMANDS:
            raise QomError(f"x-plan-plug: '{request.command}' cannot be planned, "
                           "only object-add and device_add")
    counters = (tree.anon_device_count, tree.unattached_count)
    undo = UndoStack()
    objects: list[dict[str, Any]] = []
    devices: list[dict[str, Any]] = []
    answer: dict[str, Any] = {"fits": True}
    try:
        for index, request in enumerate(requests):
            try:
                if request.command == "object-add":
                    objects.append(_plan_object(tree, request, undo))
                else:
                    devices.append(_plan_device(tree, machine, request, undo))
            except QomError as err:
                answer = {"fits": False, "failed": index,
                          "error": {"class": err.error_class, "desc": str(err)}}
                break
        answer.update({"objects": objects, "devices": devices, **summary(machine)})
    finally:
        undo.rollback()
        tree.anon_device_count, tree.unattached_count = counters
    return answer


def _plan_object(tree: ObjectTree, request: PlanRequest, undo: UndoStack) -> dict[str, Any]:
    options = object_add_options(tree, request.arguments, request.source)
    klass = tree.registry.find_class(options.qom_type)
    if klass is None or not klass.is_a("memory-backend"):
        raise QomError(f"x-plan-plug: objects of type '{options.qom_type}' cannot be "
                       "planned, only memory backends")
    obj = attach_object(tree, options)
    undo.push(obj.unparent, f"remove planned /objects/{options.id}")
    assert isinstance(obj, MemoryBackend)
    planned = obj.plan_complete()
    return {"id": options.id, "qom-type": options.qom_type, "size": planned.size,
            "align": planned.align}


def _plan_device(tree: ObjectTree, machine: PcMachine, request: PlanRequest,
                 undo: UndoStack) -> dict[str, Any]:
    device = prepare_device(tree, request.arguments, request.source)
    undo.push(device.unparent, f"remove planned {device.type_name}")
    handler = plan_realize(device, undo)
    entry: dict[str, Any] = {}
    if device.id is not None:
        entry["id"] = device.id
    entry["driver"] = device.type_name
    memory = as_memory_device(device)
    if memory is None or handler is not machine:
        return entry
    machine.record_plugged(memory, undo)
    slot = memory.get_slot()
    if slot is not None:
        entry["slot"] = slot
    addr, size = memory.get_addr(), memory.get_region_size()
    entry.update({
        "addr": addr, "size": size,
        "align": memory_device.placement_alignment(memory, enforce_aligned=bool(
            machine.object_class.slots[SLOT_ENFORCE_ALIGNED_DIMM])),
        "padding": addr - _end_below(machine, memory),
    })
    return entry


def _end_below(machine: PcMachine, memory: MemoryDevice) -> int:
    """Where the used range just below ``memory`` ends (the region's base if none)."""
    end = machine.device_memory_base
    for other in machine.memory_devices():
        if other is memory:
            break
        end = other.get_addr() + other.get_region_size()
    return end


def summary(machine: PcMachine) -> dict[str, Any]:
    """What is left: free slots, free ``maxmem``, the highest address memory
    devices use (absent if none) against the CPU's ``phys-bits`` limit."""
    capacity = (machine.maxram_size - machine.ram_size) & memory_device.U64_MASK
    answer: dict[str, Any] = {
        "slots-left": memory_device.free_slot_count(machine),
        "maxmem-left": capacity - memory_device.plugged_size(machine),
    }
    ends = [dev.get_addr() + dev.get_region_size() - 1 for dev in machine.memory_devices()]
    if ends:
        answer["highest-address"] = max(ends)
    answer["phys-bits"] = machine.phys_bits
    answer["phys-bits-limit"] = (1 << machine.phys_bits) - 1
    return answer


def memory_capacity(machine: PcMachine,
                    alignments: Sequence[int] = DEFAULT_ALIGNMENTS) -> dict[str, Any]:
    """``x-query-memory-capacity``: the room memory devices have now.

    :returns: ``slots`` and ``free-slots``; ``maxmem-free``; the
        device-memory region (``device-memory-base``, ``-size``) and its
        ``free-ranges`` (``addr``, ``size``); ``fragmentation``, the percent
        of the free region outside its largest free range (0: one range);
        ``largest-dimm``, per alignment the largest DIMM (a multiple of it)
        QEMU's first fit places now, 0 when none fits or no slot is free; and
        :func:`summary`'s ``highest-address`` and ``phys-bits-limit``.
    :raises QomError: an alignment that is not a power of two.
    """
    for align in alignments:
        if align <= 0 or align & (align - 1):
            raise QomError(f"x-query-memory-capacity: alignment {align} is not a power of two")
    ranges = memory_device.free_ranges(machine)
    total_free = sum(size for _, size in ranges)
    largest_range = max((size for _, size in ranges), default=0)
    free_slots = memory_device.free_slot_count(machine)
    left = summary(machine)
    answer: dict[str, Any] = {
        "slots": machine.ram_slots,
        "free-slots": free_slots,
        "maxmem-free": left["maxmem-left"],
        "device-memory-base": machine.device_memory_base,
        "device-memory-size": machine.device_memory_size,
        "free-ranges": [{"addr": start, "size": size} for start, size in ranges],
        "fragmentation": (100 - largest_range * 100 // total_free) if total_free else 0,
        "largest-dimm": [
            {"align": align,
             "size": memory_device.largest_fit(machine, align) if free_slots else 0}
            for align in alignments],
    }
    if "highest-address" in left:
        answer["highest-address"] = left["highest-address"]
    answer["phys-bits-limit"] = left["phys-bits-limit"]
    return answer


def requests_from_qmp(requests: Sequence[Any]) -> list[PlanRequest]:
    """``x-plan-plug``'s ``requests``: ``{"execute": "object-add" | "device_add",
    "arguments": {...}}`` each, read as QMP reads those commands (``device_add``'s
    values re-read as strings, as 7.2 does)."""
    from qom import JSON, qemu_opts_from_qdict

    planned = []
    for index, request in enumerate(requests):
        where = f"requests[{index}]"
        if not isinstance(request, dict):
            raise QomError(f"Invalid parameter type for '{where}', expected: object")
        command = request.get("execute")
        if not isinstance(command, str):
            raise QomError(f"Parameter '{where}.execute' is missing" if command is None
                           else f"Invalid parameter type for '{where}.execute', "
                           "expected: string")
        arguments = request.get("arguments", {})
        if not isinstance(arguments, dict):
            raise QomError(f"Invalid parameter type for '{where}.arguments', expected: object")
        if command == "device_add":
            planned.append(PlanRequest(command, qemu_opts_from_qdict(arguments), KEYVAL))
        else:
            planned.append(PlanRequest(command, arguments, JSON))
    return planned
