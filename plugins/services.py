"""Typed services: how plugins reach what another plugin provides, without importing it.

A service is an object one plugin provides for a machine and others use,
found by a typed :class:`ServiceKey`.  The keys and the Protocols they stand
for are defined here, in the contract; the implementations live in whichever
plugin provides them, and nobody imports that plugin::

    from plugins.services import PORT_IO, services_of

    ports = services_of(machine).get(PORT_IO)        # a PortIO, type-checked
    handle = ports.register_ports(0x402, 1, read, write, "my-device")

Providers offer their services in ``qom_machine_services(machine, services)``,
which runs before any other machine hook, so every ``qom_machine_init``
implementation and every device's ``realize`` can rely on them.  A service
whose provider is blocked (``PYQOM_DISABLED_PLUGINS``) is missing:
:meth:`Services.get` then raises :class:`ServiceUnavailableError` with a
one-line message, :meth:`Services.find` returns ``None``.

Built-in services:

=====================  ===========================  =============================
key                    protocol                     provided by
=====================  ===========================  =============================
:data:`GUEST_MEMORY`   :class:`GuestMemory`         the address-space plugin
:data:`PORT_IO`        :class:`PortIO`              the address-space plugin
:data:`GUEST_CPU`      :class:`GuestCpu`            the address-space plugin
:data:`INTERRUPTS`     :class:`InterruptController` the pc's 8259s (``devices.i8259``)
:data:`ACPI`           :class:`AcpiState`           the ACPI plugin
:data:`CHARDEVS`       :class:`Chardevs`            the VM (``pyqom.chardevs``)
=====================  ===========================  =============================
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Generic, Protocol, TypeVar

import attrs

from qom import HostRegion, Object, QomError, StashKey
from qom.reprs import FieldsValue

T = TypeVar("T")

#: ``read(offset, size) -> value`` for a guest ``IN``
PortRead = Callable[[int, int], int]
#: ``write(offset, size, value)`` for a guest ``OUT``
PortWrite = Callable[[int, int, int], None]


@attrs.frozen(repr=False, eq=False)
class ServiceKey(FieldsValue, Generic[T]):
    """The typed name of a service: ``services.get(KEY)`` is a ``T``.

    :ivar name: what messages call it (``"guest-memory"``).
    """

    name: str


class ServiceUnavailableError(QomError, LookupError):
    """A service nobody provides on this machine (its plugin is blocked, or the
    machine has none: no ACPI with ``-no-acpi``)."""

    def __init__(self, key: ServiceKey[Any]) -> None:
        super().__init__(f"this machine has no {key.name} service "
                         "(the plugin that provides it is not loaded)")
        self.key = key


class Services:
    """The services of one machine."""

    def __init__(self) -> None:
        self._provided: dict[ServiceKey[Any], tuple[Any, str]] = {}

    def provide(self, key: ServiceKey[T], implementation: T, *, provider: str) -> None:
        """Offer ``implementation`` under ``key``.

        :param provider: the providing plugin's name, for messages.
        :raises ValueError: ``key`` is provided already (two plugins claim it).
        """
        if key in self._provided:
            raise ValueError(f"service {key.name!r} is provided twice: by "
                             f"{self._provided[key][1]!r} and {provider!r}")
        self._provided[key] = (implementation, provider)

    def withdraw(self, key: ServiceKey[Any]) -> None:
        """Remove a service (its provider is shutting down); absent keys are ignored."""
        self._provided.pop(key, None)

    def get(self, key: ServiceKey[T]) -> T:
        """The service under ``key``.

        :raises ServiceUnavailableError: nobody provides it.
        """
        found = self._provided.get(key)
        if found is None:
            raise ServiceUnavailableError(key)
        implementation: T = found[0]
        return implementation

    def find(self, key: ServiceKey[T]) -> T | None:
        """The service under ``key``, or ``None``."""
        found = self._provided.get(key)
        return None if found is None else found[0]

    def provider(self, key: ServiceKey[Any]) -> str | None:
        """The name of the plugin that provides ``key``, or ``None``."""
        found = self._provided.get(key)
        return None if found is None else found[1]

    def __contains__(self, key: object) -> bool:
        return key in self._provided

    def keys(self) -> Iterable[ServiceKey[Any]]:
        return list(self._provided)


_SERVICES: StashKey[Services] = StashKey("services")


def services_of(machine: Object) -> Services:
    """The services of ``machine`` (an empty set before any is provided)."""
    services = machine.stash.get(_SERVICES)
    if services is None:
        services = Services()
        machine.stash[_SERVICES] = services
    return services


# ---------------------------------------------------------------------------
# Guest memory, ports and CPU
# ---------------------------------------------------------------------------


class MappedRegion(Protocol):
    """One range of guest-physical memory mapped over host memory."""

    @property
    def name(self) -> str: ...

    @property
    def gpa(self) -> int: ...

    @property
    def size(self) -> int: ...

    @property
    def offset(self) -> int: ...

    @property
    def readonly(self) -> bool: ...


class GuestMemory(Protocol):
    """The guest-physical address space: RAM mapped over host memory, no copies.

    Every change must be made from the thread that runs the guest, or while
    no guest code runs: :meth:`call_outside` defers one until then.
    """

    def map_ram(self, name: str, gpa: int, host: HostRegion, *, size: int | None = None,
                offset: int = 0, readonly: bool = False) -> MappedRegion:
        """Map ``[gpa, gpa+size)`` over ``host`` at ``offset``.

        :raises QomError: misaligned (4 KiB), overlapping, or the name is taken.
        """
        ...

    def unmap(self, range_or_name: Any) -> MappedRegion:
        """Remove a range (what :meth:`map_ram` returned, or its name)."""
        ...

    def mappings(self) -> Sequence[MappedRegion]:
        """Every mapped range, by address."""
        ...

    def read(self, gpa: int, n: int) -> bytes:
        """``n`` bytes of guest memory; raises on an unmapped byte."""
        ...

    def write(self, gpa: int, data: bytes | bytearray | memoryview) -> None:
        """Store ``data``; raises on an unmapped or read-only byte (nothing written)."""
        ...

    def call_outside(self, action: Callable[[], object]) -> None:
        """Run ``action`` now, or, while guest code runs, once the CPU has stopped."""
        ...

    def before_first_access(self, action: Callable[[], object]) -> None:
        """Run ``action`` just before guest memory is first read, written or run
        (or now, if it already was): for what a firmware would have put in RAM
        before the guest starts."""
        ...


class PortRange(Protocol):
    """A claimed range of I/O ports."""

    @property
    def name(self) -> str: ...

    @property
    def base(self) -> int: ...

    @property
    def length(self) -> int: ...


class PortIO(Protocol):
    """The guest's I/O port space (``IN``/``OUT``), 0-0xffff; one owner per port."""

    def register_ports(self, base: int, length: int, read: PortRead, write: PortWrite,
                       name: str, *, shadow: bool = False) -> PortRange:
        """Claim ``[base, base+length)``; ``read``/``write`` get the offset into it
        and the access size (1, 2 or 4); an access goes to the range of its
        first port.

        :param shadow: may overlap earlier ranges and wins the ports they share
            (QEMU's ISA devices: the later of two regions at one address).
        :raises QomError: outside 0-0xffff, empty, or overlapping a claimed range
            without ``shadow``.
        """
        ...

    def unregister_ports(self, handle: Any) -> None:
        """Give a range back."""
        ...

    def port_ranges(self) -> Sequence[PortRange]:
        """Every claimed range, by first port, the newest first among equals."""
        ...


