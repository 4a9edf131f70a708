"""Built-in plugin: ``nvdimm``, a ``pc-dimm`` with persistent-memory semantics.

QEMU 7.2's ``hw/mem/nvdimm.c`` and ``hw/acpi/nvdimm.c``, built on the plugin
contract alone (``qom`` and the ``plugins`` contract modules; it imports no
other built-in, and ``PYQOM_DISABLED_PLUGINS=plugins.nvdimm.plugin`` blocks it,
after which ``nvdimm`` is an unknown device type):

* the ``nvdimm`` type, a subtype of ``pc-dimm`` (:mod:`plugins.dimm`):
  ``label-size``, ``uuid`` and ``unarmed``; its guest-visible memory is the
  backend less the label area at its end, aligned down; QEMU's checks and
  messages (label size, room for the label, ``unarmed`` with a read-only
  backend);
* on a machine with ``-machine nvdimm=on``: the DSM port 0x0A18, the NFIT, the
  NVDIMM SSDT (``\\_SB.NVDR``), SRAT entries and ``\\_GPE._E04``; the FIT
  rebuilt at every NVDIMM plug, GPE bit 4 raised when one is hot-plugged;
* QEMU's refusals: an NVDIMM without ``nvdimm=on``, and its hot unplug.

The label protocol: the guest (the SSDT's ``NCAL``) writes a request into the
DSM page the firmware allocated, writes the page's address to port 0x0A18,
and reads the result from the same page (:func:`plugins.nvdimm.acpi.dsm`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import attrs

from plugins import hookimpl
from plugins.dimm import (
    SLOT_DIMM_REALIZE,
    SLOT_DIMM_REGION_SIZE,
    TYPE_PC_DIMM,
    Dimm,
    as_dimm,
)
from plugins.memdev import Memdev, as_memdev
from plugins.nvdimm import (
    DSM_IO_BASE,
    DSM_IO_LEN,
    DSM_MEMORY_FILE,
    DSM_MEMORY_SIZE,
    HOTPLUG_GPE_BIT,
    MIN_LABEL_SIZE,
)
from plugins.nvdimm.glib_order import hash_table_order
from plugins.services import (
    ACPI,
    GUEST_MEMORY,
    PORT_IO,
    SLOT_ACPI_MEMORY_HOTPLUG,
    SRAT_MEMORY_ENABLED,
    SRAT_MEMORY_NON_VOLATILE,
    AcpiTableBuilder,
    services_of,
)
from qom import (
    BOOL,
    SIZE,
    STR,
    Device,
    InvalidPropertyValue,
    Object,
    ObjectClass,
    Property,
    QomError,
    StashKey,
    TypeInfo,
    TypeRegistry,
    UndoStack,
)
from qom.device import SLOT_CATEGORY
from qom.memory_device import SLOT_MEMORY_DEVICE_KIND, SLOT_MEMORY_DEVICE_MTREE

if TYPE_CHECKING:
    from plugins.nvdimm.acpi import FitBuffer, NvdimmInfo

TYPE_NVDIMM: Final = "nvdimm"
TYPE_MEMORY_REGION: Final = "memory-region"
#: ``-machine nvdimm-persistence`` values: the NFIT platform capabilities
PERSISTENCE: Final = {"cpu": 3, "mem-ctrl": 2}
_HEX_DIGITS: Final = frozenset("0123456789abcdefABCDEF")


def _is_uuid(text: str) -> bool:
    """QEMU's ``qemu_uuid_parse``: five groups of 8-4-4-4-12 hex digits."""
    groups = text.split("-")
    return ([len(group) for group in groups] == [8, 4, 4, 4, 12]
            and all(char in _HEX_DIGITS for group in groups for char in group))


@attrs.define(repr=False, eq=False)
class NvdimmState:
    """One NVDIMM's own state (``NVDIMMDevice`` beyond ``PCDIMMDevice``)."""

    label_size: int = 0
    uuid: str = "00000000-0000-0000-0000-000000000000"
    unarmed: bool = False
    #: bytes the guest sees, once the memory region is prepared (QEMU's
    #: ``nvdimm_mr``): from then on ``label-size`` cannot change
    pmem_size: int | None = None


@attrs.define(repr=False, eq=False)
class MachineNvdimms:
    """What a machine with ``nvdimm=on`` keeps (QEMU's ``NVDIMMState``)."""

    fit: FitBuffer


NVDIMM: StashKey[NvdimmState] = StashKey("nvdimm")
MACHINE_NVDIMMS: StashKey[MachineNvdimms] = StashKey("nvdimm-machine")


