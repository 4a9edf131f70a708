"""The ``pc`` machine (i440FX): RAM layout, the device-memory region, hotplug relay.

:func:`create_pc_machine` does what QEMU 7.2's ``machine_run_board_init`` and
``pc_init1`` / ``pc_memory_init`` do for memory, in the same order and with
the same fatal errors:

1. the main RAM backend ``/objects/pc.ram`` (a ``memory-backend-ram``,
   always busy);
2. the CPU's ``phys-bits`` range;
3. the split of RAM below and above 4 GiB;
4. the AMD 1 TiB relocation, then the ``phys-bits`` address-space check;
5. the reserved-memory, slot-count and ``maxmem`` alignment checks, and the
   device-memory region (``base = ROUND_UP(above_4g_end, 1 GiB)``,
   ``size = maxmem - ram + slots * 1 GiB``);
6. ``qom_machine_init``.

A failure at any step removes everything made so far.

The machine is the hotplug handler of bus-less devices (QEMU's
``pc_get_hotplug_handler``): it places memory devices itself
(:mod:`devices.memory_device`) and runs the plug and unplug phases of the
contract (:mod:`plugins.phases`) through the hook relay it is given; it never
imports a plugin.  Its main RAM is mapped through the ``guest-memory``
service, as QEMU's ``pc_memory_init`` adds ``ram-below-4g`` and
``ram-above-4g`` to the system memory.
"""

from __future__ import annotations

import bisect
from typing import Any, Final

import attrs
import pluggy

from backends.base import TYPE_MEMORY_BACKEND, MemoryBackend
from devices import memory_device
from devices.memory_device import TARGET_PAGE_SIZE, U64_MASK
from devices.memory_options import MemoryConfig
from plugins import hookimpl
from plugins.phases import call_each, run_plug_phases, run_unplug_phases
from plugins.services import ACPI, GUEST_MEMORY, services_of
from qom import (
    BOOL,
    SIZE,
    STR,
    TYPE_OBJECT,
    Device,
    MemoryDevice,
    Object,
    ObjectClass,
    ObjectTree,
    Property,
    QomError,
    TypeInfo,
    TypeRegistry,
    UndoStack,
    as_memory_device,
    link_property,
)
from qom.device import SLOT_BUS, SLOT_GET_HOTPLUG_HANDLER
from qom.reprs import FieldsValue

GiB: Final = 1 << 30
TYPE_MACHINE: Final = "machine"

TYPE_X86_MACHINE: Final = "x86-machine"
TYPE_PC_MACHINE: Final = "generic-pc-machine"
TYPE_PC_I440FX_72: Final = "pc-i440fx-7.2-machine"
TYPE_PC_I440FX_21: Final = "pc-i440fx-2.1-machine"
TYPE_PC_I440FX_20: Final = "pc-i440fx-2.0-machine"

#: ``-machine`` names and the QOM types they select.
MACHINE_ALIASES: Final = {
    "pc": TYPE_PC_I440FX_72,
    "pc-i440fx-7.2": TYPE_PC_I440FX_72,
    "pc-i440fx-2.1": TYPE_PC_I440FX_21,
    "pc-i440fx-2.0": TYPE_PC_I440FX_20,
}

#: what ``-machine help`` says of every pc-i440fx machine
MACHINE_DESCRIPTION: Final = "Standard PC (i440FX + PIIX, 1996)"

MAIN_RAM_ID: Final = "pc.ram"
ACPI_MAX_RAM_SLOTS: Final = 256
DEFAULT_PHYS_BITS: Final = 40
TARGET_PHYS_ADDR_SPACE_BITS: Final = 52
DEFAULT_MAX_RAM_BELOW_4G: Final = 0xE0000000
GIGABYTE_ALIGNED_LOWMEM: Final = 0xC0000000
FOUR_GIB: Final = 0x100000000
PCI_HOLE64_SIZE: Final = 1 << 31
AMD_HT_START: Final = 0xFD00000000
AMD_HT_SIZE: Final = 0x300000000
AMD_ABOVE_1TB_START: Final = 0x10000000000
E820_RAM: Final = 1
E820_RESERVED: Final = 2

