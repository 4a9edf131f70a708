"""Test-only QOM types standing in for backends, pc-dimm and the pc machine.

They are registered through :class:`DummyTypesPlugin`, a real plugin object
(``qom_register_types``), so the tests exercise the plugin path.  The
messages are QEMU 7.2's, with the type names of these dummies.

* ``dummy-backend`` - user-creatable, with a memory backend's properties:
  ``size`` (mandatory, reported as ``int``), ``share``, ``dump``,
  ``prealloc-threads``, ``policy`` (``HostMemPolicy``), ``host-nodes``;
  ``complete()`` checks policy against host-nodes (and can be told to fail);
  ``can_be_deleted()`` is false while ``mapped``.
* ``dummy-dimm`` - a bus-less device with qdev properties ``addr``, ``slot``,
  ``node``, a ``memdev`` link and a read-only ``size``.
* ``dummy-machine`` - its class slot ``get_hotplug_handler`` returns a
  :class:`DummyHotplugHandler` that assigns slots, records plugs, pushes undo
  steps and calls the ``qom_device_*`` hooks.
"""

from __future__ import annotations

from typing import Any

import attrs
import pluggy

from plugins import hookimpl
from plugins.phases import run_plug_phases, run_unplug_phases
from qom import (
    BOOL,
    INT32,
    SIZE,
    UINT16,
    UINT32,
    UINT64,
    Device,
    EnumKind,
    InvalidPropertyValue,
    ListKind,
    Object,
    Property,
    QomError,
    RealizeError,
    StashKey,
    TypeInfo,
    UndoStack,
    device_property,
    link_check_before_realize,
    qom_link,
    qom_property,
)

BACKEND = "dummy-backend"
DIMM = "dummy-dimm"
MACHINE = "dummy-machine"
MAX_NODES = 128
POLICY = EnumKind("HostMemPolicy", ("default", "preferred", "bind", "interleave"))


def _check_size(obj: Any, value: int) -> None:
    if obj.completed:
        # QEMU's hostmem prints the type name followed by a space (sic).
        raise InvalidPropertyValue(f"cannot change property size of {obj.type_name} ")
    if value == 0:
        raise InvalidPropertyValue(
            f"property 'size' of {obj.type_name} doesn't take value '{value}'")


def _check_share(obj: Any, value: bool) -> None:
    if obj.completed:
        raise InvalidPropertyValue("cannot change property value")


def _check_threads(obj: Any, value: int) -> None:
    if value == 0:
        raise InvalidPropertyValue(
            f"property 'prealloc-threads' of {obj.type_name} doesn't take value '0'")


def _check_host_nodes(obj: Any, value: list[int]) -> None:
    for node in value:
        if node >= MAX_NODES:
            raise InvalidPropertyValue(f"Invalid host-nodes value: {node}")


@attrs.define(eq=False, repr=False)
class DummyBackend(Object):
    """A memory backend without memory."""

    # Fields in the order of QEMU's QAPI schema (MemoryBackendProperties): the
    # QAPI phase of object-add converts members in this order.
    dump: bool = qom_property("dump", BOOL, type="bool", default=True,
                              description="Set to 'off' to exclude from core dump")
    host_nodes: list[int] = qom_property(
        "host-nodes", ListKind(UINT16), type="int", factory=list, check=_check_host_nodes,
        description="Binds memory to the list of NUMA host nodes")
    policy: str = qom_property("policy", POLICY, type="HostMemPolicy", default="default",
                               description="Set the NUMA policy")
    prealloc_threads: int = qom_property(
        "prealloc-threads", UINT32, type="int", default=1, check=_check_threads,
        description="Number of CPU threads to use for prealloc")
    share: bool = qom_property("share", BOOL, type="bool", default=False, check=_check_share,
                               description="Mark the memory as private to QEMU or shared")
    size: int = qom_property("size", SIZE, type="int", default=0, mandatory=True,
                             check=_check_size,
                             description="Size of the memory region (ex: 500M)")
    completed: bool = attrs.field(default=False, init=False)
    mapped: bool = attrs.field(default=False, init=False)
    #: set by a test to make complete() fail like an allocation failure
    fail_complete: bool = attrs.field(default=False, init=False)
    events: list[str] = attrs.field(factory=list, init=False)

    def complete(self) -> None:
        self.events.append("complete")
        if self.policy == "default" and self.host_nodes:
            raise InvalidPropertyValue(
                "host-nodes must be empty for policy default, or you should explicitly"
                " specify a policy other than default")
        if self.policy != "default" and not self.host_nodes:
            raise InvalidPropertyValue(f"host-nodes must be set for policy {self.policy}")
        if self.fail_complete or self.size >= 1 << 63:
            raise QomError(
                f"cannot set up guest memory '{self.name_in_parent}': Cannot allocate memory")
        self.completed = True

    def can_be_deleted(self) -> bool:
        return not self.mapped


