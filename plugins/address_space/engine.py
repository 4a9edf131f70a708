"""The guest's CPU and physical address space: one Unicorn x86-64 engine.

This is the only module of pyqom that imports :mod:`unicorn`
(``tests/test_layering.py`` enforces it).  Everything else talks to
:class:`GuestAddressSpace`:

* **RAM** - :meth:`GuestAddressSpace.map_ram` maps guest-physical
  ``[gpa, gpa+size)`` with ``mem_map_ptr`` straight over a backend's
  :class:`~backends.host.HostRegion`.  Nothing is copied: a guest store is a
  store into the backend (and into the file of a ``share=on`` file backend),
  and a host write through ``HostRegion.view`` is seen by the guest.
* **Port I/O** - one registry of port handlers
  (:meth:`GuestAddressSpace.register_ports`) serves the guest's ``IN`` and
  ``OUT`` instructions.  Other plugins (ACPI's hotplug block at 0x0a00, a
  debug console) register here; nobody else hooks Unicorn.
* **Running code** - :meth:`GuestAddressSpace.run` loads code into mapped
  RAM and runs it until ``HLT``, an instruction budget or a timeout; a booted
  guest (:meth:`~GuestAddressSpace.enter_protected_mode`) runs in slices of
  :meth:`~GuestAddressSpace.execute` on the CPU thread (:mod:`.vcpu`), which
  also takes interrupts (:meth:`~GuestAddressSpace.deliver_interrupt`).
* **Listing** - :meth:`GuestAddressSpace.mtree`, what ``info mtree`` prints.

The TLB mode is chosen on purpose.  Unicorn's default (``UC_TLB_CPU``) walks
the guest's page tables through QEMU's softmmu; ``UC_TLB_VIRTUAL`` treats a
guest-virtual address as guest-physical.  Flat 64-bit code run with
:meth:`~GuestAddressSpace.run` never builds page tables, so both modes see the
same addresses there, and the virtual mode is several times faster for code
whose pages are executable (``bench/bench_guest_memory.py``: a 64-bit store
loop over 256 MiB ran at about 1,100 MiB/s against 160 MiB/s on the
development host).  A booted kernel turns on its own paging, so its boot
chooses ``"cpu"`` (``set_tlb_mode``); with its data pages no-execute, as an OS
maps them, it runs at the same speed (``bench/bench_guest.py``).

Two more things decide the speed, and both are chosen here on purpose:

* no ``UC_HOOK_MEM_*`` hook is installed while the guest runs: any of them,
  even one for unmapped accesses only, sends every load and store through
  Unicorn's slow path (about 8x slower).  A fault's address is found
  afterwards by re-running the faulting instruction with the hook on;
* an instruction budget (``max_instructions``) is counted by Unicorn with a
  per-instruction hook, again about 8x slower; pass ``None`` for speed.

Unicorn needs guest-physical ranges aligned to 4 KiB (its page size), so
:meth:`~GuestAddressSpace.map_ram` refuses anything else instead of letting
Unicorn answer ``UC_ERR_ARG``.

The engine is created, and :mod:`unicorn` imported (about 9 ms), only when
first needed: a read, a write, a run, a register.  Until then the address
space keeps its ranges and port handlers in Python, and the engine maps the
ranges when it is created; a machine that only starts and answers its monitor
never loads Unicorn.

Memory safety: Unicorn keeps only a raw host pointer, so while a range is
mapped this class holds a slice of the backend's ``view``.  That pins the
host mapping (``HostMapping.release`` cannot unmap it while the slice
lives), so a backend deleted too early cannot leave Unicorn with a dangling
pointer; :meth:`~GuestAddressSpace.unmap` releases the pin.
"""

from __future__ import annotations

import bisect
import enum
import functools
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal

import attrs

from plugins.address_space.errors import (
    AddressSpaceError,
    GuestError,
    GuestFault,
    MappingError,
    UnknownMappingError,
)
from plugins.address_space.ports import IO_SPACE_SIZE, PortRange, PortRead, PortRegistry, PortWrite
from qom import HostRegion
from qom.reprs import FieldsRepr, FieldsValue

if TYPE_CHECKING:
    from unicorn import Uc

__all__ = [
    "AddressSpaceError", "GuestAddressSpace", "GuestError", "GuestFault", "MappedRange",
    "MappingError", "PortRange", "RunResult", "StopReason", "UnknownMappingError",
    "IO_SPACE_SIZE",
]

#: Unicorn's mapping granularity on x86: ranges must be aligned to it.
GUEST_PAGE_SIZE: Final = 4096
#: x86's architectural limit of physical addresses (52 bits).
MAX_GUEST_PHYS_ADDR: Final = 1 << 52
#: The opcode of HLT.
HLT_OPCODE: Final = 0xF4
#: Default wall-clock limit of :meth:`GuestAddressSpace.run`: 10 s.
DEFAULT_TIMEOUT_US: Final = 10_000_000
#: Default instruction budget of :meth:`GuestAddressSpace.run`.
DEFAULT_MAX_INSTRUCTIONS: Final = 10_000_000
#: idle polls in a row before a polling guest is made to wait (GuestAddressSpace.idle_poll)
IDLE_POLLS: Final = 3
#: the longest idle wait (seconds): the latency a missed kick could add
IDLE_WAIT: Final = 0.01
#: ``until`` address for ``emu_start``: non-canonical, so no RIP ever equals it.
#: (With 2**64-1, Unicorn's check of the address before it leaves CR2 at
#: 0xfffffffffffffffe in a guest with paging on.)
_NO_EXIT: Final = 1 << 63

_ALL_ONES: Final[Mapping[int, int]] = MappingProxyType({1: 0xFF, 2: 0xFFFF, 4: 0xFFFF_FFFF})

TlbMode = Literal["virtual", "cpu"]
_TLB_MODE_NAMES: Final = ("virtual", "cpu")
_REGISTER_NAMES: Final = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9",
                          "r10", "r11", "r12", "r13", "r14", "r15", "rip", "rflags")