# Class slots of pc machine types (QEMU's PCMachineClass flags).
SLOT_MACHINE_NAME: Final = "machine_name"
SLOT_HAS_RESERVED_MEMORY: Final = "has_reserved_memory"
SLOT_ENFORCE_ALIGNED_DIMM: Final = "enforce_aligned_dimm"
SLOT_BROKEN_RESERVED_END: Final = "broken_reserved_end"
SLOT_ENFORCE_AMD_1TB_HOLE: Final = "enforce_amd_1tb_hole"


def round_up(value: int, align: int) -> int:
    """``ROUND_UP`` in 64-bit arithmetic (it wraps like C's)."""
    return ((value + align - 1) // align * align) & U64_MASK


@attrs.frozen(repr=False, eq=False)
class E820Entry(FieldsValue):
    """One entry of the firmware's memory map."""

    base: int
    length: int
    type: int


@attrs.define(eq=False, repr=False)
class PcMachine(Object):
    """A pc machine: its memory layout and the hotplug handler of its DIMMs.

    :ivar hook: the plugin manager's hook relay, given by the composition root.
    """

    memory: MemoryConfig = attrs.field(factory=lambda: MemoryConfig(128 << 20, 128 << 20, 0))
    phys_bits: int = DEFAULT_PHYS_BITS
    max_ram_below_4g: int = 0
    acpi: bool = True
    memory_hotplug_support: bool = True
    #: ``-machine nvdimm=on``: NVDIMMs may be plugged (QEMU's ``nvdimms_state->is_enabled``)
    nvdimm: bool = False
    #: ``-machine nvdimm-persistence=cpu|mem-ctrl``, or ``None`` when not given
    nvdimm_persistence: str | None = None
    hook: pluggy.HookRelay | None = None

    @property
    def relay(self) -> pluggy.HookRelay:
        """The plugin manager's hook relay (every board-built machine has one)."""
        if self.hook is None:
            raise QomError("this machine was not built with plugins (create_pc_machine)")
        return self.hook
    below_4g_mem_size: int = 0
    above_4g_mem_size: int = 0
    above_4g_mem_start: int = FOUR_GIB
    device_memory_base: int = 0
    device_memory_size: int = 0
    e820: list[E820Entry] = attrs.field(factory=list)
    ram_backend: MemoryBackend | None = None
    shut_down: bool = False
    #: plugged memory devices by address, kept by the hotplug handler
    _plugged: list[MemoryDevice] = attrs.field(factory=list, init=False)

    # -- queries ---------------------------------------------------------

    @property
    def ram_size(self) -> int:
        return self.memory.ram_size

    @property
    def maxram_size(self) -> int:
        return self.memory.maxram_size

    @property
    def ram_slots(self) -> int:
        return self.memory.ram_slots

    @property
    def numa_node_count(self) -> int:
        """pc enables one NUMA node by itself for memory hotplug: with slots, or
        with ``maxmem`` above the RAM size (QEMU's ``auto_enable_numa_with_memhp``
        and ``..._with_memdev``)."""
        return 1 if self.ram_slots > 0 or self.maxram_size > self.ram_size else 0

    @property
    def has_device_memory(self) -> bool:
        return self.device_memory_size > 0

    @property
    def acpi_available(self) -> bool:
        """ACPI is on (no ``-no-acpi``) and the ACPI plugin serves this machine;
        without it nothing tells the guest about memory hotplug."""
        return self.acpi and ACPI in services_of(self)

    @property
    def reserved_memory_end(self) -> int | None:
        """The value of fw_cfg ``etc/reserved-memory-end``, or None without device memory."""
        if not self.object_class.slots[SLOT_HAS_RESERVED_MEMORY] or not self.device_memory_base:
            return None
        end = self.device_memory_base
        if not self.object_class.slots[SLOT_BROKEN_RESERVED_END]:
            end += self.device_memory_size
        return round_up(end, GiB)

    def memory_devices(self) -> list[MemoryDevice]:
        """Plugged memory devices, by address (QEMU's order for first fit and queries).

        QEMU walks the tree for realized memory devices; the hotplug handler
        keeps this list instead (:meth:`plug`), so a plug costs the same with
        1 or 256 DIMMs.
        """
        return list(self._plugged)

    def plugged_memory_size(self) -> int:
        """Bytes of plugged memory devices (``plugged-memory``)."""
        return memory_device.plugged_size(self)

    def memory_size_summary(self) -> dict[str, int]:
        """``query-memory-size-summary``: base RAM and what memory devices add."""
        return {"base-memory": self.ram_size, "plugged-memory": self.plugged_memory_size()}

    def query_memory_devices(self) -> list[dict[str, Any]]:
        """``query-memory-devices``: each plugged memory device's own entry, by address."""
        return memory_device.query_memory_devices(self)

    # -- the hotplug handler of bus-less devices ------------------------------

    def pre_plug(self, device: Device) -> None:
        """Place a memory device (slot, address), then ``qom_device_pre_plug``.

        ``qom_memory_device_pre_plug`` runs once the machine knows it can tell
        the guest (ACPI), before its other checks, as QEMU's ``pc_memory_pre_plug``
        checks a device type's own requirements (``nvdimm=on``) there."""
        memory = as_memory_device(device)
        if memory is not None:
            def device_checks() -> None:
                self.relay.qom_memory_device_pre_plug(machine=self, device=device)

            memory_device.pre_plug(self, memory, enforce_aligned=bool(
                self.object_class.slots[SLOT_ENFORCE_ALIGNED_DIMM]), device_checks=device_checks)
        self.relay.qom_device_pre_plug(machine=self, device=device)

    def plug(self, device: Device, undo: UndoStack) -> None:
        """Record a memory device's slot and range as taken, then the plug phases."""
        memory = as_memory_device(device)
        if memory is not None:
            bisect.insort(self._plugged, memory, key=lambda dev: dev.get_addr())
            undo.push(lambda: self._forget(memory), "forget memory device")
        run_plug_phases(self.relay, self, device, undo)

    def unplug_request(self, device: Device) -> None:
        """``device_del``: QEMU's checks, then ``qom_device_unplug_request``."""
        memory = as_memory_device(device)
        if memory is not None:
            memory_device.unplug_request(self, memory, device.type_name)
        with UndoStack() as undo:
            self.relay.qom_device_unplug_request(machine=self, device=device, undo=undo)

    def unplug(self, device: Device) -> None:
        """The unplug phases (the plug's in reverse), then the slot and range are free."""
        run_unplug_phases(self.relay, self, device)
        memory = as_memory_device(device)
        if memory is not None:
            self._forget(memory)

    def _forget(self, memory: MemoryDevice) -> None:
        if memory in self._plugged:
            self._plugged.remove(memory)


def _get_hotplug_handler(machine: Object, device: Device) -> Any:
    """The machine plugs every bus-less device; a device on a bus (ISA) has the
    bus's handler, and pyqom's ISA bus has none, as QEMU's."""
    return None if device.object_class.slots.get(SLOT_BUS) else machine


def _machine_class_init(klass: ObjectClass, data: Any) -> None:
    klass.slots[SLOT_GET_HOTPLUG_HANDLER] = _get_hotplug_handler


def _pc_machine_class_init(klass: ObjectClass, data: Any) -> None:
    klass.slots.update({SLOT_HAS_RESERVED_MEMORY: True, SLOT_ENFORCE_ALIGNED_DIMM: True,
                        SLOT_BROKEN_RESERVED_END: False, SLOT_ENFORCE_AMD_1TB_HOLE: True,
                        SLOT_MACHINE_NAME: "pc"})

    def memory(obj: Object) -> dict[str, int]:
        assert isinstance(obj, PcMachine)
        return obj.memory.as_qom()

    def region_size(obj: Object) -> int:
        assert isinstance(obj, PcMachine)
        return obj.device_memory_size

    def max_ram_below_4g(obj: Object) -> int:
        assert isinstance(obj, PcMachine)
        return obj.max_ram_below_4g

    klass.add_property(Property(name="memory", type="MemorySizeConfiguration", getter=memory))
    _add_nvdimm_properties(klass)
    klass.add_property(Property(name="device-memory-region-size", type="int",
                                getter=region_size))
    klass.add_property(Property(name="max-ram-below-4g", type="size", kind=SIZE,
                                getter=max_ram_below_4g))
    klass.add_property(link_property(
        "memory-backend", TYPE_MEMORY_BACKEND,
        get_target=lambda obj: obj.ram_backend,  # type: ignore[attr-defined]
        set_target=None))


#: ``-machine nvdimm-persistence`` values and the NFIT capabilities they stand for
NVDIMM_PERSISTENCE: Final = {"cpu": 3, "mem-ctrl": 2}


def check_nvdimm_persistence(value: str) -> str:
    """QEMU's ``machine_set_nvdimm_persistence`` check (its message names the option)."""
    if value not in NVDIMM_PERSISTENCE:
        raise QomError(f"-machine nvdimm-persistence={value}: unsupported option")
    return value


def _add_nvdimm_properties(klass: ObjectClass) -> None:
    """``nvdimm`` and ``nvdimm-persistence``, which QEMU's pc machine has
    (``nvdimm_supported``) whether or not an NVDIMM plugin is loaded."""

    def get_nvdimm(obj: Object) -> bool:
        assert isinstance(obj, PcMachine)
        return obj.nvdimm

    def set_nvdimm(obj: Object, value: bool) -> None:
        assert isinstance(obj, PcMachine)
        obj.nvdimm = value

    def get_persistence(obj: Object) -> str:
        assert isinstance(obj, PcMachine)
        return obj.nvdimm_persistence or ""

    def set_persistence(obj: Object, value: str) -> None:
        assert isinstance(obj, PcMachine)
        obj.nvdimm_persistence = check_nvdimm_persistence(value)

    klass.add_property(Property(
        name="nvdimm", type="bool", kind=BOOL, getter=get_nvdimm, setter=set_nvdimm,
        description="Set on/off to enable/disable NVDIMM instantiation"))
    klass.add_property(Property(
        name="nvdimm-persistence", type="str", kind=STR, getter=get_persistence,
        setter=set_persistence,
        description="Set NVDIMM persistence. Valid values are cpu, mem-ctrl"))


def _versioned(name: str, **flags: object) -> Any:
    def class_init(klass: ObjectClass, data: Any) -> None:
        klass.slots[SLOT_MACHINE_NAME] = name
        klass.slots.update(flags)
    return class_init


@hookimpl
def qom_register_types(registry: TypeRegistry) -> None:
    """Register the machine hierarchy down to ``pc-i440fx-7.2`` and two legacy types."""
    registry.register(TypeInfo(name=TYPE_MACHINE, parent=TYPE_OBJECT, abstract=True,
                               class_init=_machine_class_init))
    registry.register(TypeInfo(name=TYPE_X86_MACHINE, parent=TYPE_MACHINE, abstract=True))
    registry.register(TypeInfo(name=TYPE_PC_MACHINE, parent=TYPE_X86_MACHINE, abstract=True,
                               impl=PcMachine, class_init=_pc_machine_class_init))
    registry.register(TypeInfo(name=TYPE_PC_I440FX_72, parent=TYPE_PC_MACHINE,
                               class_init=_versioned("pc-i440fx-7.2")))
    # Legacy types matter here only for their memory flags.
    registry.register(TypeInfo(
        name=TYPE_PC_I440FX_21, parent=TYPE_PC_MACHINE,
        class_init=_versioned("pc-i440fx-2.1", enforce_aligned_dimm=False,
                              broken_reserved_end=True, enforce_amd_1tb_hole=False)))
    registry.register(TypeInfo(
        name=TYPE_PC_I440FX_20, parent=TYPE_PC_MACHINE,
        class_init=_versioned("pc-i440fx-2.0", has_reserved_memory=False,
                              enforce_aligned_dimm=False, broken_reserved_end=True,
                              enforce_amd_1tb_hole=False)))


# ---------------------------------------------------------------------------
# Board init
# ---------------------------------------------------------------------------


def machine_type_for(name: str) -> str:
    """The QOM type of a ``-machine`` name; QEMU's error for an unknown one."""
    if name in MACHINE_ALIASES:
        return MACHINE_ALIASES[name]
    if name.endswith("-machine") and name in MACHINE_ALIASES.values():
        return name
    raise QomError("unsupported machine type",
                   hint="Use -machine help to list supported machines")


def create_pc_machine(tree: ObjectTree, memory: MemoryConfig, *, hook: pluggy.HookRelay,
                      machine: str = "pc", phys_bits: int = DEFAULT_PHYS_BITS,
                      max_ram_below_4g: int = 0, acpi: bool = True,
                      memory_hotplug_support: bool = True, nvdimm: bool = False,
                      nvdimm_persistence: str | None = None) -> PcMachine:
    """Build ``/machine`` and its RAM, then run ``qom_machine_init``.

    :param memory: the result of ``machine_set_mem``.
    :param hook: the plugin manager's ``hook`` relay.
    :param machine: a ``-machine`` name (``pc``) or a machine QOM type.
    :param phys_bits: the CPU's physical address bits (``-cpu qemu64,phys-bits=N``).
    :param max_ram_below_4g: ``-machine pc,max-ram-below-4g=...`` (0 = default).
    :param acpi: False for ``-no-acpi``.
    :param memory_hotplug_support: ``-global PIIX4_PM.memory-hotplug-support``.
    :param nvdimm: ``-machine nvdimm=on``.
    :param nvdimm_persistence: ``-machine nvdimm-persistence=cpu|mem-ctrl``.
    :raises QomError: QEMU's fatal board-init errors; nothing is left behind.
    """
    type_name = machine_type_for(machine)
    with UndoStack() as undo:
        pc = tree.new(type_name, memory=memory, phys_bits=phys_bits,
                      max_ram_below_4g=max_ram_below_4g, acpi=acpi,
                      memory_hotplug_support=memory_hotplug_support, hook=hook,
                      nvdimm=nvdimm, nvdimm_persistence=(
                          None if nvdimm_persistence is None
                          else check_nvdimm_persistence(nvdimm_persistence)))
        assert isinstance(pc, PcMachine)
        tree.attach_machine(pc)
        undo.push(pc.unparent, "remove /machine")
        pc.ram_backend = _create_main_ram(tree, memory.ram_size, undo)
        if phys_bits > TARGET_PHYS_ADDR_SPACE_BITS or phys_bits < 32:
            raise QomError(f"phys-bits should be between 32 and {TARGET_PHYS_ADDR_SPACE_BITS} "
                           f" (but is {phys_bits})")
        _split_ram(pc)
        _memory_init(pc)
        # From here on plugins hold things for the machine: release them on failure.
        undo.push(lambda: shutdown_machine(pc, "host-error"), "shut the machine down")
        services = services_of(pc)
        hook.qom_machine_services(machine=pc, services=services)
        _map_main_ram(pc)
        hook.qom_machine_init(machine=pc)
    return pc


def shutdown_machine(pc: PcMachine, reason: str) -> None:
    """``qom_machine_shutdown`` for every plugin, even when one fails (each
    failure is a warning naming the plugin); at most once per machine."""
    if pc.shut_down:
        return
    pc.shut_down = True
    call_each(pc.relay.qom_machine_shutdown, machine=pc, reason=reason)


def _map_main_ram(pc: PcMachine) -> None:
    """``ram-below-4g`` at 0 and ``ram-above-4g`` at 4 GiB (or 1 TiB), both over
    ``pc.ram``'s host memory; nothing to do without a ``guest-memory`` service."""
    space = services_of(pc).find(GUEST_MEMORY)
    if space is None or pc.ram_backend is None or pc.ram_backend.host_memory is None:
        return
    memory = pc.ram_backend.host_memory
    space.map_ram("ram-below-4g", 0, memory, size=pc.below_4g_mem_size)
    if pc.above_4g_mem_size:
        space.map_ram("ram-above-4g", pc.above_4g_mem_start, memory,
                      size=pc.above_4g_mem_size, offset=pc.below_4g_mem_size)


def _create_main_ram(tree: ObjectTree, size: int, undo: UndoStack) -> MemoryBackend:
    """QEMU's ``create_default_memdev``: ``/objects/pc.ram``, in use for good."""
    if tree.objects.find_property(MAIN_RAM_ID) is not None:
        raise QomError(f"object name '{MAIN_RAM_ID}' is reserved for the default RAM backend, "
                       "it can't be used for any other purposes. Change the object's 'id' to "
                       "something else")
    backend = tree.new("memory-backend-ram")
    assert isinstance(backend, MemoryBackend)
    backend.set_value("size", size)
    tree.objects.add_child(MAIN_RAM_ID, backend)
    undo.push(backend.unparent, "remove /objects/pc.ram")
    backend.set_value("x-use-canonical-path-for-ramblock-id", False)
    backend.complete()
    backend.set_mapped(True)
    undo.push(lambda: backend.set_mapped(False), "release pc.ram")
    return backend


def _split_ram(pc: PcMachine) -> None:
    """The i440FX RAM split below and above 4 GiB."""
    if not pc.max_ram_below_4g:
        pc.max_ram_below_4g = DEFAULT_MAX_RAM_BELOW_4G
    lowmem = pc.max_ram_below_4g
    if pc.ram_size >= pc.max_ram_below_4g:
        lowmem = min(lowmem, GIGABYTE_ALIGNED_LOWMEM)
    if pc.ram_size >= lowmem:
        pc.below_4g_mem_size, pc.above_4g_mem_size = lowmem, pc.ram_size - lowmem
    else:
        pc.below_4g_mem_size, pc.above_4g_mem_size = pc.ram_size, 0


def device_memory_range(pc: PcMachine) -> tuple[int, int]:
    """QEMU's ``pc_get_device_memory_range``: (base, size), in 64-bit arithmetic."""
    size = (pc.maxram_size - pc.ram_size) & U64_MASK
    base = round_up(pc.above_4g_mem_start + pc.above_4g_mem_size, GiB)
    if pc.object_class.slots[SLOT_ENFORCE_ALIGNED_DIMM]:
        size = (size + GiB * pc.ram_slots) & U64_MASK
    return base, size


def pci_hole64_start(pc: PcMachine) -> int:
    """Where the 64-bit PCI window starts (QEMU's ``pc_pci_hole64_start``):
    after the device-memory region, else after the RAM above 4 GiB."""
    if pc.object_class.slots[SLOT_HAS_RESERVED_MEMORY] and pc.ram_size < pc.maxram_size:
        start, size = device_memory_range(pc)
        if not pc.object_class.slots[SLOT_BROKEN_RESERVED_END]:
            start = (start + size) & U64_MASK
    else:
        start = pc.above_4g_mem_start + pc.above_4g_mem_size
    return round_up(start, GiB)


def _max_used_gpa(pc: PcMachine) -> int:
    """The last byte of the 64-bit PCI hole (QEMU's ``pc_max_used_gpa``)."""
    if pc.phys_bits <= 32:
        return (1 << pc.phys_bits) - 1
    return (pci_hole64_start(pc) + PCI_HOLE64_SIZE - 1) & U64_MASK


def _memory_init(pc: PcMachine) -> None:
    """QEMU's ``pc_memory_init`` checks and layout, in its order."""
    slots = pc.object_class.slots
    # The default CPU (qemu64) reports an AMD vendor: keep RAM out of the
    # HyperTransport hole below 1 TiB by moving it above 1 TiB if needed.
    if slots[SLOT_ENFORCE_AMD_1TB_HOLE]:
        if _max_used_gpa(pc) >= AMD_HT_START:
            pc.above_4g_mem_start = AMD_ABOVE_1TB_START
        if pc.phys_bits >= 40:
            pc.e820.append(E820Entry(AMD_HT_START, AMD_HT_SIZE, E820_RESERVED))
    max_used, max_phys = _max_used_gpa(pc), (1 << pc.phys_bits) - 1
    if max_phys < max_used:
        raise QomError(f"Address space limit 0x{max_phys:x} < 0x{max_used:x} "
                       f"phys-bits too low ({pc.phys_bits})")
    pc.e820.append(E820Entry(0, pc.below_4g_mem_size, E820_RAM))
    if pc.above_4g_mem_size:
        pc.e820.append(E820Entry(pc.above_4g_mem_start, pc.above_4g_mem_size, E820_RAM))
    if not slots[SLOT_HAS_RESERVED_MEMORY] and (pc.ram_slots or pc.maxram_size > pc.ram_size):
        raise QomError(f"\"-memory 'slots|maxmem'\" is not supported by: "
                       f"{slots[SLOT_MACHINE_NAME]}")
    if slots[SLOT_HAS_RESERVED_MEMORY] and pc.ram_size < pc.maxram_size:
        if pc.ram_slots > ACPI_MAX_RAM_SLOTS:
            raise QomError(f"unsupported amount of memory slots: {pc.ram_slots}")
        if round_up(pc.maxram_size, TARGET_PAGE_SIZE) != pc.maxram_size:
            raise QomError("maximum memory size must by aligned to multiple of "
                           f"{TARGET_PAGE_SIZE} bytes")
        base, size = device_memory_range(pc)
        if ((base + size) & U64_MASK) < size:
            raise QomError(f"unsupported amount of maximum memory: {pc.maxram_size:x}")
        pc.device_memory_base, pc.device_memory_size = base, size


def machine_ready(tree: ObjectTree, pc: PcMachine) -> None:
    """Cold plug is over: from now on devices are hot-plugged; ``qom_machine_ready`` runs."""
    tree.machine_ready = True
    pc.relay.qom_machine_ready(machine=pc)