class GuestCpu(Protocol):
    """The guest's x86-64 CPU."""

    def run(self, code: bytes, *, load_at: int, stack_top: int | None = ...,
            max_instructions: int | None = ..., timeout_us: int = ...,
            registers: Mapping[str, int] | None = ...) -> Any:
        """Load ``code`` at ``load_at`` and run it until ``HLT``, an instruction
        budget or a timeout; returns why it stopped and the registers."""
        ...

    def reg_read(self, name: str) -> int:
        """A register's value (``"rax"``)."""
        ...

    def request_stop(self) -> None:
        """Stop the running guest as soon as possible (from any thread)."""
        ...

    def boot_protected_mode(self, entry: int, registers: Mapping[str, int], *,
                            scratch: int, paging: bool = True,
                            firmware: Callable[[], None] | None = None) -> None:
        """Start the guest, when it first runs, in 32-bit protected mode at ``entry``
        (paging off, flat code selector 0x08 and data 0x10, interrupts off) with
        ``registers`` (``{"rax": 0x2BADB002, "rbx": info}``): a Multiboot hand-over.

        :param scratch: 64 bytes of guest RAM the CPU may use to get there.
        :param paging: the guest may turn on its own paging (the engine then
            honours its page tables).
        :param firmware: what the firmware does just before (copying the kernel
            into RAM): with ``-S``, RAM stays as it was until the guest first runs.
        """
        ...

    def resume(self) -> None:
        """Run the booted guest on the CPU thread (``cont``); nothing if none was booted."""
        ...

    def pause(self) -> None:
        """Stop running guest code (``stop``); returns once the CPU is between slices."""
        ...

    @property
    def booted(self) -> bool:
        """Whether there is guest code to run."""
        ...

    def cpu_state(self) -> dict[str, Any]:
        """A snapshot of every register (general, segment, control, debug, FPU,
        SSE) for ``info registers``."""
        ...

    @property
    def halted(self) -> bool:
        """Whether the CPU waits in HLT."""
        ...

    def read_virtual(self, address: int, length: int) -> bytes | None:
        """``length`` bytes at guest-virtual ``address`` (the guest's page tables),
        or ``None`` if some page is not mapped."""
        ...

    def idle_poll(self) -> None:
        """A port handler's hint, on the CPU thread: the guest polled and found
        nothing new.  After a few such polls in a row the CPU waits (up to
        10 ms, outside the machine lock) before going on, so a polling guest
        does not burn a host core; :meth:`kick` or any ``OUT`` ends the wait."""
        ...

    def kick(self) -> None:
        """Something a polling guest looks for has changed (an event was raised):
        end an idle wait now (any thread)."""
        ...

    def before_first_run(self, action: Callable[[], object]) -> None:
        """Run ``action`` just before the guest's first instruction (what the
        firmware sets up then, such as the PM I/O base SeaBIOS programs); never
        if no guest runs."""
        ...

    def set_interrupt_source(self, source: InterruptSource) -> None:
        """Where the CPU takes external interrupts from (the pc's 8259 pair)."""
        ...

    def interrupt_raised(self) -> None:
        """An interrupt may be pending (any thread): the CPU looks, between two
        instructions, or wakes from HLT."""
        ...

    def set_event_handler(self, handler: Callable[[str, Any], None]) -> None:
        """Call ``handler(kind, detail)`` on the CPU thread when the guest ends its run:
        ``("exit", status)`` (``isa-debug-exit``), ``("error", exception)`` (a fault
        the CPU cannot go on from; the CPU is paused)."""
        ...


