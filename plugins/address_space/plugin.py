"""Built-in plugin: the guest's address space, port I/O and CPU in one Unicorn engine.

* ``qom_machine_services``: one :class:`~plugins.address_space.engine.GuestAddressSpace`
  per machine, offered as the ``guest-memory``, ``port-io`` and ``guest-cpu``
  services (:mod:`plugins.services`); the machine maps its main RAM through it.
* ``qom_device_plug_map``: a memory device's host memory mapped at its address
  (with an undo step); ``qom_device_unplug_map``: unmapped.
* ``qom_machine_shutdown``: the engine released.

Nobody imports this module: other plugins and devices use the services.
"""

from __future__ import annotations

from plugins import hookimpl
from plugins.address_space.engine import GuestAddressSpace
from plugins.services import (
    GUEST_CPU,
    GUEST_MEMORY,
    PORT_IO,
    GuestCpu,
    GuestMemory,
    PortIO,
    Services,
    services_of,
)
from qom import Device, Object, StashKey, UndoStack, as_memory_device

PLUGIN_NAME = "plugins.address_space.plugin"
_ADDRESS_SPACE: StashKey[GuestAddressSpace] = StashKey("guest-address-space")


def _range_name(device: Device) -> str:
    return device.canonical_path or f"{device.type_name}@{id(device):x}"


@hookimpl
def qom_machine_services(machine: Object, services: Services) -> None:
    """Create the engine and offer it as guest memory, port I/O and CPU."""
    space = GuestAddressSpace()
    machine.stash[_ADDRESS_SPACE] = space
    memory: GuestMemory = space
    ports: PortIO = space
    cpu: GuestCpu = space
    services.provide(GUEST_MEMORY, memory, provider=PLUGIN_NAME)
    services.provide(PORT_IO, ports, provider=PLUGIN_NAME)
    services.provide(GUEST_CPU, cpu, provider=PLUGIN_NAME)


@hookimpl
def qom_device_plug_map(machine: Object, device: Device, undo: UndoStack) -> None:
    """Map a plugged memory device's host memory at the device's address."""
    memory = as_memory_device(device)
    space = machine.stash.get(_ADDRESS_SPACE)
    if memory is None or space is None:
        return
    host = memory.get_host_region()
    mapped = space.map_ram(_range_name(device), memory.get_addr(), host,
                           size=memory.get_region_size(), readonly=host.readonly)
    undo.push(lambda: space.unmap(mapped), f"unmap {mapped.name}")


@hookimpl
def qom_device_unplug_map(machine: Object, device: Device) -> None:
    """Unmap an unplugged memory device: guest accesses there fault from now on."""
    space = machine.stash.get(_ADDRESS_SPACE)
    if space is None or as_memory_device(device) is None:
        return
    name = _range_name(device)
    if any(mapped.name == name for mapped in space.mappings()):
        space.unmap(name)


@hookimpl
def qom_machine_shutdown(machine: Object, reason: str) -> None:
    """Release the engine."""
    space = machine.stash.pop(_ADDRESS_SPACE)
    services = services_of(machine)
    for key in (GUEST_MEMORY, PORT_IO, GUEST_CPU):
        if services.provider(key) == PLUGIN_NAME:
            services.withdraw(key)
    if space is not None:
        space.close()


def address_space_of(machine: Object) -> GuestAddressSpace:
    """The engine behind the services, for tests and tools that need its extras
    (fault details, TLB mode); plugins use the services instead."""
    space = machine.stash.get(_ADDRESS_SPACE)
    if space is None:
        raise LookupError("this machine has no guest address space")
    return space
