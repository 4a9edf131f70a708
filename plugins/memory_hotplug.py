"""The pc machine's memory hotplug handler: slot and address of every DIMM.

``qom_device_pre_plug`` validates and places a memory device exactly as QEMU
7.2's ``pc_memory_pre_plug`` -> ``pc_dimm_pre_plug`` ->
``memory_device_pre_plug`` do (QEMU-SPEC 4.2 step 4), writing the chosen
``slot`` and ``addr`` into the device and changing nothing else.  Slots and
ranges in use are derived from the realized memory devices, so an unplug (or a
failed plug) frees them with no bookkeeping to undo.
"""

from __future__ import annotations

import logging
from typing import Any, cast

from devices.interfaces import TYPE_MEMORY_DEVICE, MemoryDevice
from devices.machine import SLOT_ENFORCE_ALIGNED_DIMM as _ENFORCE_ALIGNED_DIMM
from devices.machine import TARGET_PAGE_SIZE, U64_MASK, PcMachine
from devices.pc_dimm import TYPE_PC_DIMM, UNASSIGNED_SLOT
from plugins import hookimpl
from qom import Device, QomError, UndoStack

log = logging.getLogger(__name__)


def _is_memory_device_of_pc(machine: Any, device: Device) -> bool:
    return isinstance(machine, PcMachine) and device.is_a(TYPE_MEMORY_DEVICE)


def _used_slots(machine: PcMachine) -> set[int]:
    return {dev.slot for dev in machine.memory_devices()  # type: ignore[attr-defined]
            if dev.is_a(TYPE_PC_DIMM)}


def assign_slot(machine: PcMachine, device: Any) -> int:
    """QEMU's ``pc_dimm_pre_plug`` slot part: range, then free slot, with its messages."""
    slot = device.slot
    ram_slots = machine.ram_slots
    if slot != UNASSIGNED_SLOT and (slot < 0 or slot >= ram_slots):
        raise QomError(f"invalid slot number {slot}, valid range is "
                       f"[0-{(ram_slots - 1) & U64_MASK}]")
    # QEMU passes the slot count on as a C int.
    max_slots = ram_slots if ram_slots < (1 << 31) else ram_slots - (1 << 32)
    if max_slots <= 0:
        raise QomError("no slots where allocated, please specify the 'slots' option")
    used = _used_slots(machine)
    if slot != UNASSIGNED_SLOT:
        if slot >= max_slots:
            raise QomError(f"invalid slot number {slot}, valid range is [0-{max_slots - 1}]")
        if slot in used:
            raise QomError(f"slot {slot} is busy")
        return int(slot)
    free = next((candidate for candidate in range(max_slots) if candidate not in used), None)
    if free is None:
        raise QomError("no free slots available")
    return free


def _align_up(value: int, align: int) -> int:
    return ((value + align - 1) // align * align) & U64_MASK


def find_address(machine: PcMachine, device: MemoryDevice, hint: int | None,
                 align: int, size: int) -> int:
    """QEMU's ``memory_device_get_free_addr``: first fit in address order."""
    if not machine.has_device_memory:
        raise QomError("memory devices (e.g. for memory hotplug) are not enabled, "
                       "please specify the maxmem option")
    base, region_size = machine.device_memory_base, machine.device_memory_size
    region_last = base + region_size - 1
    if base % align:
        log.warning("the alignment (0x%x) exceeds the expected maximum alignment, memory will "
                    "get fragmented and not all 'maxmem' might be usable for memory devices.",
                    align)
    used = sum(dev.region_size() for dev in machine.memory_devices())  # type: ignore[attr-defined]
    capacity = (machine.maxram_size - machine.ram_size) & U64_MASK
    if used + size > U64_MASK or used + size > capacity:
        raise QomError(f"not enough space, currently 0x{used:x} in use of total space for "
                       f"memory devices 0x{capacity:x}")
    if hint is not None and hint % align:
        raise QomError(f"address must be aligned to 0x{align:x} bytes")
    if size % align:
        raise QomError(f"backend memory size must be multiple of 0x{align:x}")
    if hint is not None:
        if hint + size > U64_MASK + 1 or hint < base or hint + size - 1 > region_last:
            raise QomError(f"can't add memory device [0x{hint:x}:0x{size:x}], usable range for "
                           f"memory devices [0x{base:x}:0x{region_size:x}]")
        start = hint
    else:
        start = _align_up(base, align)
        if start + size > U64_MASK + 1:
            raise QomError("can't add memory device, device too big")
    empty = False
    for other in machine.memory_devices():
        other_start = other.addr  # type: ignore[attr-defined]
        other_last = other_start + other.region_size() - 1  # type: ignore[attr-defined]
        if other_start <= start + size - 1 and start <= other_last:
            if hint is not None:
                name = other.id if other.id is not None else "(unnamed)"
                raise QomError(f"address range conflicts with memory device id='{name}'")
            start = _align_up(other_last + 1, align)
            if start == 0 or start + size > U64_MASK + 1:
                empty = True
                break
        elif other_start > start + size - 1:
            break
    if empty or start < base or start + size - 1 > region_last:
        raise QomError("could not find position in guest address space for memory device - "
                       "memory fragmented due to alignments")
    return start


@hookimpl
def qom_device_pre_plug(machine: Any, device: Device) -> None:
    """Check that memory hotplug is on, then pick the DIMM's slot and address."""
    if not _is_memory_device_of_pc(machine, device):
        return
    if not machine.acpi:
        raise QomError("memory hotplug is not enabled: missing acpi device or acpi disabled")
    if not machine.memory_hotplug_support:
        raise QomError("memory hotplug is not enabled: "
                       "PIIX4_PM.memory-hotplug-support is not set")
    device = cast(MemoryDevice, device)  # a memory-device (QOM-checked above)
    if device.is_a(TYPE_PC_DIMM):
        device.slot = assign_slot(machine, device)  # type: ignore[attr-defined]
    size = device.region_size()
    align = (device.region_alignment()
             if machine.object_class.slots[_ENFORCE_ALIGNED_DIMM] else TARGET_PAGE_SIZE)
    device.addr = find_address(machine, device, device.addr or None, align, size)


@hookimpl
def qom_device_plug(machine: Any, device: Device, undo: UndoStack) -> None:
    """Record the plugged memory device: its slot and range are now taken."""
    if _is_memory_device_of_pc(machine, device):
        machine.record_plug(device)
        undo.push(lambda: machine.forget_plug(device), "forget memory device")


@hookimpl
def qom_device_unplug(machine: Any, device: Device) -> None:
    """Free the unplugged memory device's slot and range."""
    if _is_memory_device_of_pc(machine, device):
        machine.forget_plug(device)


@hookimpl(tryfirst=True)
def qom_device_unplug_request(machine: Any, device: Device) -> None:
    """QEMU's ``pc_memory_unplug_request``: refuse when there is no ACPI to tell the guest."""
    if _is_memory_device_of_pc(machine, device) and not machine.acpi:
        raise QomError("memory hotplug is not enabled: missing acpi device or acpi disabled")