class InterruptSource(Protocol):
    """The CPU's view of an interrupt controller (its INTR line and INTA cycle);
    called with the machine lock held."""

    def pending(self) -> bool:
        """Whether INTR is up."""
        ...

    def acknowledge(self) -> int | None:
        """INTA: the vector to deliver (the line goes in service), or ``None``."""
        ...


class InterruptController(Protocol):
    """The machine's interrupt lines (ISA IRQs 0-15); call with the machine lock held."""

    def set_irq(self, irq: int, level: bool) -> None:
        """Line ``irq`` goes to ``level`` (the ACPI SCI is IRQ 9)."""
        ...


GUEST_MEMORY: ServiceKey[GuestMemory] = ServiceKey("guest-memory")
PORT_IO: ServiceKey[PortIO] = ServiceKey("port-io")
GUEST_CPU: ServiceKey[GuestCpu] = ServiceKey("guest-cpu")
INTERRUPTS: ServiceKey[InterruptController] = ServiceKey("interrupts")


# ---------------------------------------------------------------------------
# ACPI
# ---------------------------------------------------------------------------


class AcpiTableBuilder(Protocol):
    """What ``qom_acpi_build`` implementations add to the tables being built.

    AML is given as encoded bytes (:mod:`plugins.aml` encodes it); the builder
    wraps, places and checksums it.
    """

    def add_dsdt_aml(self, aml: bytes) -> None:
        """Append AML to the DSDT's body (inside no scope: use ``Scope(\\_SB)``)."""
        ...

    def add_ssdt(self, oem_table_id: str, aml: bytes, *, board: bool = False) -> None:
        """Add an SSDT of its own with ``aml`` as its body (``oem_table_id`` <= 8 chars);
        ``board`` as for :meth:`add_table`."""
        ...

    def add_table(self, signature: str, body: bytes, *, revision: int = 1,
                  oem_table_id: str | None = None, board: bool = False) -> None:
        """Add a whole table: ``body`` follows the standard 36-byte header, which
        the builder writes (signature, length, revision, checksum, OEM fields).

        :param board: place it among the board's own tables, after the SRAT and
            before the WAET, where QEMU puts device tables (NFIT, CEDT); by
            default it goes after the WAET, where QEMU puts ``-acpitable`` ones.
            SSDTs take the same switch (``add_ssdt(..., board=True)``).
        """
        ...

    def add_srat_memory(self, base: int, length: int, node: int, flags: int) -> None:
        """Add a Memory Affinity entry to the SRAT (if the machine has one), after
        the RAM entries and before the padding and the hot-pluggable range, as
        QEMU adds NVDIMM and SGX ranges; ``flags`` of ``SRAT_MEMORY_*``."""
        ...

    def allocate(self, name: str, size: int) -> int:
        """Reserve ``size`` bytes (a multiple of 4 KiB) of guest RAM beside the
        tables, as the firmware allocates a fw_cfg file of QEMU's table loader
        (``etc/acpi/nvdimm-mem``), and return their guest-physical address, to
        put in the AML.  The same ``name`` gets the same address at every
        rebuild; 0 when the tables are not in guest memory (too little RAM
        below 4 GiB).  Its contents are left as the guest leaves them (zero
        at first)."""
        ...


