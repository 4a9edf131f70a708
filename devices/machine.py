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
from typing import TYPE_CHECKING, Any, Final

import attrs
import pluggy

from backends.base import TYPE_MEMORY_BACKEND, MemoryBackend
from devices import memory_device, numa
from devices.cpu import X86Cpu, create_cpus
from devices.memory_device import TARGET_PAGE_SIZE, U64_MASK
from devices.memory_options import MemoryConfig
from devices.topology import (
    CPU_TYPE_QEMU64,
    CpuSlot,
    SmpConfig,
    apic_id_limit,
    parse_smp,
    possible_cpus,
)
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
from qom.reprs import FieldsRepr, FieldsValue

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

GiB: Final = 1 << 30
TYPE_MACHINE: Final = "machine"

TYPE_X86_MACHINE: Final = "x86-machine"
TYPE_PC_MACHINE: Final = "generic-pc-machine"
TYPE_PC_I440FX_72: Final = "pc-i440fx-7.2-machine"
TYPE_PC_I440FX_51: Final = "pc-i440fx-5.1-machine"
TYPE_PC_I440FX_21: Final = "pc-i440fx-2.1-machine"
TYPE_PC_I440FX_20: Final = "pc-i440fx-2.0-machine"

#: ``-machine`` names and the QOM types they select.
MACHINE_ALIASES: Final = {
    "pc": TYPE_PC_I440FX_72,
    "pc-i440fx-7.2": TYPE_PC_I440FX_72,
    "pc-i440fx-5.1": TYPE_PC_I440FX_51,
    "pc-i440fx-2.1": TYPE_PC_I440FX_21,
    "pc-i440fx-2.0": TYPE_PC_I440FX_20,
}

#: each machine type's version (QEMU's compat flags follow from it)
_TYPE_VERSIONS: Final = {TYPE_PC_I440FX_72: (7, 2), TYPE_PC_I440FX_51: (5, 1),
                         TYPE_PC_I440FX_21: (2, 1), TYPE_PC_I440FX_20: (2, 0)}

#: what ``-machine help`` says of every pc-i440fx machine
MACHINE_DESCRIPTION: Final = "Standard PC (i440FX + PIIX, 1996)"

MAIN_RAM_ID: Final = "pc.ram"
ACPI_MAX_RAM_SLOTS: Final = 256
DEFAULT_PHYS_BITS: Final = 40
#: the CPUID vendor of pyqom's CPU models (``qemu64``, and ``max`` under TCG)
CPU_VENDOR_AMD: Final = "AuthenticAMD"
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
#: the machine type's version, ``(7, 2)``: QEMU's compat flags follow from it
SLOT_VERSION: Final = "version"
#: the most CPUs a pc machine takes (``mc->max_cpus``)
PC_MAX_CPUS: Final = 255