def state_of(dimm: Object | Dimm) -> NvdimmState:
    """The NVDIMM state of ``dimm`` (made by its ``instance_init``)."""
    state = dimm.stash.get(NVDIMM)
    if state is None:
        state = NvdimmState()
        dimm.stash[NVDIMM] = state
    return state


def _backend(dimm: Dimm) -> Memdev:
    backend = as_memdev(dimm.memdev)
    if backend is None or backend.host_memory is None:
        raise InvalidPropertyValue("'memdev' property must be set")
    return backend


def _prepare_region(dimm: Dimm) -> int:
    """QEMU's ``nvdimm_prepare_memory_region``: the persistent part of the
    backend (all but the label area at its end, aligned down), once."""
    state = state_of(dimm)
    if state.pmem_size is not None:
        return state.pmem_size
    backend = _backend(dimm)
    memory = backend.host_memory
    assert memory is not None
    size, align = backend.size, memory.align
    pmem_size = (size - state.label_size) // align * align if size > state.label_size else 0
    if size <= state.label_size or not pmem_size:
        raise InvalidPropertyValue(
            f"the size of memdev {backend.name_in_parent} (0x{size:x}) is too small to contain "
            f"nvdimm label (0x{state.label_size:x}) and aligned PMEM (0x{align:x})")
    if not state.unarmed and memory.readonly:
        raise InvalidPropertyValue(f"'unarmed' property must be 'on' since memdev "
                                   f"{backend.name_in_parent} is read-only")
    state.pmem_size = pmem_size
    _add_region_child(dimm, pmem_size)
    return pmem_size


def _add_region_child(dimm: Dimm, size: int) -> None:
    """QEMU's alias region ``nvdimm-memory``, the DIMM's child ``nvdimm-memory[0]``."""
    owner = dimm if isinstance(dimm, Object) else None
    tree = owner.tree if owner is not None else None
    if owner is None or tree is None or TYPE_MEMORY_REGION not in tree.registry:
        return
    owner.add_child("nvdimm-memory[*]", tree.new(TYPE_MEMORY_REGION, region_size=size))


def _mtree_region(device: object) -> tuple[str, str, tuple[str, int] | None]:
    """``info mtree``: the non-volatile alias ``nvdimm-memory`` over the backend."""
    dimm = as_dimm(device)
    assert dimm is not None
    backend = _backend(dimm)
    pmem_size = _prepare_region(dimm)
    return ("nv-ram", f"alias nvdimm-memory @{backend.name_in_parent} "
                      f"{0:016x}-{pmem_size - 1:016x}", (str(backend.name_in_parent), backend.size))


def _realize(dimm: Dimm) -> None:
    _prepare_region(dimm)


@attrs.define(repr=False, eq=False)
class _Label:
    """An NVDIMM's label area: the last ``label-size`` bytes of its backend."""

    dimm: Dimm

    @property
    def label_size(self) -> int:
        return state_of(self.dimm).label_size

    def _view(self) -> memoryview:
        backend = _backend(self.dimm)
        memory = backend.host_memory
        assert memory is not None
        return memory.view[backend.size - self.label_size:backend.size]

    def read_label(self, offset: int, length: int) -> bytes:
        return self._view()[offset:offset + length].tobytes()

    def write_label(self, offset: int, data: bytes) -> bool:
        memory = _backend(self.dimm).host_memory
        if memory is None or memory.readonly:
            return False
        self._view()[offset:offset + len(data)] = data
        return True


# ---------------------------------------------------------------------------
# The type
# ---------------------------------------------------------------------------


def _nvdimm_instance_init(obj: Object) -> None:
    """``label-size`` and ``uuid``, which QEMU adds per instance (``nvdimm_init``)."""
    state_of(obj)

    def get_label_size(owner: Object) -> int:
        return state_of(owner).label_size

    def set_label_size(owner: Object, value: int) -> None:
        state = state_of(owner)
        if state.pmem_size is not None:
            raise InvalidPropertyValue("cannot change property value")
        if value < MIN_LABEL_SIZE:
            raise InvalidPropertyValue(
                f"Property '{owner.type_name}.label-size' (0x{value:x}) is required at "
                f"least 0x{MIN_LABEL_SIZE:x}")
        state.label_size = value

    def get_uuid(owner: Object) -> str:
        return state_of(owner).uuid

    def set_uuid(owner: Object, value: str) -> None:
        if not _is_uuid(value):
            raise InvalidPropertyValue(f"Property '{owner.type_name}.uuid' has invalid value")
        state_of(owner).uuid = value.lower()   # qemu_uuid_unparse prints lower case

    obj.add_property(Property(name="label-size", type="int", kind=SIZE,
                              getter=get_label_size, setter=set_label_size))
    obj.add_property(Property(name="uuid", type="QemuUUID", kind=STR, getter=get_uuid,
                              setter=set_uuid))