@attrs.define(eq=False, repr=False)
class DummyDimm(Device):
    """A pc-dimm look-alike."""

    memdev: DummyBackend | None = qom_link("memdev", BACKEND, check=link_check_before_realize)
    node: int = device_property("node", UINT32, type="uint32", default=0)
    addr: int = device_property("addr", UINT64, type="uint64", default=0)
    slot: int = device_property("slot", INT32, type="int32", default=-1)
    log: list[str] = attrs.field(factory=list, init=False)

    def realize(self) -> None:
        self.log.append("realize")
        if self.memdev is None:
            raise RealizeError("'memdev' property must be set")
        if self.memdev.mapped:
            raise RealizeError(f"can't use already busy memdev: {self.memdev.name_in_parent}")
        if self.node >= 1:
            raise RealizeError(f"'DIMM property node has value {self.node}'"
                               " which exceeds the number of numa nodes: 1")
        self.memdev.mapped = True

    def unrealize(self) -> None:
        self.log.append("unrealize")
        if self.memdev is not None:
            self.memdev.mapped = False


def _dimm_size(obj: Any) -> int:
    if obj.memdev is None:
        raise RealizeError("'memdev' property must be set")
    return int(obj.memdev.size)


def dimm_class_init(klass: Any, data: Any) -> None:
    klass.add_property(Property(name="size", type="uint64", kind=UINT64, getter=_dimm_size))
    klass.add_property(Property(name="legacy-memdev", type="str", kind=None,
                                setter=lambda obj, value: None))


@attrs.define
class HandlerState:
    """What the dummy machine's hotplug handler remembers (kept in the machine's stash)."""

    slots: int = 3
    plugged: dict[int, Device] = attrs.field(factory=dict)
    unplug_requests: list[Device] = attrs.field(factory=list)
    log: list[str] = attrs.field(factory=list)


HANDLER_STATE: StashKey[HandlerState] = StashKey("dummy-hotplug")


@attrs.define
class DummyHotplugHandler:
    """The machine's hotplug handler for bus-less dummy devices."""

    machine: Object
    pm: pluggy.PluginManager

    @property
    def state(self) -> HandlerState:
        return self.machine.stash[HANDLER_STATE]

    def pre_plug(self, device: Device) -> None:
        self.state.log.append(f"pre_plug {device.name_in_parent}")
        self.pm.hook.qom_device_pre_plug(machine=self.machine, device=device)
        if not isinstance(device, DummyDimm):
            return
        slots = self.state.slots
        if device.slot == -1:
            free = [n for n in range(slots) if n not in self.state.plugged]
            if not free:
                raise RealizeError("no free slots available")
            device.slot = free[0]
        elif not 0 <= device.slot < slots:
            raise RealizeError(
                f"invalid slot number {device.slot}, valid range is [0-{slots - 1}]")
        elif device.slot in self.state.plugged:
            raise RealizeError(f"slot {device.slot} is busy")
        if device.addr % 0x200000:
            raise RealizeError("address must be aligned to 0x200000 bytes")

    def plug(self, device: Device, undo: UndoStack) -> None:
        self.state.log.append(f"plug {device.name_in_parent}")
        if isinstance(device, DummyDimm):
            slot = device.slot
            self.state.plugged[slot] = device
            undo.push(lambda: self.state.plugged.pop(slot), f"free slot {slot}")
        run_plug_phases(self.pm.hook, self.machine, device, undo)

    def unplug_request(self, device: Device) -> None:
        self.state.log.append(f"unplug_request {device.name_in_parent}")
        self.state.unplug_requests.append(device)
        with UndoStack() as undo:
            self.pm.hook.qom_device_unplug_request(machine=self.machine, device=device,
                                                   undo=undo)

    def unplug(self, device: Device) -> None:
        self.state.log.append(f"unplug {device.name_in_parent}")
        if isinstance(device, DummyDimm):
            self.state.plugged.pop(device.slot, None)
        run_unplug_phases(self.pm.hook, self.machine, device)


def machine_instance_init(obj: Object) -> None:
    obj.stash[HANDLER_STATE] = HandlerState()


def machine_class_init(klass: Any, pm: pluggy.PluginManager) -> None:
    def get_hotplug_handler(machine: Object, device: Device) -> DummyHotplugHandler | None:
        return DummyHotplugHandler(machine, pm) if device.is_a(DIMM) else None

    klass.slots["get_hotplug_handler"] = get_hotplug_handler


def type_infos(pm: pluggy.PluginManager) -> list[TypeInfo]:
    """The dummy types; the machine's handler calls the hooks of ``pm``."""
    return [
        TypeInfo(name=BACKEND, parent="object", impl=DummyBackend,
                 interfaces=("user-creatable",)),
        TypeInfo(name=DIMM, parent="device", impl=DummyDimm, class_init=dimm_class_init),
        TypeInfo(name=MACHINE, parent="object", interfaces=("hotplug-handler",),
                 class_init=machine_class_init, class_data=pm,
                 instance_init=machine_instance_init),
    ]


class DummyTypesPlugin:
    """Registers the dummy types into every registry of its plugin manager."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm

    @hookimpl
    def qom_register_types(self, registry: Any) -> None:
        for info in type_infos(self.pm):
            registry.register(info)