def round_up(value: int, align: int) -> int:
    """``ROUND_UP`` in 64-bit arithmetic (it wraps like C's)."""
    return ((value + align - 1) // align * align) & U64_MASK


@attrs.frozen(repr=False, eq=False)
class E820Entry(FieldsValue):
    """One entry of the firmware's memory map."""

    base: int
    length: int
    type: int


@attrs.define(repr=False, eq=False)
class MainRam(FieldsRepr):
    """The machine's initial RAM (QEMU's ``machine->ram``) as guest RAM offsets.

    One backend (``pc.ram``, or ``-machine memory-backend``), or with
    ``-numa node,memdev=`` the nodes' backends back to back in node order in
    a container named ``pc.ram``.  Offset ``o`` of the RAM is guest address
    ``o`` below 4 GiB and ``above_4g_mem_start + o - below_4g`` above.

    :ivar name: the region's name (``pc.ram``, or the backend's id).
    :ivar parts: ``(offset, backend)`` by offset.
    :ivar container: the parts are subregions of a container (NUMA memdevs).
    """

    name: str
    parts: list[tuple[int, MemoryBackend]]
    container: bool = False

    def pieces(self, offset: int, size: int) -> Iterator[tuple[int, MemoryBackend, int, int]]:
        """``(ram offset, backend, offset in it, length)`` covering ``[offset, +size)``."""
        end = offset + size
        for start, backend in self.parts:
            low, high = max(offset, start), min(end, start + backend.size)
            if low < high:
                yield low, backend, low - start, high - low

    def write(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        """Store ``data`` at RAM ``offset`` (host memory, no guest involved)."""
        view = memoryview(data).cast("B")
        for at, backend, inner, length in self.pieces(offset, len(view)):
            memory = backend.host_memory
            assert memory is not None, "a consumed backend has host memory"
            memory.view[inner:inner + length] = view[at - offset:at - offset + length]

    def read(self, offset: int, size: int) -> bytes:
        chunks = []
        for _, backend, inner, length in self.pieces(offset, size):
            assert backend.host_memory is not None
            chunks.append(bytes(backend.host_memory.view[inner:inner + length]))
        return b"".join(chunks)


@attrs.define(eq=False, repr=False)
class PcMachine(Object):
    """A pc machine: its memory layout and the hotplug handler of its DIMMs.

    :ivar hook: the plugin manager's hook relay, given by the composition root.
    """

    memory: MemoryConfig = attrs.field(factory=lambda: MemoryConfig(128 << 20, 128 << 20, 0))
    phys_bits: int = DEFAULT_PHYS_BITS
    #: the CPU's ``vendor`` (``-cpu ...,vendor=``): only an AMD CPU has the 1 TiB hole
    cpu_vendor: str = CPU_VENDOR_AMD
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
    #: ``pc.ram`` or the ``-machine memory-backend`` (None with NUMA memdevs)
    ram_backend: MemoryBackend | None = None
    main_ram: MainRam | None = None
    smp: SmpConfig = attrs.field(factory=SmpConfig)
    #: every possible CPU (``maxcpus``), in CPU-index order, each on its node
    cpu_slots: list[CpuSlot] = attrs.field(factory=list)
    numa: numa.NumaState = attrs.field(factory=numa.NumaState)
    #: the present CPUs' objects, by index (``/machine/unattached/device[N]``)
    cpus: list[X86Cpu] = attrs.field(factory=list)
    cpu_type: str = CPU_TYPE_QEMU64
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
        """Guest NUMA nodes: from ``-numa``, or the one pc makes by itself for
        memory hotplug (see :func:`auto_enables_numa`); 0 without NUMA."""
        return self.numa.num_nodes

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
            self.record_plugged(memory, undo)
        run_plug_phases(self.relay, self, device, undo)

    def record_plugged(self, memory: MemoryDevice, undo: UndoStack) -> None:
        """Count ``memory``'s slot and range as taken (the plug's first step; a plan
        does it too, so the next planned device is placed after it), undone by ``undo``."""
        bisect.insort(self._plugged, memory, key=lambda dev: dev.get_addr())
        undo.push(lambda: self._forget(memory), "forget memory device")

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
                        SLOT_MACHINE_NAME: "pc", SLOT_VERSION: (7, 2)})

    def memory(obj: Object) -> dict[str, int]:
        assert isinstance(obj, PcMachine)
        return obj.memory.as_qom()

    def region_size(obj: Object) -> int:
        assert isinstance(obj, PcMachine)
        return obj.device_memory_size

    def max_ram_below_4g(obj: Object) -> int:
        assert isinstance(obj, PcMachine)
        return obj.max_ram_below_4g

    def smp(obj: Object) -> dict[str, int]:
        assert isinstance(obj, PcMachine)
        return obj.smp.as_qom()

    def hmat(obj: Object) -> bool:
        assert isinstance(obj, PcMachine)
        return obj.numa.hmat_enabled

    klass.add_property(Property(name="memory", type="MemorySizeConfiguration", getter=memory))
    klass.add_property(Property(name="smp", type="SMPConfiguration", getter=smp))
    klass.add_property(Property(name="hmat", type="bool", getter=hmat))
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
    major, minor = name.rsplit("-", 1)[1].split(".")

    def class_init(klass: ObjectClass, data: Any) -> None:
        klass.slots[SLOT_MACHINE_NAME] = name
        klass.slots[SLOT_VERSION] = (int(major), int(minor))
        klass.slots.update(flags)
    return class_init


def machine_version(pc: Object) -> tuple[int, int]:
    """The machine type's version (``pc-i440fx-5.1`` is ``(5, 1)``)."""
    version = pc.object_class.slots.get(SLOT_VERSION, (7, 2))
    assert isinstance(version, tuple)
    return (int(version[0]), int(version[1]))


def auto_enables_numa(version: tuple[int, int], memory: MemoryConfig) -> bool:
    """pc makes node 0 by itself with hotplug slots (types after 2.10) or with
    ``maxmem`` above the RAM (types after 5.0): QEMU's
    ``auto_enable_numa_with_memhp`` and ``auto_enable_numa_with_memdev``."""
    return ((memory.ram_slots > 0 and version > (2, 10))
            or (memory.maxram_size > memory.ram_size and version > (5, 0)))


def numa_mem_supported(version: tuple[int, int]) -> bool:
    """``-numa node,mem=`` is accepted by types up to 5.0."""
    return version <= (5, 0)