def _nvdimm_class_init(klass: ObjectClass, data: Any) -> None:
    klass.slots[SLOT_MEMORY_DEVICE_KIND] = "nvdimm"
    klass.slots[SLOT_DIMM_REGION_SIZE] = _prepare_region
    klass.slots[SLOT_DIMM_REALIZE] = _realize
    klass.slots[SLOT_ACPI_MEMORY_HOTPLUG] = False
    klass.slots[SLOT_CATEGORY] = "Storage"  # QEMU's DEVICE_CATEGORY_STORAGE
    klass.slots[SLOT_MEMORY_DEVICE_MTREE] = _mtree_region

    def get_unarmed(owner: Object) -> bool:
        return state_of(owner).unarmed

    def set_unarmed(owner: Object, value: bool) -> None:
        state_of(owner).unarmed = value

    klass.add_property(Property(name="unarmed", type="bool", kind=BOOL, getter=get_unarmed,
                                setter=set_unarmed, default=False,
                                frozen_after_realize=True))


@hookimpl(trylast=True)
def qom_register_types(registry: TypeRegistry) -> None:
    """Register ``nvdimm`` (parent ``pc-dimm``), after the other plugins' types, and
    only if ``pc-dimm`` is among them (its plugin may be blocked)."""
    if TYPE_PC_DIMM not in registry:
        return
    registry.register(TypeInfo(name=TYPE_NVDIMM, parent=TYPE_PC_DIMM,
                               class_init=_nvdimm_class_init,
                               instance_init=_nvdimm_instance_init))


# ---------------------------------------------------------------------------
# The machine's NVDIMM support
# ---------------------------------------------------------------------------


def _enabled(machine: Object) -> bool:
    """``-machine nvdimm=on`` (a machine without the property has none)."""
    prop = machine.find_property("nvdimm")
    return prop is not None and bool(machine.get("nvdimm"))


def _persistence(machine: Object) -> int:
    prop = machine.find_property("nvdimm-persistence")
    return PERSISTENCE.get(str(machine.get("nvdimm-persistence")), 0) if prop else 0


def _is_nvdimm(device: Object) -> bool:
    return device.is_a(TYPE_NVDIMM)


def nvdimms_of(machine: Object) -> list[Dimm]:
    """The machine's NVDIMMs, plugged or being plugged, in the order QEMU 7.2 lists
    them (``nvdimm_get_device_list``: ``/machine/peripheral``, then
    ``peripheral-anon``, each in its GLib hash table's order)."""
    found: list[Dimm] = []
    for container in ("peripheral", "peripheral-anon"):
        parent = machine.child(container)
        if parent is None:
            continue
        children = dict(parent.children())
        for name in hash_table_order(children):
            dimm = as_dimm(children[name])
            if dimm is not None and _is_nvdimm(children[name]):
                found.append(dimm)
    return found


def _info(dimm: Dimm) -> NvdimmInfo:
    from plugins.nvdimm.acpi import NvdimmInfo

    slot = dimm.get_slot()
    return NvdimmInfo(slot=slot if slot is not None else -1, addr=dimm.get_addr(),
                      size=dimm.get_region_size(), node=dimm.get_node(),
                      unarmed=state_of(dimm).unarmed)


def _ram_slots(machine: Object) -> int:
    memory = machine.get_json("memory") if machine.find_property("memory") else {}
    return int(memory.get("slots", 0))


def _dsm_write(machine: Object, offset: int, size: int, value: int) -> None:
    """The guest wrote the DSM page's address: answer the request it holds
    (QEMU accepts only 4-byte accesses; others do nothing)."""
    nvdimms = machine.stash.get(MACHINE_NVDIMMS)
    memory = services_of(machine).find(GUEST_MEMORY)
    if size != 4 or offset or nvdimms is None or memory is None:
        return
    try:
        page = memory.read(value, DSM_MEMORY_SIZE)
    except QomError:
        return  # not RAM: QEMU reads unassigned memory and writes nowhere
    from plugins.nvdimm.acpi import dsm, slot_handle

    by_handle = {slot_handle(dimm.get_slot() or 0): dimm for dimm in nvdimms_of(machine)}

    def label(handle: int) -> _Label | None:
        dimm = by_handle.get(handle)
        return _Label(dimm) if dimm is not None else None

    answer = dsm(page, nvdimms.fit, label)
    try:
        memory.write(value, answer)
    except QomError:
        return  # read-only guest memory: the answer goes nowhere, as in QEMU


