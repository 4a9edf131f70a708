"""``info mtree``: the guest's memory map in QEMU 7.2's layout."""

from __future__ import annotations

from devices.machine import PcMachine
from plugins.services import PORT_IO, services_of
from qom import MemoryDevice, Object
from qom.memory_device import SLOT_MEMORY_DEVICE_MTREE


def _mtree_line(depth: int, start: int, size: int, priority: int, kind: str, text: str) -> str:
    return (f"{'  ' * depth}{start:016x}-{start + size - 1:016x} "
            f"(prio {priority}, {kind}): {text}")


def info_mtree(machine: Object) -> str:
    """``info mtree`` in QEMU 7.2's layout, for the regions pyqom models (on the
    ``none`` machine: its empty I/O and memory spaces).

    The I/O space with the port ranges plugins registered, the system memory
    with ``pc.ram``'s two aliases and the ``device-memory`` container holding
    each plugged DIMM's backend (or the region its class describes: an
    NVDIMM's alias), and the ``pc.ram`` region itself, then each aliased
    device region.  QEMU lists
    many more devices (PCI, ISA, ROMs) that pyqom does not emulate.
    """
    if not isinstance(machine, PcMachine):
        # the none machine: the two empty address spaces and no CPU's
        return "\n".join(["address-space: I/O", _mtree_line(1, 0, 0x10000, 0, "i/o", "io"), "",
                          "address-space: memory",
                          _mtree_line(1, 0, 1 << 64, 0, "i/o", "system"), ""]) + "\n"
    lines = ["address-space: I/O", _mtree_line(1, 0, 0x10000, 0, "i/o", "io")]
    ports = services_of(machine).find(PORT_IO)
    if ports is not None:
        for claimed in ports.port_ranges():
            lines.append(_mtree_line(2, claimed.base, claimed.length, 0, "i/o", claimed.name))
    lines += ["", "address-space: cpu-memory-0", "address-space: memory",
              _mtree_line(1, 0, 1 << 64, 0, "i/o", "system")]
    ram = machine.main_ram
    ram_name = ram.name if ram is not None else "pc.ram"
    # an alias of a container is listed as i/o, as QEMU lists it
    alias_kind = "i/o" if ram is not None and ram.container else "ram"
    system: list[tuple[int, int, str]] = [
        (0, machine.below_4g_mem_size,
         f"alias ram-below-4g @{ram_name} {0:016x}-{machine.below_4g_mem_size - 1:016x}")]
    if machine.above_4g_mem_size:
        system.append((machine.above_4g_mem_start, machine.above_4g_mem_size,
                       f"alias ram-above-4g @{ram_name} {machine.below_4g_mem_size:016x}-"
                       f"{machine.ram_size - 1:016x}"))
    for start, size, text in sorted(system):
        lines.append(_mtree_line(2, start, size, 0, alias_kind, text))
    aliased: list[tuple[str, int]] = []
    if machine.has_device_memory:
        lines.append(_mtree_line(2, machine.device_memory_base, machine.device_memory_size, 0,
                                 "i/o", "device-memory"))
        for device in machine.memory_devices():
            kind, text, alias = _device_region(device)
            lines.append(_mtree_line(3, device.get_addr(), device.get_region_size(), 0, kind,
                                     text))
            if alias is not None and alias not in aliased:
                aliased.append(alias)
    # The RAM region the aliases point into: a backend, or with NUMA memdevs
    # the pc.ram container of the nodes' backends.
    lines += ["", f"memory-region: {ram_name}"]
    if ram is not None and ram.container:
        lines.append(_mtree_line(1, 0, machine.ram_size, 0, "i/o", ram_name))
        for offset, backend in ram.parts:
            lines.append(_mtree_line(2, offset, backend.size, 0, "ram",
                                     str(backend.name_in_parent)))
    else:
        lines.append(_mtree_line(1, 0, machine.ram_size, 0, "ram", ram_name))
    for name, size in aliased:
        lines += ["", f"memory-region: {name}", _mtree_line(1, 0, size, 0, "ram", name)]
    return "\n".join([*lines, ""]) + "\n"


def _device_region(device: MemoryDevice) -> tuple[str, str, tuple[str, int] | None]:
    """What ``info mtree`` shows at a memory device's address (its class's
    ``SLOT_MEMORY_DEVICE_MTREE``, or its backend's region)."""
    describe = getattr(device, "object_class", None)
    describe = describe.slots.get(SLOT_MEMORY_DEVICE_MTREE) if describe is not None else None
    if describe is not None:
        kind, text, alias = describe(device)
        return str(kind), str(text), alias
    backend = device.get_memdev()
    name = backend.name_in_parent if backend is not None else "?"
    return "ram", str(name), None