class _Unicorn:
    """What this module uses of :mod:`unicorn`, imported with the first engine."""

    def __init__(self) -> None:
        import unicorn
        from unicorn import x86_const as x86

        self.Uc = unicorn.Uc
        self.UcError = unicorn.UcError
        self.arch, self.mode = unicorn.UC_ARCH_X86, unicorn.UC_MODE_64
        self.tlb_modes: Mapping[str, int] = MappingProxyType(
            {"virtual": unicorn.UC_TLB_VIRTUAL, "cpu": unicorn.UC_TLB_CPU})
        self.prot_read, self.prot_write, self.prot_exec = (
            unicorn.UC_PROT_READ, unicorn.UC_PROT_WRITE, unicorn.UC_PROT_EXEC)
        self.hook_insn, self.ins_in, self.ins_out = (
            unicorn.UC_HOOK_INSN, x86.UC_X86_INS_IN, x86.UC_X86_INS_OUT)
        #: the hooks that see a faulting access (installed only by _locate_fault)
        self.hook_bad_access = (
            unicorn.UC_HOOK_MEM_READ_UNMAPPED | unicorn.UC_HOOK_MEM_WRITE_UNMAPPED
            | unicorn.UC_HOOK_MEM_FETCH_UNMAPPED | unicorn.UC_HOOK_MEM_READ_PROT
            | unicorn.UC_HOOK_MEM_WRITE_PROT | unicorn.UC_HOOK_MEM_FETCH_PROT)
        #: the system registers a boot sets (enter_protected_mode) and a page walk reads
        self.reg_gdtr, self.reg_cr0, self.reg_cr4, self.reg_msr = (
            x86.UC_X86_REG_GDTR, x86.UC_X86_REG_CR0, x86.UC_X86_REG_CR4, x86.UC_X86_REG_MSR)
        self.reg_cr3 = x86.UC_X86_REG_CR3
        self.reg_idtr, self.reg_cs, self.reg_ss = (
            x86.UC_X86_REG_IDTR, x86.UC_X86_REG_CS, x86.UC_X86_REG_SS)
        #: register name -> Unicorn register id (the module's REGISTERS)
        self.registers: Mapping[str, int] = MappingProxyType(
            {name: getattr(x86, f"UC_X86_REG_{name.upper()}") for name in _REGISTER_NAMES})
        #: Unicorn memory-access type -> (access word used in errors, is it a protection fault?)
        self.access: Mapping[int, tuple[str, bool]] = MappingProxyType({
            unicorn.UC_MEM_READ_UNMAPPED: ("read", False),
            unicorn.UC_MEM_WRITE_UNMAPPED: ("write", False),
            unicorn.UC_MEM_FETCH_UNMAPPED: ("fetch", False),
            unicorn.UC_MEM_READ_PROT: ("read", True), unicorn.UC_MEM_WRITE_PROT: ("write", True),
            unicorn.UC_MEM_FETCH_PROT: ("fetch", True),
        })
        #: Unicorn errors that mean "a memory access faulted" -> access word.
        self.fault_errors: Mapping[int, str] = MappingProxyType({
            unicorn.UC_ERR_READ_UNMAPPED: "read", unicorn.UC_ERR_WRITE_UNMAPPED: "write",
            unicorn.UC_ERR_FETCH_UNMAPPED: "fetch", unicorn.UC_ERR_READ_PROT: "read",
            unicorn.UC_ERR_WRITE_PROT: "write", unicorn.UC_ERR_FETCH_PROT: "fetch",
        })


@functools.cache
def _unicorn() -> _Unicorn:
    return _Unicorn()


def __getattr__(name: str) -> Any:
    # REGISTERS (register name -> Unicorn register id, for RunResult and
    # ``registers=``) is built from unicorn's constants, so on first use.
    if name == "REGISTERS":
        return _unicorn().registers
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")



# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------


# ---------------------------------------------------------------------------
# values
# ---------------------------------------------------------------------------


@attrs.frozen(eq=False, repr=False)
class MappedRange(FieldsRepr):
    """One RAM range of the guest-physical address space (identity-compared).

    :ivar name: unique name (the memory region's name in :meth:`~GuestAddressSpace.mtree`).
    :ivar gpa: first guest-physical address.
    :ivar size: bytes mapped (a multiple of 4 KiB).
    :ivar host: the backend memory it is mapped over.
    :ivar offset: where in ``host`` the range starts.
    :ivar readonly: guest writes fault (``host.readonly`` forces it).
    """

    name: str
    gpa: int
    size: int
    host: HostRegion = attrs.field(repr=False)
    offset: int = 0
    readonly: bool = False

    @property
    def end(self) -> int:
        """The first address after the range."""
        return self.gpa + self.size

    @property
    def last(self) -> int:
        """The last address of the range (what ``info mtree`` prints)."""
        return self.gpa + self.size - 1

    @property
    def host_address(self) -> int:
        """The host virtual address Unicorn reads and writes for ``gpa``."""
        return self.host.address + self.offset

    def contains(self, gpa: int) -> bool:
        """True if ``gpa`` lies in the range."""
        return self.gpa <= gpa < self.end


class StopReason(enum.StrEnum):
    """Why :meth:`GuestAddressSpace.run` returned."""

    HLT = "hlt"
    INSTRUCTION_LIMIT = "instruction-limit"
    TIMEOUT = "timeout"
    #: :meth:`GuestAddressSpace.request_stop` was called (e.g. by a port handler).
    STOPPED = "stopped"