def machine_smp(machine: str, given: dict[str, int], warn: Callable[[str], None]) -> SmpConfig:
    """``-smp`` for the ``-machine`` name: types before 6.2 fill sockets first."""
    type_name = machine_type_for(machine)
    version = _TYPE_VERSIONS[type_name]
    return parse_smp(given, prefer_sockets=version < (6, 2),
                     machine_name=type_name.removesuffix("-machine"),
                     max_cpus_supported=PC_MAX_CPUS, warn=warn)


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
    # 5.1 is the last type with today's memory flags that still fills sockets
    # first and refuses -numa node,mem.
    registry.register(TypeInfo(name=TYPE_PC_I440FX_51, parent=TYPE_PC_MACHINE,
                               class_init=_versioned("pc-i440fx-5.1")))
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
                      cpu_vendor: str = CPU_VENDOR_AMD,
                      max_ram_below_4g: int = 0, acpi: bool = True,
                      memory_hotplug_support: bool = True, smp: SmpConfig | None = None,
                      numa_options: Sequence[numa.NumaOption] = (),
                      memory_backend: str | None = None, custom_ram_size: bool = True,
                      hmat: bool = False, cpu_type: str = CPU_TYPE_QEMU64,
                      warn: Callable[[str], None] | None = None, nvdimm: bool = False,
                      nvdimm_persistence: str | None = None) -> PcMachine:
    """Build ``/machine`` and its RAM, then run ``qom_machine_init``.

    :param memory: the result of ``machine_set_mem``.
    :param hook: the plugin manager's ``hook`` relay.
    :param machine: a ``-machine`` name (``pc``) or a machine QOM type.
    :param phys_bits: the CPU's physical address bits (``-cpu qemu64,phys-bits=N``).
    :param cpu_vendor: the CPU's vendor (``-cpu qemu64,vendor=...``); only for the
        memory layout (the AMD 1 TiB hole): the guest's CPUID is Unicorn's.
    :param max_ram_below_4g: ``-machine pc,max-ram-below-4g=...`` (0 = default).
    :param acpi: False for ``-no-acpi``.
    :param memory_hotplug_support: ``-global PIIX4_PM.memory-hotplug-support``.
    :param smp: the ``-smp`` topology (:func:`machine_smp`); one CPU by default.
    :param numa_options: the ``-numa`` options, applied in order once the
        ``-object`` backends exist (their errors are :class:`numa.NumaOptionError`).
    :param memory_backend: ``-machine memory-backend=ID``: the main RAM's backend.
    :param custom_ram_size: ``-m`` gave a size; if not, ``memory_backend``'s
        size is the RAM size.
    :param hmat: ``-machine hmat=on``.
    :param cpu_type: the CPUs' QOM type (``-cpu max`` is ``max-x86_64-cpu``).
    :param warn: receives QEMU's warnings (``-numa`` ones located).
    :param nvdimm: ``-machine nvdimm=on``.
    :param nvdimm_persistence: ``-machine nvdimm-persistence=cpu|mem-ctrl``.
    :raises QomError: QEMU's fatal board-init errors; nothing is left behind.
    """
    type_name = machine_type_for(machine)
    say = warn if warn is not None else (lambda text: None)
    with UndoStack() as undo:
        pc = tree.new(type_name, memory=memory, phys_bits=phys_bits, cpu_vendor=cpu_vendor,
                      max_ram_below_4g=max_ram_below_4g, acpi=acpi,
                      memory_hotplug_support=memory_hotplug_support, hook=hook,
                      nvdimm=nvdimm, nvdimm_persistence=(
                          None if nvdimm_persistence is None
                          else check_nvdimm_persistence(nvdimm_persistence)))
        assert isinstance(pc, PcMachine)
        tree.attach_machine(pc)
        undo.push(pc.unparent, "remove /machine")
        pc.smp = smp if smp is not None else SmpConfig()
        pc.cpu_slots = possible_cpus(pc.smp)
        pc.numa.hmat_enabled = hmat
        if memory_backend is not None:
            pc.ram_backend = _resolve_backend(tree, memory_backend)
            if pc.ram_backend is None:
                raise QomError(f"Memory backend '{memory_backend}' not found")
            if not custom_ram_size:
                size = pc.ram_backend.size
                pc.memory = MemoryConfig(size, max(size, memory.maxram_size), memory.ram_slots)
        version = machine_version(pc)
        for option in numa_options:
            numa.apply_numa_option(pc.numa, option, slots=pc.cpu_slots,
                                   resolve_backend=lambda path: _resolve_backend(tree, path),
                                   numa_mem_supported=numa_mem_supported(version), warn=say)
        _board_ram(tree, pc, undo, say)
        if apic_id_limit(pc.cpu_slots) > 255:
            raise QomError("current -smp configuration requires kernel irqchip and X2APIC "
                           "API support.")
        pc.cpu_type = cpu_type
        create_cpus(tree, pc, cpu_type, say, amd=cpu_vendor == CPU_VENDOR_AMD)
        _board_checks(pc)
        # From here on plugins hold things for the machine: release them on failure.
        undo.push(lambda: shutdown_machine(pc, "host-error"), "shut the machine down")
        services = services_of(pc)
        hook.qom_machine_services(machine=pc, services=services)
        _map_main_ram(pc)
        hook.qom_machine_init(machine=pc)
    return pc