class AcpiState(Protocol):
    """The ACPI tables in guest memory and the OSPM status the guest reported."""

    def tables(self) -> list[tuple[str, bytes]]:
        """(signature, bytes) of every current table, the RSDP first."""
        ...

    def ospm_status(self) -> list[dict[str, Any]]:
        """``query-acpi-ospm-status`` entries (QEMU's ``ACPIOSTInfo``), one per slot."""
        ...

    def press_power_button(self) -> None:
        """``system_powerdown``: the power button's PM1 status, and the SCI, if
        the guest enabled it (call with the machine lock held)."""
        ...

    def reserve(self, name: str, size: int) -> None:
        """Declare, in ``qom_machine_init``, a block of RAM the firmware allocates
        at boot beside the tables (QEMU registers a table-loader file such as
        ``etc/acpi/nvdimm-mem`` at machine init; SeaBIOS allocates it in its
        high zone, which the e820 map then reserves): get its address with
        :meth:`AcpiTableBuilder.allocate` when building tables.

        :raises ValueError: ``size`` not a multiple of 4 KiB, or ``name`` twice.
        """
        ...

    def reserved_size(self) -> int:
        """Bytes of every :meth:`reserve` (what the firmware's high zone grows by)."""
        ...

    def raise_gpe(self, bit: int) -> Callable[[], None]:
        """Set status bit ``bit`` of GPE0 and raise the SCI if the guest enabled it
        (QEMU's ``acpi_send_event``; the memory-hotplug block uses bit 3, NVDIMM
        hotplug bit 4), for a device that tells the guest of a plug with its own
        ``\\_GPE._Exx`` method.  Returns the step that withdraws it again (for
        an undo stack).  Call with the machine lock held."""
        ...


