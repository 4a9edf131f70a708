"""Built-in plugin: the guest's address space, port I/O and CPU in one Unicorn engine.

* ``qom_machine_services``: one :class:`~plugins.address_space.engine.GuestAddressSpace`
  per machine, offered as the ``guest-memory``, ``port-io`` and ``guest-cpu``
  services (:mod:`plugins.services`); the machine maps its main RAM through it.
* ``qom_device_plug_map``: a memory device's host memory mapped at its address
  (with an undo step); ``qom_device_unplug_map``: unmapped.
* the CPU (:class:`CpuService`): code runs through the engine until HLT
  (``run``), or a booted guest runs on the CPU thread (:mod:`.vcpu`) while
  the monitors serve;
* ``qom_machine_shutdown``: the CPU thread ended, the engine released.

Nobody imports this module: other plugins and devices use the services.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from plugins import hookimpl
from plugins.address_space.engine import GuestAddressSpace, GuestFault
from plugins.address_space.vcpu import Vcpu
from plugins.services import (
    GUEST_CPU,
    GUEST_MEMORY,
    PORT_IO,
    GuestCpu,
    GuestMemory,
    InterruptSource,
    PortIO,
    Services,
    services_of,
)
from qom import Device, Object, StashKey, UndoStack, as_memory_device

PLUGIN_NAME = "plugins.address_space.plugin"
_ADDRESS_SPACE: StashKey[GuestAddressSpace] = StashKey("guest-address-space")
_CPU: StashKey[CpuService] = StashKey("guest-cpu")


class CpuService:
    """The ``guest-cpu`` service: one x86-64 CPU over the machine's engine.

    :meth:`run` runs code in the caller's thread until HLT (tests, tools);
    :meth:`boot_protected_mode` then :meth:`resume` run a booted guest on the
    CPU thread (:class:`~plugins.address_space.vcpu.Vcpu`), created on first
    resume, which from then on does every change to the engine.
    """

    def __init__(self, space: GuestAddressSpace, machine: Object) -> None:
        self._space = space
        self._machine = machine
        self._vcpu: Vcpu | None = None
        self._boot: tuple[int, dict[str, int], int] | None = None
        self._interrupts: InterruptSource | None = None
        self._firmware: Callable[[], None] | None = None
        self._first_run: list[Callable[[], object]] = []
        self._handler: Callable[[str, Any], None] = lambda kind, detail: None

    def run(self, code: bytes, **options: Any) -> Any:
        return self._space.run(code, **options)

    def reg_read(self, name: str) -> int:
        return self._space.reg_read(name)

    def request_stop(self) -> None:
        self._space.request_stop()

    def boot_protected_mode(self, entry: int, registers: Mapping[str, int], *,
                            scratch: int, paging: bool = True,
                            firmware: Callable[[], None] | None = None) -> None:
        if paging:
            self._space.set_tlb_mode("cpu")
        # The CPU state is set when the guest first runs: the engine (and Unicorn)
        # is not created before it is needed.
        self._boot = (entry, dict(registers), scratch)
        self._firmware = firmware
        if self._vcpu is not None:
            self._vcpu.boot(self._enter())

    def _enter(self) -> int:
        assert self._boot is not None
        entry, registers, scratch = self._boot
        if self._firmware is not None:
            self._firmware()
        while self._first_run:
            self._first_run.pop(0)()
        return self._space.enter_protected_mode(entry, registers, scratch=scratch)

    @property
    def booted(self) -> bool:
        return self._boot is not None

    def resume(self) -> None:
        if self._boot is None:
            return
        if self._vcpu is None:
            tree = self._machine.tree
            assert tree is not None
            self._vcpu = Vcpu(self._space, tree.lock, self._on_event)
            self._vcpu.interrupts = self._interrupts
            self._vcpu.boot(self._enter())
        self._vcpu.resume()

    def pause(self) -> None:
        if self._vcpu is not None:
            self._vcpu.pause()

    @property
    def halted(self) -> bool:
        return self._vcpu is not None and self._vcpu.halted

    @property
    def thread_id(self) -> int | None:
        return self._vcpu.thread_id if self._vcpu is not None else None

    def cpu_state(self) -> dict[str, Any]:
        if self._vcpu is not None:
            return self._vcpu.run_on_cpu(self._space.cpu_state)
        return self._space.cpu_state()

    def before_first_run(self, action: Callable[[], object]) -> None:
        if self._vcpu is not None:
            action()
        else:
            self._first_run.append(action)

    def set_interrupt_source(self, source: InterruptSource) -> None:
        self._interrupts = source
        if self._vcpu is not None:
            self._vcpu.interrupts = source

    def interrupt_raised(self) -> None:
        self._space.kick()
        if self._vcpu is not None:
            self._vcpu.interrupt_raised()

    def read_virtual(self, address: int, length: int) -> bytes | None:
        def read() -> bytes | None:
            try:
                return self._space.read_virtual(address, length)
            except GuestFault:
                return None

        # One stop of the guest for the whole read, not one per page.
        return self._vcpu.run_on_cpu(read) if self._vcpu is not None else read()

    def idle_poll(self) -> None:
        self._space.idle_poll()

    def kick(self) -> None:
        self._space.kick()

    def set_event_handler(self, handler: Callable[[str, Any], None]) -> None:
        self._handler = handler

    def _on_event(self, kind: str, detail: Any) -> None:
        self._handler(kind, detail)

    def close(self) -> None:
        """End the CPU thread (at shutdown)."""
        if self._vcpu is not None:
            self._vcpu.close()


def _range_name(device: Device) -> str:
    return device.canonical_path or f"{device.type_name}@{id(device):x}"


@hookimpl
def qom_machine_services(machine: Object, services: Services) -> None:
    """Create the engine and offer it as guest memory, port I/O and CPU."""
    space = GuestAddressSpace()
    machine.stash[_ADDRESS_SPACE] = space
    memory: GuestMemory = space
    ports: PortIO = space
    cpu_service = CpuService(space, machine)
    machine.stash[_CPU] = cpu_service
    cpu: GuestCpu = cpu_service
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
    cpu = machine.stash.pop(_CPU)
    if cpu is not None:
        cpu.close()
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