def _resolve_backend(tree: ObjectTree, path: str) -> MemoryBackend | None:
    """``object_resolve_path_type(path, TYPE_MEMORY_BACKEND)``: None if absent or ambiguous."""
    found, ambiguous = tree.resolve(path, TYPE_MEMORY_BACKEND)
    return found if isinstance(found, MemoryBackend) and not ambiguous else None


def _board_ram(tree: ObjectTree, pc: PcMachine, undo: UndoStack,
               warn: Callable[[str], None]) -> None:
    """``machine_run_board_init`` for memory: the RAM backend(s) and the NUMA nodes."""
    state = pc.numa
    if pc.ram_backend is not None:
        if pc.ram_backend.size != pc.ram_size:
            raise QomError("Machine memory size does not match the size of the memory backend")
    elif pc.ram_size and state.uses_legacy_mem:
        pc.ram_backend = _create_main_ram(tree, pc.ram_size, undo)
    numa.complete_configuration(state, ram_size=pc.ram_size,
                                auto_enable=auto_enables_numa(machine_version(pc), pc.memory))
    if state.num_nodes and not state.uses_legacy_mem:
        if pc.ram_backend is not None:
            raise QomError("'-machine memory-backend' and '-numa memdev' properties are "
                           "mutually exclusive")
        parts: list[tuple[int, MemoryBackend]] = []
        offset = 0
        for node in state.ordered():
            if node.memdev is None:
                continue
            _consume(node.memdev, undo)
            parts.append((offset, node.memdev))
            offset += node.mem
        pc.main_ram = MainRam(MAIN_RAM_ID, parts, container=True)
    if state.num_nodes:
        numa.complete_distances(state)
        numa.finish_cpu_init(state, pc.cpu_slots, warn)
    if pc.main_ram is None and pc.ram_backend is not None:
        _consume(pc.ram_backend, undo)
        pc.main_ram = MainRam(str(pc.ram_backend.name_in_parent), [(0, pc.ram_backend)])


def _consume(backend: MemoryBackend, undo: UndoStack) -> None:
    """``machine_consume_memdev``: the backend is the machine's for good."""
    if backend.is_mapped():
        raise QomError(f"memory backend {backend.name_in_parent} can't be used multiple "
                       "times.")
    backend.set_mapped(True)
    undo.push(lambda: backend.set_mapped(False), "release a RAM backend")


def _board_checks(pc: PcMachine) -> None:
    """The CPU's ``phys-bits`` range, the RAM split and ``pc_memory_init``: every
    board-init check after the main RAM, in QEMU's order (the start-up planner
    runs exactly these)."""
    if pc.phys_bits > TARGET_PHYS_ADDR_SPACE_BITS or pc.phys_bits < 32:
        raise QomError(f"phys-bits should be between 32 and {TARGET_PHYS_ADDR_SPACE_BITS} "
                       f" (but is {pc.phys_bits})")
    _split_ram(pc)
    _memory_init(pc)


@attrs.frozen(repr=False, eq=False)
class BoardPlan(FieldsValue):
    """What :func:`check_board` found: the layout board init would make, or why it fails.

    :ivar error: QEMU's fatal board-init error, or ``None`` when the machine boots.
    :ivar device_memory_base: where the device-memory region starts (0 without one).
    :ivar device_memory_size: its size.
    :ivar above_4g_mem_start: 4 GiB, or 1 TiB when the AMD HyperTransport hole moved it.
    :ivar max_used_gpa: the last guest-physical address the board uses (the 64-bit PCI hole's).
    :ivar phys_limit: the last address the CPU's ``phys-bits`` can reach.
    """

    error: QomError | None
    device_memory_base: int = 0
    device_memory_size: int = 0
    above_4g_mem_start: int = FOUR_GIB
    max_used_gpa: int = 0
    phys_limit: int = 0

    @property
    def boots(self) -> bool:
        """Whether board init succeeds."""
        return self.error is None