ACPI: ServiceKey[AcpiState] = ServiceKey("acpi")

#: SRAT Memory Affinity flags (:meth:`AcpiTableBuilder.add_srat_memory`)
SRAT_MEMORY_ENABLED = 1
SRAT_MEMORY_HOTPLUGGABLE = 2
SRAT_MEMORY_NON_VOLATILE = 4

#: class slot of a memory device type: ``False`` when the machine's ACPI
#: memory-hotplug block (``\\_SB.MHPC``, ports 0x0A00) must leave its slot alone
#: because the device tells the guest itself (QEMU's nvdimm: the NFIT, ``_FIT``
#: and GPE bit 4); then the block neither enables its slot nor announces it,
#: and ``device_del`` is not offered to the guest through it.  Default ``True``.
SLOT_ACPI_MEMORY_HOTPLUG = "acpi_memory_hotplug"


# ---------------------------------------------------------------------------
# Character devices and the host
# ---------------------------------------------------------------------------


class CharBackend(Protocol):
    """The host end of a chardev (``-chardev``, ``-debugcon``): where a device's
    output goes."""

    def write(self, data: bytes) -> None:
        """Write all of ``data`` (QEMU's ``qemu_chr_fe_write_all``: it may block)."""
        ...


class Chardevs(Protocol):
    """The machine's chardevs by id, and which device front end holds each."""

    def find(self, chardev_id: str) -> CharBackend | None:
        """The chardev ``chardev_id``, or ``None``."""
        ...

    def attach(self, chardev_id: str, owner: object) -> CharBackend:
        """Make ``owner`` the front end of ``chardev_id``.

        :raises QomError: no such chardev, or another front end has it.
        """
        ...

    def detach(self, chardev_id: str, owner: object) -> None:
        """``owner`` lets go of ``chardev_id`` (nothing if it did not hold it)."""
        ...


#: The host's chardevs: offered on the machine, and also on the tree's root
#: (``services_of(tree.root)``) from the start, so that objects created before
#: the machine (``-object rng-egd``, created after the chardevs as in QEMU)
#: find them too.
CHARDEVS: ServiceKey[Chardevs] = ServiceKey("chardev")


class GuestExit(Exception):
    """The guest asked the machine to end the process with ``status``
    (``isa-debug-exit``: ``(value << 1) | 1``).

    Raised from a port handler, it stops the guest: ``VM.run`` raises it, and
    on the CPU thread it becomes the ``("exit", status)`` CPU event, on which
    the ``pyqom`` command ends with ``status & 0xff`` as QEMU 7.2 does (at
    once, printing nothing and sending no SHUTDOWN).
    """

    def __init__(self, status: int) -> None:
        super().__init__(f"the guest asked to exit with status {status}")
        self.status = status


class GuestShutdown(Exception):
    """The guest powered the machine off (ACPI S5: ``SLP_EN`` with sleep type 0 in
    PM1a_CNT), as QEMU's ``qemu_system_shutdown_request``: the SHUTDOWN event
    (``guest: true``, ``reason``), then the process ends with status 0.

    Raised from a port handler, it stops the guest like :class:`GuestExit`.
    """

    def __init__(self, reason: str = "guest-shutdown") -> None:
        super().__init__(f"the guest shut the machine down ({reason})")
        self.reason = reason