@hookimpl
def qom_machine_init(machine: Object) -> None:
    """``nvdimm=on``: claim the DSM port (QEMU's ``nvdimm_init_acpi_state``)."""
    if not _enabled(machine):
        return
    from plugins.nvdimm.acpi import FitBuffer  # only for a machine with NVDIMMs

    machine.stash[MACHINE_NVDIMMS] = MachineNvdimms(fit=FitBuffer())
    acpi = services_of(machine).find(ACPI)
    if acpi is not None and _ram_slots(machine):
        # QEMU adds fw_cfg etc/acpi/nvdimm-mem here; the firmware allocates it.
        acpi.reserve(DSM_MEMORY_FILE, DSM_MEMORY_SIZE)
    ports = services_of(machine).find(PORT_IO)
    if ports is not None:
        ports.register_ports(DSM_IO_BASE, DSM_IO_LEN, lambda offset, size: 0,
                             lambda offset, size, value: _dsm_write(machine, offset, size,
                                                                    value),
                             "nvdimm-acpi-io")


@hookimpl
def qom_memory_device_pre_plug(machine: Object, device: Device) -> None:
    """QEMU's ``pc_memory_pre_plug``: an NVDIMM needs ``-machine nvdimm=on``."""
    if _is_nvdimm(device) and not _enabled(machine):
        raise QomError("nvdimm is not enabled: missing 'nvdimm' in '-M'")


def _rebuild_fit(machine: Object) -> None:
    from plugins.nvdimm.acpi import fit

    nvdimms = machine.stash.get(MACHINE_NVDIMMS)
    if nvdimms is not None:
        nvdimms.fit.data = fit([_info(dimm) for dimm in nvdimms_of(machine)],
                               _persistence(machine))
        nvdimms.fit.dirty = True


@hookimpl
def qom_device_plug_claim(machine: Object, device: Device, undo: UndoStack) -> None:
    """QEMU's ``nvdimm_plug``: the FIT buffer is rebuilt, with the new NVDIMM."""
    nvdimms = machine.stash.get(MACHINE_NVDIMMS)
    if not _is_nvdimm(device) or nvdimms is None:
        return
    before = attrs.evolve(nvdimms.fit)
    _rebuild_fit(machine)

    def restore() -> None:
        nvdimms.fit.data, nvdimms.fit.dirty = before.data, before.dirty

    undo.push(restore, "nvdimm: the FIT of before")


@hookimpl
def qom_device_plug_announce(machine: Object, device: Device, undo: UndoStack) -> None:
    """A hot-plugged NVDIMM: GPE bit 4 (``\\_GPE._E04`` notifies ``NVDR``)."""
    acpi = services_of(machine).find(ACPI)
    if _is_nvdimm(device) and device.hotplugged and acpi is not None:
        undo.push(acpi.raise_gpe(HOTPLUG_GPE_BIT), "nvdimm: withdraw GPE bit 4")


@hookimpl
def qom_device_unplug_request(machine: Object, device: Device, undo: UndoStack) -> None:
    """QEMU 7.2 cannot unplug an NVDIMM."""
    if _is_nvdimm(device):
        raise QomError("nvdimm device hot unplug is not supported yet.")


@hookimpl
def qom_acpi_build(machine: Object, tables: AcpiTableBuilder) -> None:
    """``nvdimm=on``: ``\\_GPE._E04``, SRAT entries, and (with slots) the SSDT,
    then (with NVDIMMs) the NFIT, before the WAET as QEMU's ``nvdimm_build_acpi``."""
    nvdimms = machine.stash.get(MACHINE_NVDIMMS)
    if nvdimms is None:
        return
    from plugins.nvdimm.acpi import fit, gpe_handler_aml, nfit_body, ssdt_aml

    tables.add_dsdt_aml(gpe_handler_aml())
    devices = [_info(dimm) for dimm in nvdimms_of(machine)]
    for dev in devices:
        tables.add_srat_memory(dev.addr, dev.size, dev.node,
                               SRAT_MEMORY_ENABLED | SRAT_MEMORY_NON_VOLATILE)
    slots = _ram_slots(machine)
    if not slots:
        return
    dsm_page = tables.allocate(DSM_MEMORY_FILE, DSM_MEMORY_SIZE)
    tables.add_ssdt("NVDIMM", ssdt_aml(slots, dsm_page), board=True)
    if devices:
        tables.add_table("NFIT", nfit_body(fit(devices, _persistence(machine))), board=True)


def label_bytes(dimm: Object, offset: int, length: int) -> bytes:
    """``length`` bytes of ``dimm``'s label area from ``offset`` (for tests and tools)."""
    found = as_dimm(dimm)
    if found is None:
        raise TypeError(f"{dimm.type_name} is not a DIMM")
    return _Label(found).read_label(offset, length)


__all__ = ["TYPE_NVDIMM", "NvdimmState", "label_bytes", "nvdimms_of", "state_of"]