def check_board(tree: ObjectTree, memory: MemoryConfig, *, machine: str = "pc",
                phys_bits: int = DEFAULT_PHYS_BITS, cpu_vendor: str = CPU_VENDOR_AMD,
                max_ram_below_4g: int = 0) -> BoardPlan:
    """The start-up planner: run board init's checks (:func:`create_pc_machine`'s,
    the same code) on a machine object that is never attached, with no RAM
    allocated and no plugin called; the object is finalized before this returns.

    :raises QomError: only for an unknown machine name (as ``-machine`` would).
    """
    pc = tree.new(machine_type_for(machine), memory=memory, phys_bits=phys_bits,
                  cpu_vendor=cpu_vendor, max_ram_below_4g=max_ram_below_4g)
    assert isinstance(pc, PcMachine)
    try:
        try:
            _board_checks(pc)
        except QomError as err:
            return BoardPlan(error=err)
        return BoardPlan(error=None, device_memory_base=pc.device_memory_base,
                         device_memory_size=pc.device_memory_size,
                         above_4g_mem_start=pc.above_4g_mem_start,
                         max_used_gpa=_max_used_gpa(pc), phys_limit=(1 << pc.phys_bits) - 1)
    finally:
        pc.finalize()


def largest_bootable_maxmem(tree: ObjectTree, memory: MemoryConfig, *, machine: str = "pc",
                            phys_bits: int = DEFAULT_PHYS_BITS,
                            cpu_vendor: str = CPU_VENDOR_AMD,
                            max_ram_below_4g: int = 0) -> int | None:
    """The largest ``maxmem`` (a multiple of the page size) with which ``memory``'s
    RAM and slots pass :func:`check_board`, or ``None`` if no ``maxmem`` does.

    A binary search: the board's checks refuse a ``maxmem`` only for being too
    large once RAM, slots and CPU are fixed (the region, and so the highest
    address used, grows with it).
    """
    def boots(maxmem: int) -> bool:
        config = MemoryConfig(memory.ram_size, maxmem, memory.ram_slots)
        return check_board(tree, config, machine=machine, phys_bits=phys_bits,
                           cpu_vendor=cpu_vendor, max_ram_below_4g=max_ram_below_4g).boots

    page = TARGET_PAGE_SIZE
    # With slots, maxmem must exceed the RAM (machine_set_mem's rule).
    low = round_up(memory.ram_size + (1 if memory.ram_slots else 0), page)
    if low > U64_MASK or not boots(low):
        return None
    lo, hi = low // page, U64_MASK // page
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if boots(mid * page):
            lo = mid
        else:
            hi = mid - 1
    return lo * page


def shutdown_machine(pc: PcMachine, reason: str) -> None:
    """``qom_machine_shutdown`` for every plugin, even when one fails (each
    failure is a warning naming the plugin); at most once per machine."""
    if pc.shut_down:
        return
    pc.shut_down = True
    call_each(pc.relay.qom_machine_shutdown, machine=pc, reason=reason)


def _map_main_ram(pc: PcMachine) -> None:
    """``ram-below-4g`` at 0 and ``ram-above-4g`` at 4 GiB (or 1 TiB), both over
    the main RAM's host memory; nothing to do without a ``guest-memory`` service.

    With several backends (NUMA memdevs) each window is mapped piece by piece,
    the pieces named after the window and the backend (``ram-below-4g@m1``).
    """
    space = services_of(pc).find(GUEST_MEMORY)
    if space is None or pc.main_ram is None:
        return
    windows = [("ram-below-4g", 0, 0, pc.below_4g_mem_size)]
    if pc.above_4g_mem_size:
        windows.append(("ram-above-4g", pc.above_4g_mem_start, pc.below_4g_mem_size,
                        pc.above_4g_mem_size))
    for name, gpa, offset, size in windows:
        pieces = list(pc.main_ram.pieces(offset, size))
        for at, backend, inner, length in pieces:
            assert backend.host_memory is not None
            label = f"{name}@{backend.name_in_parent}" if len(pieces) > 1 else name
            space.map_ram(label, gpa + at - offset, backend.host_memory, size=length,
                          offset=inner)


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
    # An AMD CPU (qemu64 and max are, unless vendor= says otherwise): keep RAM
    # out of the HyperTransport hole below 1 TiB by moving it above 1 TiB if needed.
    if slots[SLOT_ENFORCE_AMD_1TB_HOLE] and pc.cpu_vendor == CPU_VENDOR_AMD:
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