@attrs.frozen(repr=False, eq=False)
class RunResult(FieldsValue):
    """The CPU state of interest after :meth:`GuestAddressSpace.run`.

    ``rip`` is the address after the ``HLT`` when ``reason`` is ``hlt``, else
    the next instruction that would have run.
    """

    reason: StopReason
    rax: int
    rbx: int
    rcx: int
    rdx: int
    rsi: int
    rdi: int
    rip: int

    @property
    def registers(self) -> dict[str, int]:
        """The registers as a dict (``{"rax": ..., ..., "rip": ...}``)."""
        return {name: getattr(self, name)
                for name in ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rip")}


# ---------------------------------------------------------------------------
# the address space
# ---------------------------------------------------------------------------


def _check_page_aligned(what: str, value: int) -> None:
    if value % GUEST_PAGE_SIZE:
        raise MappingError(f"{what} 0x{value:x} is not aligned to 4 KiB (0x1000):"
                           " Unicorn maps whole 4 KiB pages")


def _untyped(uc: Uc) -> Any:
    """``uc`` for the calls unicorn 2.1's inline types leave out (``ctl_*``, and
    ``hook_add``'s ``aux1``), which it has at run time."""
    return uc


class GuestAddressSpace:
    """One guest: a Unicorn x86-64 CPU, its RAM mappings and its port-I/O registry.

    One thread drives the engine at a time: the caller's, or, once a booted guest
    runs, the CPU thread, to which :attr:`cpu_runner` sends every change made
    from elsewhere.  Use it as a context manager or call :meth:`close` so the
    engine is released deterministically.

    :param tlb_mode: ``"virtual"`` (default: guest-virtual = guest-physical,
        fast, for flat code without page tables) or ``"cpu"`` (Unicorn's
        default: the guest's own page tables, if it sets any up).
    """

    def __init__(self, *, tlb_mode: TlbMode = "virtual") -> None:
        if tlb_mode not in _TLB_MODE_NAMES:
            raise ValueError(f"tlb_mode must be 'virtual' or 'cpu', not {tlb_mode!r}")
        self.tlb_mode: TlbMode = tlb_mode
        # Created by _engine() when first needed (see the module's docstring).
        self._uc: Uc | None = None
        self._closed = False
        # Sorted by gpa; bisect keeps lookups O(log n) as DIMMs accumulate.
        self._ranges: list[MappedRange] = []
        self._starts: list[int] = []
        self._pins: dict[int, memoryview] = {}  # id(range) -> slice pinning host memory
        self._ports = PortRegistry()
        # Per-run state: the first fault a hook saw, an exception a port handler
        # raised, and whether request_stop() was called.
        self._fault: GuestFault | None = None
        self._pending: BaseException | None = None
        self._stop_requested = False
        # Work a port handler asked to run outside the CPU loop (see call_outside).
        self._running = False
        self._deferred: list[Callable[[], object]] = []
        self._hooks: list[int] = []
        # What must happen before the guest's memory is first used (before_first_access).
        self._before_first_use: list[Callable[[], object]] = []
        #: held around every port handler call when set (the machine lock: a
        #: guest's port access and a monitor command change the machine in turn)
        self.io_lock: AbstractContextManager[object] | None = None
        #: runs engine changes on the CPU thread when one runs the guest
        #: (``Vcpu.run_on_cpu``); ``None``: the caller's thread is the only one
        self.cpu_runner: Callable[[Callable[[], Any]], Any] | None = None
        # Idle throttling of a polling guest (idle_poll, kick).
        self._idle_polls = 0
        self._idle_due = False
        self._wake = threading.Event()
        # No memory hook is installed while the guest runs: any UC_HOOK_MEM_*
        # hook (even one for unmapped accesses only) makes Unicorn translate
        # every load and store through its slow path, about 8x slower.  A
        # fault is located afterwards instead (_locate_fault).

    # -- lifetime ------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise AddressSpaceError("the guest address space is closed")

    def _engine(self) -> Uc:
        """The Unicorn engine, created (with the ranges mapped so far) on first use."""
        self._check_open()
        if self._uc is None:
            while self._before_first_use:
                self._before_first_use.pop(0)()
            self._uc = self._start_engine()
        return self._uc

    def set_tlb_mode(self, tlb_mode: TlbMode) -> None:
        """Choose the TLB mode before the engine exists (a booted kernel with its own
        page tables needs ``"cpu"``).

        :raises AddressSpaceError: the engine runs already (Unicorn fixes the
            mode before the first translation).
        """
        if tlb_mode not in _TLB_MODE_NAMES:
            raise ValueError(f"tlb_mode must be 'virtual' or 'cpu', not {tlb_mode!r}")
        if self._uc is not None and tlb_mode != self.tlb_mode:
            raise AddressSpaceError("the TLB mode is fixed once the engine runs")
        self.tlb_mode = tlb_mode

    def _on_cpu(self, action: Callable[[], object]) -> None:
        """Do ``action`` (a change to the engine) where it is safe: on the CPU thread
        between two instructions when one runs the guest, else here."""
        if self.cpu_runner is None:
            action()
        else:
            self.cpu_runner(action)

    def before_first_access(self, action: Callable[[], object]) -> None:
        """Run ``action`` just before guest memory is first read, written or run
        (now, if it already was): what a firmware puts in RAM before the guest
        starts (the ACPI tables) goes in then."""
        if self._uc is not None:
            action()
        else:
            self._before_first_use.append(action)

    def _start_engine(self) -> Uc:
        u = _unicorn()
        uc = u.Uc(u.arch, u.mode)
        # The TLB mode must be set before the first translation.
        _untyped(uc).ctl_set_tlb_mode(u.tlb_modes[self.tlb_mode])
        for mapped in self._ranges:
            self._map_into(uc, mapped)
        self._hooks = [
            _untyped(uc).hook_add(u.hook_insn, self._on_in, aux1=u.ins_in),
            _untyped(uc).hook_add(u.hook_insn, self._on_out, aux1=u.ins_out),
        ]
        return uc

    @staticmethod
    def _map_into(uc: Uc, mapped: MappedRange) -> None:
        u = _unicorn()
        perms = u.prot_read | u.prot_exec | (0 if mapped.readonly else u.prot_write)
        try:
            uc.mem_map_ptr(mapped.gpa, mapped.size, perms, mapped.host_address)
        except u.UcError as err:
            raise MappingError(f"cannot map {mapped.name!r} at 0x{mapped.gpa:x}: {err}") from err

    def close(self) -> None:
        """Unmap every range, drop every port handler and release the engine (idempotent)."""
        if self._closed:
            return
        for mapped in list(self._ranges):
            self.unmap(mapped)
        self._ports.clear()
        self._closed = True
        uc = self._uc
        if uc is None:
            return
        # Deleting the hooks breaks the Uc <-> self reference cycle, so dropping
        # the last reference closes the engine now rather than at the next GC.
        for handle in self._hooks:
            uc.hook_del(handle)
        self._hooks.clear()
        self._uc = None

    def __enter__(self) -> GuestAddressSpace:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- RAM -----------------------------------------------------------------

    def map_ram(self, name: str, gpa: int, host: HostRegion, *, size: int | None = None,
                offset: int = 0, readonly: bool = False) -> MappedRange:
        """Map guest-physical ``[gpa, gpa+size)`` over ``host`` at ``offset``, without copying.

        :param name: unique name of the range (e.g. ``"ram-below-4g"``, a DIMM's id).
        :param gpa: first guest-physical address; a multiple of 4 KiB.
        :param host: the backend's host memory.
        :param size: bytes to map, a multiple of 4 KiB; default: the rest of
            ``host`` after ``offset``, rounded up to 4 KiB (QEMU's RAM blocks are
            page-rounded too, and ``host`` is mapped at least that far).
        :param offset: where in ``host`` to start; a multiple of 4 KiB (the
            machine maps ``pc.ram`` as two ranges, below and above 4 GiB).
        :param readonly: guest writes fault; always true for a read-only backend,
            whose host pages cannot be written at all.
        :returns: the new range (a handle for :meth:`unmap`).
        :raises MappingError: misaligned, empty, beyond ``host``, beyond 2^52,
            overlapping another range, or the name is taken.
        """
        self._check_open()
        _check_page_aligned("guest-physical address", gpa)
        _check_page_aligned("offset", offset)
        available = -(-host.size // GUEST_PAGE_SIZE) * GUEST_PAGE_SIZE
        available = min(available, host.mapped_size)
        if size is None:
            size = available - offset
        _check_page_aligned("size", size)
        if gpa < 0 or offset < 0 or size <= 0:
            raise MappingError(f"cannot map {name!r}: gpa 0x{gpa:x}, offset 0x{offset:x} and"
                               f" size 0x{size:x} must be positive")
        if offset + size > available:
            raise MappingError(f"cannot map {name!r}: offset 0x{offset:x} + size 0x{size:x}"
                               f" is beyond its host memory (0x{available:x} bytes)")
        if gpa + size > MAX_GUEST_PHYS_ADDR:
            raise MappingError(f"cannot map {name!r} at 0x{gpa:x}: beyond the 52-bit"
                               " guest-physical address space")
        if any(r.name == name for r in self._ranges):
            raise MappingError(f"a range named {name!r} is already mapped")
        mapped = MappedRange(name=name, gpa=gpa, size=size, host=host, offset=offset,
                             readonly=readonly or host.readonly)
        clash = self._overlapping(gpa, gpa + size)
        if clash is not None:
            raise MappingError(
                f"cannot map {name!r} at 0x{gpa:x}-0x{mapped.last:x}: it overlaps"
                f" {clash.name!r} at 0x{clash.gpa:x}-0x{clash.last:x}")
        # Pin first: if Unicorn refuses, releasing the pin leaves nothing behind.
        pin = host.view[offset:min(offset + size, host.size)]
        uc = self._uc
        if uc is not None:  # else the engine maps it when it is created
            try:
                self._on_cpu(lambda: self._map_into(uc, mapped))
            except MappingError:
                pin.release()
                raise
        index = bisect.bisect(self._starts, gpa)
        self._ranges.insert(index, mapped)
        self._starts.insert(index, gpa)
        self._pins[id(mapped)] = pin
        return mapped

    def unmap(self, range_or_name: MappedRange | str) -> MappedRange:
        """Remove a range; guest accesses there fault afterwards.

        :param range_or_name: what :meth:`map_ram` returned, or its name.
        :returns: the range removed.
        :raises UnknownMappingError: no such range is mapped.
        """
        self._check_open()
        mapped = self._find(range_or_name)
        uc = self._uc
        if uc is not None:
            def unmap_from_engine() -> None:
                uc.mem_unmap(mapped.gpa, mapped.size)
                # Translated code may have been read from the range, and in the
                # virtual TLB mode nothing else would forget it.
                _untyped(uc).ctl_flush_tb()

            self._on_cpu(unmap_from_engine)
        index = self._ranges.index(mapped)
        del self._ranges[index]
        del self._starts[index]
        self._pins.pop(id(mapped)).release()
        return mapped

    def mappings(self) -> list[MappedRange]:
        """Every mapped range, sorted by guest-physical address."""
        return list(self._ranges)

    def mapping_at(self, gpa: int) -> MappedRange | None:
        """The range containing ``gpa``, or ``None``."""
        index = bisect.bisect(self._starts, gpa) - 1
        if index >= 0 and self._ranges[index].contains(gpa):
            return self._ranges[index]
        return None

    def _find(self, range_or_name: MappedRange | str) -> MappedRange:
        for mapped in self._ranges:
            if mapped is range_or_name or mapped.name == range_or_name:
                return mapped
        label = range_or_name if isinstance(range_or_name, str) else range_or_name.name
        raise UnknownMappingError(f"no range named {label!r} is mapped")

    def _overlapping(self, start: int, end: int) -> MappedRange | None:
        # Only the neighbours around the insertion point can overlap.
        index = bisect.bisect(self._starts, start)
        for candidate in self._ranges[max(index - 1, 0):index + 1]:
            if candidate.gpa < end and start < candidate.end:
                return candidate
        return None

    def _check_access(self, gpa: int, length: int, access: str) -> None:
        """Raise :class:`GuestFault` for the first byte of the access that is not usable."""
        address = gpa
        while address < gpa + length:
            mapped = self.mapping_at(address)
            if mapped is None:
                raise GuestFault(address, access, size=length)
            if access == "write" and mapped.readonly:
                # Unicorn's mem_write ignores protection; over a PROT_READ host
                # page that would crash the process, so refuse here.
                raise GuestFault(address, access, size=length, protection=True)
            address = mapped.end

    # -- guest-physical memory access ------------------------------------------

    def read(self, gpa: int, n: int) -> bytes:
        """``n`` bytes of guest-physical memory at ``gpa`` (through Unicorn).

        :raises GuestFault: some byte is not mapped (``address`` is the first one).
        """
        uc = self._engine()
        if n < 0 or gpa < 0:
            raise ValueError(f"cannot read {n} bytes at {gpa:#x}")
        if n == 0:
            return b""
        self._check_access(gpa, n, "read")
        return bytes(uc.mem_read(gpa, n))

    def write(self, gpa: int, data: bytes | bytearray | memoryview) -> None:
        """Write ``data`` to guest-physical memory at ``gpa`` (through Unicorn).

        :raises GuestFault: some byte is unmapped or read-only; nothing is written.
        """
        uc = self._engine()
        if gpa < 0:
            raise ValueError(f"cannot write at {gpa:#x}")
        if not data:
            return
        self._check_access(gpa, len(data), "write")
        payload = bytes(data)

        def store() -> None:
            uc.mem_write(gpa, payload)
            # Code translated from these bytes is stale now (Unicorn does not see
            # its own mem_write as a code change).
            _untyped(uc).ctl_remove_cache(gpa, gpa + len(payload))

        self._on_cpu(store)

    # -- port I/O --------------------------------------------------------------

    def register_ports(self, base: int, length: int, read: PortRead, write: PortWrite,
                       name: str, *, shadow: bool = False) -> PortRange:
        """Serve the guest's ``IN``/``OUT`` to ``[base, base+length)`` (see
        :meth:`PortRegistry.register <plugins.address_space.ports.PortRegistry.register>`)."""
        self._check_open()
        return self._ports.register(base, length, read, write, name, shadow=shadow)

    def unregister_ports(self, handle: PortRange) -> None:
        """Remove a port range registered by :meth:`register_ports`."""
        self._ports.unregister(handle)

    def port_ranges(self) -> list[PortRange]:
        """Every registered port range, sorted by first port."""
        return self._ports.ranges()

    def _on_in(self, uc: Uc, port: int, size: int, user_data: object) -> int:
        ones = _ALL_ONES.get(size, 0xFFFF_FFFF)
        handler = self._ports.find(port)
        if handler is None:
            return ones  # a PC's floating bus: nothing drives the data lines
        try:
            with self.io_lock or nullcontext():
                value = int(handler.read(port - handler.base, size)) & ones
        except BaseException as err:  # re-raised by run(); Unicorn cannot carry it
            self._abort(uc, err)
            return ones
        if self._idle_due:
            # The guest polls and nothing changes: let it wait a little, outside
            # the machine lock (what it polls for can change meanwhile).
            self._idle_due = False
            self._wake.wait(IDLE_WAIT)
            self._wake.clear()
        return value

    def _on_out(self, uc: Uc, port: int, size: int, value: int, user_data: object) -> None:
        self._idle_polls = 0   # the guest is doing something: no idle waits
        handler = self._ports.find(port)
        if handler is None:
            return  # nothing listens: the write is lost, as on a PC
        try:
            with self.io_lock or nullcontext():
                handler.write(port - handler.base, size, value & _ALL_ONES.get(size, 0xFFFF_FFFF))
        except BaseException as err:
            self._abort(uc, err)

    def _abort(self, uc: Uc, err: BaseException) -> None:
        if self._pending is None:
            self._pending = err
        uc.emu_stop()

    def _on_bad_access(self, uc: Uc, access: int, address: int, size: int, value: int,
                       user_data: object) -> bool:
        # Unicorn may call this once per byte of a straddling access: keep the first.
        if self._fault is None:
            u = _unicorn()
            word, protection = u.access.get(access, ("access", False))
            rip = uc.reg_read(u.registers["rip"])
            self._fault = GuestFault(address, word, size=size, protection=protection, rip=rip)
        return False  # do not map anything: the access fails and emulation stops

    # -- running guest code ----------------------------------------------------

    def request_stop(self) -> None:
        """Stop the running guest after the current instruction (for port handlers)."""
        self._stop_requested = True
        self._engine().emu_stop()

    def call_outside(self, action: Callable[[], object]) -> None:
        """Run ``action`` outside the CPU loop: now if no guest runs, else between
        two instructions, after which the guest goes on where it was.

        Port handlers use it for work that changes the address space (an eject
        unmaps a DIMM): Unicorn must not unmap memory from inside a hook while
        the guest's code runs, or its translated code points at freed pages.
        """
        if not self._running:
            action()
            return
        self._deferred.append(action)
        self._engine().emu_stop()

    def run(self, code: bytes, *, load_at: int, stack_top: int | None = None,
            max_instructions: int | None = DEFAULT_MAX_INSTRUCTIONS,
            timeout_us: int = DEFAULT_TIMEOUT_US,
            registers: Mapping[str, int] | None = None) -> RunResult:
        """Write ``code`` at ``load_at`` and run it until ``HLT``, the budget or the timeout.

        The translation cache is flushed first: code or data written from the
        host side (``HostRegion.view``) since the last run is seen fresh.

        :param code: flat x86-64 machine code.
        :param load_at: guest-physical address; ``code`` must fit in writable mapped RAM.
        :param stack_top: value for RSP, if given (the stack must be mapped RAM).
        :param max_instructions: instruction budget; ``None`` or 0 for none.
            A budget costs speed: Unicorn counts with a per-instruction hook
            (about 8x slower on a store loop; see the benchmark).
        :param timeout_us: wall-clock limit in microseconds; 0 for none.
        :param registers: initial values by name (``{"rdi": 0x1000}``), see :data:`REGISTERS`.
        :returns: why it stopped and the registers of interest.
        :raises GuestFault: the guest touched unmapped memory or wrote read-only memory.
        :raises GuestError: Unicorn stopped the guest otherwise (invalid instruction, ...).
        :raises MappingError: ``code`` does not fit in writable RAM.
        :raises Exception: whatever a port handler raised.

        A stop is reported as ``hlt`` when the byte before RIP is ``HLT``'s
        opcode; Unicorn does not say why it stopped, so a budget or timeout
        that ends exactly after another instruction whose last byte is 0xF4
        is reported as ``hlt`` too.
        """
        uc = self._engine()
        u = _unicorn()
        try:
            self._check_access(load_at, len(code), "write")
        except GuestFault as err:
            raise MappingError(f"cannot load {len(code)} bytes of code at 0x{load_at:x}:"
                               f" 0x{err.address:x} is not writable mapped RAM") from err
        unknown = set(registers or ()) - set(u.registers)
        if unknown:
            raise ValueError(f"unknown registers: {', '.join(sorted(unknown))}")
        uc.mem_write(load_at, bytes(code))
        _untyped(uc).ctl_flush_tb()
        for reg, value in (registers or {}).items():
            uc.reg_write(u.registers[reg], value)
        if stack_top is not None:
            uc.reg_write(u.registers["rsp"], stack_top)
        budget = max_instructions or 0
        started = time.perf_counter()
        self._execute(load_at, timeout_us=timeout_us, budget=budget)
        elapsed_us = (time.perf_counter() - started) * 1e6
        return self._result(self._stop_reason(uc, budget, timeout_us, elapsed_us))

    def _execute(self, start: int, *, timeout_us: int = 0, budget: int = 0) -> None:
        """Run guest code from ``start`` until it stops (HLT, :meth:`request_stop`,
        a handler's error, the budget or the timeout), doing the work port
        handlers asked for between instructions (:meth:`call_outside`).

        :raises GuestFault: an access to unmapped or read-only memory.
        :raises GuestError: Unicorn stopped the guest otherwise.
        :raises Exception: whatever a port handler raised.
        """
        uc = self._engine()
        u = _unicorn()
        self._fault = None
        self._pending = None
        self._stop_requested = False
        started = time.perf_counter()
        while True:
            remaining_us = max(timeout_us - int((time.perf_counter() - started) * 1e6), 1) \
                if timeout_us > 0 else 0
            self._running = True
            try:
                uc.emu_start(start, _NO_EXIT, timeout=remaining_us, count=budget)
            except u.UcError as err:
                self._running = False
                self._run_deferred()   # what the guest asked for (an eject) still happens
                self._raise_pending()
                rip = uc.reg_read(u.registers["rip"])
                if err.errno in u.fault_errors:
                    raise self._locate_fault(uc, rip, u.fault_errors[err.errno]) from err
                raise GuestError(f"guest stopped at rip 0x{rip:x}: {err}", rip=rip) from err
            finally:
                self._running = False
            if not self._deferred or self._pending is not None or self._stop_requested:
                self._run_deferred()   # the run ends; what the guest asked for still happens
                break
            # A handler asked for work outside the CPU loop: do it, then go on
            # from the next instruction (with what is left of the timeout).
            actions, self._deferred = self._deferred, []
            for action in actions:
                action()
            _untyped(uc).ctl_flush_tb()
            start = uc.reg_read(u.registers["rip"])
        self._raise_pending()

    def _run_deferred(self) -> None:
        actions, self._deferred = self._deferred, []
        for action in actions:
            action()

    def _locate_fault(self, uc: Uc, rip: int, access: str) -> GuestFault:
        """The fault at ``rip``, with the address: re-run that one instruction, hooked.

        Unicorn reports only the kind of fault, and the hook that would give
        the address slows every access while installed (see ``__init__``).
        QEMU restores the CPU state of a faulting instruction exactly, so
        RIP points at it and running it once more faults the same way, now
        with the hook watching.  Re-running repeats the instruction's side
        effects before the fault (a store's bytes in a mapped page, a string
        I/O's port accesses), which a faulting instruction may repeat anyway.
        """
        u = _unicorn()
        self._fault = None
        handle = uc.hook_add(u.hook_bad_access, self._on_bad_access)
        try:
            # Hooks take effect in newly translated code only.
            _untyped(uc).ctl_flush_tb()
            uc.emu_start(rip, _NO_EXIT, timeout=0, count=1)
        except u.UcError:
            pass
        finally:
            uc.hook_del(handle)
            _untyped(uc).ctl_flush_tb()
            uc.reg_write(u.registers["rip"], rip)
            self._pending = None
        fault, self._fault = self._fault, None
        if fault is None:  # did not fault again: report what is known
            fault = GuestFault(rip, access, rip=rip)
        return fault

    def _raise_pending(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            raise pending

    def _stop_reason(self, uc: Uc, budget: int, timeout_us: int,
                     elapsed_us: float) -> StopReason:
        if self._stop_requested:
            return StopReason.STOPPED
        rip = uc.reg_read(_unicorn().registers["rip"])
        # HLT ends its translation block and stops Unicorn with RIP after it.
        if rip > 0 and self.mapping_at(rip - 1) is not None \
                and uc.mem_read(rip - 1, 1)[0] == HLT_OPCODE:
            return StopReason.HLT
        if timeout_us > 0 and elapsed_us >= timeout_us:
            return StopReason.TIMEOUT
        if budget:
            return StopReason.INSTRUCTION_LIMIT
        return StopReason.STOPPED

    def _result(self, reason: StopReason) -> RunResult:
        uc = self._engine()
        registers = _unicorn().registers
        values = {name: uc.reg_read(registers[name])
                  for name in ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rip")}
        return RunResult(reason=reason, **values)

    def reg_read(self, name: str) -> int:
        """The value of a register of :data:`REGISTERS` (between runs)."""
        return int(self._engine().reg_read(_unicorn().registers[name]))

    def enter_protected_mode(self, entry: int, registers: Mapping[str, int], *,
                             scratch: int) -> int:
        """Make the next run enter 32-bit protected mode at ``entry`` with paging off,
        flat 4 GiB code (selector 0x08) and data (0x10) segments, interrupts off,
        and ``registers`` (``{"rax": 0x2BADB002, "rbx": info}``): the state a
        Multiboot loader hands over.

        Unicorn's x86-64 engine cannot load a code segment descriptor by register
        write, so a GDT and a five-instruction trampoline go at guest-physical
        ``scratch`` (64 bytes of RAM the guest does not expect to keep): the
        trampoline loads the data selectors, sets the registers Unicorn would
        not keep, and far-returns to ``entry`` through selector 0x08.

        :returns: the address to start running at (the trampoline).
        """
        u = _unicorn()
        gdt = (0).to_bytes(8, "little") + (0x00CF9A000000FFFF).to_bytes(8, "little") \
            + (0x00CF92000000FFFF).to_bytes(8, "little")
        eax = registers.get("rax", 0) & 0xFFFF_FFFF
        trampoline = (
            b"\x66\xb8\x10\x00"                          # mov ax, 0x10
            b"\x8e\xd8\x8e\xc0\x8e\xd0\x8e\xe0\x8e\xe8"      # mov ds/es/ss/fs/gs, ax
            + b"\xb8" + eax.to_bytes(4, "little")          # mov eax, imm32
            + b"\x6a\x08"                                   # push 0x08
            + b"\x68" + (entry & 0xFFFF_FFFF).to_bytes(4, "little")  # push entry
            + b"\x48\xcb")                                  # retfq
        self.write(scratch, gdt + trampoline)
        uc = self._engine()
        _untyped(uc).ctl_flush_tb()
        uc.reg_write(u.reg_gdtr, (0, scratch, len(gdt) - 1, 0))
        uc.reg_write(u.reg_cr4, 0)        # Unicorn's reset value is 0x50200
        uc.reg_write(u.reg_cr0, 0x11)     # PE and ET, paging off
        uc.reg_write(u.reg_msr, (0xC0000080, 0))   # EFER: no long mode
        # The x87 and SSE state as the CPU's reset and SeaBIOS leave it.
        import unicorn.x86_const as x86

        uc.reg_write(x86.UC_X86_REG_FPCW, 0x037F)
        uc.reg_write(x86.UC_X86_REG_FPTAG, 0xFFFF)
        uc.reg_write(x86.UC_X86_REG_MXCSR, 0x1F80)
        uc.reg_write(u.reg_idtr, (0, 0, 0x3FF, 0))   # the real-mode vector table's
        uc.reg_write(x86.UC_X86_REG_CR2, 0)
        for name, value in registers.items():
            if name not in ("rax", "rflags"):
                uc.reg_write(u.registers[name], value & 0xFFFF_FFFF)
        # IF stays clear whatever is asked: the guest enables interrupts itself.
        uc.reg_write(u.registers["rflags"], (registers.get("rflags", 0x2) | 0x2) & ~0x200)
        return scratch + len(gdt)

    def execute(self, start: int) -> StopReason:
        """Run guest code from ``start`` with no budget and no timeout until it halts
        (``hlt``) or is stopped (``stopped``: :meth:`request_stop` or another
        thread's ``emu_stop``); the CPU thread's slice.

        :raises GuestFault, GuestError: as :meth:`run`; whatever a port handler raised.
        """
        uc = self._engine()
        self._execute(start)
        return self._stop_reason(uc, 0, 0, 0.0)

    def translate(self, address: int) -> int | None:
        """The guest-physical address of virtual ``address`` under the guest's own
        paging (between runs), or ``None`` if it is not mapped: what QEMU's
        ``cpu_memory_rw_debug`` finds (x86 4-level, PAE and 32-bit paging, large
        pages included).  Without paging, virtual is physical."""
        u = _unicorn()
        uc = self._engine()
        cr0, cr3, cr4 = (int(uc.reg_read(reg)) for reg in (u.reg_cr0, u.reg_cr3, u.reg_cr4))
        if not cr0 & 0x8000_0000:
            return address & 0xFFFF_FFFF
        efer = int(uc.reg_read(u.reg_msr, 0xC0000080))

        def entry(table: int, index: int, size: int) -> int | None:
            try:
                return int.from_bytes(self.read(table + index * size, size), "little")
            except GuestFault:
                return None

        if efer & 0x400:                       # long mode: 4 levels of 8-byte entries
            address &= (1 << 48) - 1
            table = cr3 & 0x000F_FFFF_FFFF_F000
            for level, shift in enumerate((39, 30, 21, 12)):
                value = entry(table, (address >> shift) & 0x1FF, 8)
                if value is None or not value & 1:
                    return None
                frame = value & 0x000F_FFFF_FFFF_F000
                if level in (1, 2) and value & 0x80:      # 1 GiB or 2 MiB page
                    return (frame & ~((1 << shift) - 1)) | (address & ((1 << shift) - 1))
                table = frame
            return table | (address & 0xFFF)
        address &= 0xFFFF_FFFF
        if cr4 & 0x20:                         # PAE: 3 levels of 8-byte entries
            pdpte = entry(cr3 & 0xFFFF_FFE0, address >> 30, 8)
            if pdpte is None or not pdpte & 1:
                return None
            pde = entry(pdpte & 0x000F_FFFF_FFFF_F000, (address >> 21) & 0x1FF, 8)
            if pde is None or not pde & 1:
                return None
            if pde & 0x80:
                return (pde & 0x000F_FFFF_FFE0_0000) | (address & 0x1F_FFFF)
            pte = entry(pde & 0x000F_FFFF_FFFF_F000, (address >> 12) & 0x1FF, 8)
            if pte is None or not pte & 1:
                return None
            return (pte & 0x000F_FFFF_FFFF_F000) | (address & 0xFFF)
        pde = entry(cr3 & 0xFFFF_F000, address >> 22, 4)   # 32-bit paging
        if pde is None or not pde & 1:
            return None
        if pde & 0x80 and cr4 & 0x10:
            return (pde & 0xFFC0_0000) | (address & 0x3F_FFFF)
        pte = entry(pde & 0xFFFF_F000, (address >> 12) & 0x3FF, 4)
        if pte is None or not pte & 1:
            return None
        return (pte & 0xFFFF_F000) | (address & 0xFFF)

    def _virtual_write(self, address: int, data: bytes) -> None:
        while data:
            chunk = min(len(data), 0x1000 - (address & 0xFFF))
            target = self.translate(address)
            if target is None:
                raise GuestFault(address, "write")
            self.write(target, data[:chunk])
            address, data = address + chunk, data[chunk:]

    def read_virtual(self, address: int, length: int) -> bytes:
        """``length`` bytes at guest-virtual ``address`` through the guest's page
        tables (between runs).

        :raises GuestFault: a page is not mapped (by the guest or in RAM).
        """
        data = b""
        while length > 0:
            chunk = min(length, 0x1000 - (address & 0xFFF))
            target = self.translate(address)
            if target is None:
                raise GuestFault(address, "read")
            data += self.read(target, chunk)
            address, length = address + chunk, length - chunk
        return data

    def deliver_interrupt(self, vector: int) -> int:
        """Deliver external interrupt ``vector`` through the guest's IDT, as the CPU
        does at an instruction boundary (between runs): the return frame pushed
        on the current stack (same privilege level: no stack switch, no IST),
        CS:RIP from the gate, IF cleared for an interrupt gate.  Long mode
        (16-byte gates, a 64-bit frame aligned to 16) and 32-bit protected mode
        (8-byte gates, EFLAGS, CS, EIP).  Returns the new RIP.

        :raises GuestFault: the IDT or the stack is not mapped.
        :raises GuestError: the gate is not present (QEMU would raise #GP, then
            a double fault).
        """
        u = _unicorn()
        uc = self._engine()
        registers = u.registers
        _, idt_base, idt_limit, _ = uc.reg_read(u.reg_idtr)
        cr0 = int(uc.reg_read(u.reg_cr0))
        efer = int(uc.reg_read(u.reg_msr, 0xC0000080))
        long_mode = bool(cr0 & 0x8000_0000 and efer & 0x100)
        rip, rsp = uc.reg_read(registers["rip"]), uc.reg_read(registers["rsp"])
        rflags = uc.reg_read(registers["rflags"])
        cs, ss = int(uc.reg_read(u.reg_cs)), int(uc.reg_read(u.reg_ss))
        size = 16 if long_mode else 8
        if (vector + 1) * size - 1 > idt_limit:
            raise GuestError(f"interrupt vector 0x{vector:x} is beyond the IDT", rip=rip)
        gate = self.read_virtual(idt_base + vector * size, size)
        kind, present = gate[5] & 0x0F, gate[5] & 0x80
        if not present:
            raise GuestError(f"interrupt vector 0x{vector:x} has no gate", rip=rip)
        selector = int.from_bytes(gate[2:4], "little")
        target = int.from_bytes(gate[0:2], "little") | (int.from_bytes(gate[6:8], "little") << 16)
        if long_mode:
            target |= int.from_bytes(gate[8:12], "little") << 32
            frame_top = rsp & ~0xF
            frame = b"".join(value.to_bytes(8, "little")
                             for value in (rip, cs, rflags, rsp, ss))
        else:
            frame_top = rsp & 0xFFFF_FFFF
            frame = b"".join((value & 0xFFFF_FFFF).to_bytes(4, "little")
                             for value in (rip, cs, rflags))
        new_rsp = frame_top - len(frame)
        self._virtual_write(new_rsp, frame)
        uc.reg_write(registers["rsp"], new_rsp)
        cleared = 0x100 | 0x4000 | 0x10000 | (0x200 if kind in (0x6, 0xE) else 0)
        uc.reg_write(registers["rflags"], rflags & ~cleared)   # TF, NT, RF (and IF)
        if selector != cs:
            uc.reg_write(u.reg_cs, selector)
        uc.reg_write(registers["rip"], target)
        return target

    def cpu_state(self) -> dict[str, Any]:
        """Everything ``info registers`` shows, read between runs: the general
        registers, RIP and RFLAGS, each segment as (selector, base, limit, flags)
        with the hidden part read from the guest's descriptor table (Unicorn does
        not expose its cache), GDTR/IDTR, control, debug and FPU/SSE registers."""
        import unicorn.x86_const as x86

        uc = self._engine()
        u = _unicorn()
        state: dict[str, Any] = {name: int(uc.reg_read(u.registers[name]))
                                 for name in _REGISTER_NAMES}
        for name in ("cr0", "cr2", "cr3", "cr4", "dr0", "dr1", "dr2", "dr3", "dr6", "dr7",
                     "fpcw", "fpsw", "fptag", "mxcsr", "fs_base", "gs_base"):
            state[name] = int(uc.reg_read(getattr(x86, f"UC_X86_REG_{name.upper()}")))
        state["efer"] = int(uc.reg_read(u.reg_msr, 0xC0000080))
        for name in ("gdtr", "idtr"):
            _, base, limit, _ = uc.reg_read(getattr(x86, f"UC_X86_REG_{name.upper()}"))
            state[name] = (int(base), int(limit))
        state["fpr"] = [tuple(int(part) for part in uc.reg_read(getattr(x86, f"UC_X86_REG_FP{i}")))
                        for i in range(8)]
        state["xmm"] = [int(uc.reg_read(getattr(x86, f"UC_X86_REG_XMM{i}"))) for i in range(16)]
        gdt_base, gdt_limit = state["gdtr"]
        segments = {}
        for name in ("es", "cs", "ss", "ds", "fs", "gs", "ldtr", "tr"):
            if name in ("ldtr", "tr"):
                selector = int(uc.reg_read(getattr(x86, f"UC_X86_REG_{name.upper()}"))[0])
            else:
                selector = int(uc.reg_read(getattr(x86, f"UC_X86_REG_{name.upper()}")))
            segments[name] = (selector, *self._descriptor(selector, gdt_base, gdt_limit, name))
        state["segments"] = segments
        return state

    def _descriptor(self, selector: int, gdt_base: int, gdt_limit: int,
                    name: str) -> tuple[int, int, int]:
        """(base, limit, flags) of ``selector``'s descriptor in the GDT as the CPU
        caches it; the reset state for a null LDT or TR selector."""
        if selector & ~3 == 0 or selector & 4 or (selector | 7) > gdt_limit:
            if name == "ldtr":
                return 0, 0xFFFF, 0x8200
            if name == "tr":
                return 0, 0xFFFF, 0x8B00
            return 0, 0, 0
        try:
            raw = self.read_virtual(gdt_base + (selector & ~7), 16)
        except GuestFault:
            return 0, 0, 0
        low, high = int.from_bytes(raw[0:4], "little"), int.from_bytes(raw[4:8], "little")
        base = (low >> 16) | ((high & 0xFF) << 16) | (high & 0xFF00_0000)
        limit = (low & 0xFFFF) | (high & 0x000F_0000)
        if high & 0x0080_0000:   # granularity: 4 KiB units
            limit = (limit << 12) | 0xFFF
        if name in ("fs", "gs"):
            base = 0   # the 64-bit base lives in the MSR (filled in by the caller)
        if name in ("ldtr", "tr"):
            base |= int.from_bytes(raw[8:12], "little") << 32   # 16-byte system descriptor
        return base, limit, high & 0x00FF_FF00

    def interrupts_enabled(self) -> bool:
        """RFLAGS.IF (between runs): whether a halted CPU can be woken."""
        return bool(self.reg_read("rflags") & 0x200)

    def interrupt_engine(self) -> None:
        """``emu_stop`` from any thread: the running slice ends after the current
        instruction (a stop while no slice runs is lost; the caller re-sends)."""
        self._wake.set()   # a guest waiting in an idle poll goes on to the stop
        uc = self._uc
        if uc is not None:
            uc.emu_stop()

    def idle_poll(self) -> None:
        """A port handler's hint: the guest polled and nothing was new.  After
        :data:`IDLE_POLLS` in a row, the ``IN`` waits up to :data:`IDLE_WAIT`
        seconds (outside the machine lock) or until :meth:`kick`."""
        self._idle_polls += 1
        if self._idle_polls >= IDLE_POLLS:
            self._idle_due = True

    def kick(self) -> None:
        """End an idle wait now (any thread): what the guest polls for changed."""
        self._idle_polls = 0
        self._wake.set()

    def __iter__(self) -> Iterator[MappedRange]:
        return iter(list(self._ranges))
