"""Placing memory devices: QEMU 7.2's ``hw/mem/memory-device.c`` and the slot
part of ``pc_dimm_pre_plug``, for the pc machine's hotplug handler.

:func:`pre_plug` validates and places a memory device exactly as QEMU 7.2's
``pc_memory_pre_plug`` -> ``pc_dimm_pre_plug`` -> ``memory_device_pre_plug``
do, writing the chosen slot (for a device that needs
one) and address into the device and changing nothing else.  Slots and
ranges in use are derived from the plugged memory devices, so an unplug (or
a failed plug) frees them with no bookkeeping to undo.

Everything here works through :class:`qom.MemoryDevice`, so a memory device
nobody wrote into pyqom is placed the same way as ``pc-dimm``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Protocol

from qom import MemoryDevice, QomError
from qom.logs import LazyLogger

U64_MASK: Final = (1 << 64) - 1
TARGET_PAGE_SIZE: Final = 4096
#: ``slot`` value meaning "any free slot"
UNASSIGNED_SLOT: Final = -1

log = LazyLogger(__name__)


class PcMachine(Protocol):
    """What placing memory devices reads of the machine (``devices.machine.PcMachine``
    is one); a protocol, so this module does not import the machine back."""

    memory_hotplug_support: bool
    device_memory_base: int
    device_memory_size: int

    @property
    def ram_size(self) -> int: ...

    @property
    def maxram_size(self) -> int: ...

    @property
    def ram_slots(self) -> int: ...

    @property
    def has_device_memory(self) -> bool: ...

    @property
    def acpi_available(self) -> bool:
        """ACPI is on and its plugin serves the machine (it tells the guest)."""
        ...

    def memory_devices(self) -> list[MemoryDevice]: ...


def _used_slots(machine: PcMachine) -> set[int]:
    return {slot for dev in machine.memory_devices() if (slot := dev.get_slot()) is not None}


def assign_slot(machine: PcMachine, device: MemoryDevice) -> int:
    """QEMU's ``pc_dimm_pre_plug`` slot part: range, then free slot, with its messages."""
    slot = device.get_slot()
    assert slot is not None
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


def find_address(machine: PcMachine, hint: int | None, align: int, size: int) -> int:
    """QEMU's ``memory_device_get_free_addr``: first fit in address order.

    Pure: it reads the machine and the plugged devices and changes nothing, so
    the capacity query (``x-query-memory-capacity``) asks it too.
    """
    if not machine.has_device_memory:
        raise QomError("memory devices (e.g. for memory hotplug) are not enabled, "
                       "please specify the maxmem option")
    base, region_size = machine.device_memory_base, machine.device_memory_size
    region_last = base + region_size - 1
    if base % align:
        log.warning("the alignment (0x%x) exceeds the expected maximum alignment, memory will "
                    "get fragmented and not all 'maxmem' might be usable for memory devices.",
                    align)
    used = plugged_size(machine)
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
        other_start = other.get_addr()
        other_last = other_start + other.get_region_size() - 1
        if other_start <= start + size - 1 and start <= other_last:
            if hint is not None:
                other_id = getattr(other, "id", None)
                name = other_id if other_id is not None else "(unnamed)"
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


def plugged_size(machine: PcMachine) -> int:
    """Bytes of plugged memory devices (``plugged-memory`` of
    ``query-memory-size-summary``; QEMU's ``get_plugged_memory_size``)."""
    return sum(dev.get_plugged_size() for dev in machine.memory_devices())


def query_memory_devices(machine: PcMachine) -> list[dict[str, Any]]:
    """``query-memory-devices``: each plugged memory device's own entry, by address."""
    return [dev.fill_device_info() for dev in machine.memory_devices()]


def pre_plug(machine: PcMachine, device: MemoryDevice, *, enforce_aligned: bool,
             device_checks: Callable[[], None] | None = None) -> None:
    """Check that memory hotplug is on, then pick the slot (if the device needs
    one) and the address; QEMU's messages, in QEMU's order.

    :param device_checks: what the device type requires of the machine, run
        after the ACPI check and before the others (QEMU's ``nvdimm`` check).
    """
    if not machine.acpi_available:
        raise QomError("memory hotplug is not enabled: missing acpi device or acpi disabled")
    if device_checks is not None:
        device_checks()
    if not machine.memory_hotplug_support:
        raise QomError("memory hotplug is not enabled: "
                       "PIIX4_PM.memory-hotplug-support is not set")
    if device.get_slot() is not None:
        device.set_slot(assign_slot(machine, device))
    size = device.get_region_size()
    align = placement_alignment(device, enforce_aligned=enforce_aligned)
    device.set_addr(find_address(machine, device.get_addr() or None, align, size))


def placement_alignment(device: MemoryDevice, *, enforce_aligned: bool) -> int:
    """The alignment :func:`pre_plug` places ``device`` with: its own minimum, or
    the page size on machines that do not enforce aligned DIMMs (pc-i440fx-2.1)."""
    return device.get_min_alignment() if enforce_aligned else TARGET_PAGE_SIZE


def free_slot_count(machine: PcMachine) -> int:
    """Slots no plugged memory device holds."""
    return max(machine.ram_slots - len(_used_slots(machine)), 0)


def free_ranges(machine: PcMachine) -> list[tuple[int, int]]:
    """The device-memory region's ranges no memory device covers: (start, size), by address."""
    if not machine.has_device_memory:
        return []
    cursor = machine.device_memory_base
    end = cursor + machine.device_memory_size
    ranges = []
    for dev in machine.memory_devices():
        start = dev.get_addr()
        if start > cursor:
            ranges.append((cursor, start - cursor))
        cursor = max(cursor, start + dev.get_region_size())
    if cursor < end:
        ranges.append((cursor, end - cursor))
    return ranges


def largest_fit(machine: PcMachine, align: int) -> int:
    """The largest size, a multiple of ``align``, that :func:`find_address` places
    now without an address given (0 if none): a binary search over
    :func:`find_address` itself (a size that fits means every smaller multiple
    fits too: the same free range, or less of ``maxmem``, takes it)."""
    if not machine.has_device_memory:
        return 0

    def fits(size: int) -> bool:
        try:
            find_address(machine, None, align, size)
        except QomError:
            return False
        return True

    lo, hi = 0, machine.device_memory_size // align
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(mid * align):
            lo = mid
        else:
            hi = mid - 1
    return lo * align


def unplug_request(machine: PcMachine, device: MemoryDevice, type_name: str) -> None:
    """QEMU's ``pc_memory_unplug_request``: refuse when there is no ACPI to tell the
    guest, or when the guest could not eject the device (it has no ACPI slot:
    ``piix4_device_unplug_request_cb``'s message)."""
    if not machine.acpi_available:
        raise QomError("memory hotplug is not enabled: missing acpi device or acpi disabled")
    if device.get_slot() is None:
        raise QomError(f"acpi: device unplug request for not supported device type: {type_name}")
