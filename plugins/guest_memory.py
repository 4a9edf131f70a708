"""Built-in plugin: keeps the machine's guest address space in step with its memory.

* ``qom_machine_init``: one :class:`~plugins.address_space.GuestAddressSpace`
  per machine; ``pc.ram`` mapped as ``ram-below-4g`` at 0 and
  ``ram-above-4g`` at 4 GiB (or 1 TiB after the AMD relocation), straight
  over the backend's host memory.
* ``qom_device_plug``: a memory device mapped at its address over its
  backend's memory (with an undo step); ``qom_device_unplug``: unmapped.
* ``qom_machine_shutdown``: the engine released.

The address space lives in the machine's stash under :data:`ADDRESS_SPACE`;
other plugins reach it with :func:`address_space_of`.
"""

from __future__ import annotations

from typing import Any, cast

from devices.interfaces import TYPE_MEMORY_DEVICE, MemoryDevice
from devices.machine import PcMachine
from plugins import hookimpl
from plugins.address_space import GuestAddressSpace
from qom import Device, Object, StashKey, UndoStack

ADDRESS_SPACE: StashKey[GuestAddressSpace] = StashKey("guest-address-space")


def address_space_of(machine: Object) -> GuestAddressSpace:
    """The guest address space of ``machine`` (after ``qom_machine_init``)."""
    return machine.stash[ADDRESS_SPACE]


def _range_name(device: Device) -> str:
    return device.canonical_path or f"{device.type_name}@{id(device):x}"


@hookimpl
def qom_machine_init(machine: Object) -> None:
    """Create the guest's address space and map main RAM below and above 4 GiB."""
    if not isinstance(machine, PcMachine) or machine.ram_backend is None:
        return
    memory = machine.ram_backend.host_memory
    assert memory is not None
    space = GuestAddressSpace()
    try:
        space.map_ram("ram-below-4g", 0, memory, size=machine.below_4g_mem_size)
        if machine.above_4g_mem_size:
            space.map_ram("ram-above-4g", machine.above_4g_mem_start, memory,
                          size=machine.above_4g_mem_size, offset=machine.below_4g_mem_size)
    except BaseException:
        space.close()
        raise
    machine.stash[ADDRESS_SPACE] = space


@hookimpl
def qom_device_plug(machine: Object, device: Device, undo: UndoStack) -> None:
    """Map a plugged memory device's backend at the device's address."""
    if ADDRESS_SPACE not in machine.stash or not device.is_a(TYPE_MEMORY_DEVICE):
        return
    device = cast(MemoryDevice, device)  # a memory-device, checked by QOM type
    backend = device.backend
    assert backend is not None and backend.host_memory is not None
    space = address_space_of(machine)
    mapped = space.map_ram(_range_name(device), device.addr, backend.host_memory,
                           size=device.region_size(), readonly=backend.host_memory.readonly)
    undo.push(lambda: space.unmap(mapped), f"unmap {mapped.name}")


@hookimpl
def qom_device_unplug(machine: Object, device: Device) -> None:
    """Unmap an unplugged memory device: guest accesses there fault from now on."""
    if ADDRESS_SPACE not in machine.stash or not device.is_a(TYPE_MEMORY_DEVICE):
        return
    space = address_space_of(machine)
    name = _range_name(device)
    if any(mapped.name == name for mapped in space.mappings()):
        space.unmap(name)


@hookimpl
def qom_machine_shutdown(machine: Object, reason: str) -> None:
    """Release the engine."""
    space: Any = machine.stash.pop(ADDRESS_SPACE)
    if space is not None:
        space.close()


def _mtree_line(depth: int, start: int, size: int, priority: int, kind: str, text: str) -> str:
    return (f"{'  ' * depth}{start:016x}-{start + size - 1:016x} "
            f"(prio {priority}, {kind}): {text}")


def info_mtree(machine: Object) -> str:
    """``info mtree`` in QEMU 7.2's layout, for the regions pyqom models.

    The I/O space with the port ranges plugins registered, the system memory
    with ``pc.ram``'s two aliases and the ``device-memory`` container holding
    each plugged DIMM's backend, and the ``pc.ram`` region itself.  QEMU lists
    many more devices (PCI, ISA, ROMs) that pyqom does not emulate.
    """
    assert isinstance(machine, PcMachine)
    lines = ["address-space: I/O", _mtree_line(1, 0, 0x10000, 0, "i/o", "io")]
    if ADDRESS_SPACE in machine.stash:
        for ports in sorted(address_space_of(machine).port_ranges(), key=lambda p: p.base):
            lines.append(_mtree_line(2, ports.base, ports.length, 0, "i/o", ports.name))
    lines += ["", "address-space: cpu-memory-0", "address-space: memory",
              _mtree_line(1, 0, 1 << 64, 0, "i/o", "system")]
    system: list[tuple[int, int, str]] = [
        (0, machine.below_4g_mem_size,
         f"alias ram-below-4g @pc.ram {0:016x}-{machine.below_4g_mem_size - 1:016x}")]
    if machine.above_4g_mem_size:
        system.append((machine.above_4g_mem_start, machine.above_4g_mem_size,
                       f"alias ram-above-4g @pc.ram {machine.below_4g_mem_size:016x}-"
                       f"{machine.ram_size - 1:016x}"))
    for start, size, text in sorted(system):
        lines.append(_mtree_line(2, start, size, 0, "ram", text))
    if machine.has_device_memory:
        lines.append(_mtree_line(2, machine.device_memory_base, machine.device_memory_size, 0,
                                 "i/o", "device-memory"))
        for device in machine.memory_devices():
            device = cast(MemoryDevice, device)  # a memory-device, checked by QOM type
            backend = device.backend
            name = backend.name_in_parent if backend is not None else "?"
            lines.append(_mtree_line(3, device.addr, device.region_size(), 0, "ram",
                                     str(name)))
    lines += ["", "memory-region: pc.ram",
              _mtree_line(1, 0, machine.ram_size, 0, "ram", "pc.ram"), ""]
    return "\n".join(lines) + "\n"
