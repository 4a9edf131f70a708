"""The CPU thread: the guest runs on it, in slices, while the monitors serve.

Unicorn's ``emu_start`` releases the GIL, so the monitors' threads go on while
the guest runs; but the engine must not be changed from another thread while
a slice runs (``mem_map_ptr``/``mem_unmap`` then crash the process).  So, as
QEMU's ``run_on_cpu`` does, every change to the engine made from elsewhere
(mapping or unmapping a DIMM, writing guest memory, reading the registers
or the guest's page tables for a monitor) is queued for the
CPU thread, the running slice is stopped (``emu_stop``, re-sent until the
thread has taken the work: a stop sent while no slice runs is lost), the CPU
thread does the work between two instructions and resumes the guest where it
was.

One lock orders the machine's changes: the *machine lock* (QEMU's big lock).
The monitors' command thread holds it while a command runs; the CPU thread
holds it while a port handler runs (the guest's ``IN``/``OUT`` reach device
models: the ACPI hotplug registers, an eject).  A thread waiting in
:meth:`Vcpu.run_on_cpu` lets go of it meanwhile, as QEMU's ``run_on_cpu``
releases the big lock, so a guest blocked on a port access can finish the
instruction that the stop waits for.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from plugins.address_space.engine import GuestAddressSpace, StopReason
from plugins.address_space.errors import GuestError, GuestFault
from plugins.services import GuestExit, GuestShutdown, InterruptSource

T = TypeVar("T")

#: how often a waiting :meth:`Vcpu.run_on_cpu` re-sends its stop (seconds)
STOP_RESEND_INTERVAL = 0.001


class _Work(Generic[T]):
    """One piece of work for the CPU thread, and its outcome."""

    def __init__(self, action: Callable[[], T]) -> None:
        self.action = action
        self.done = False
        self.result: T | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.action()
        except BaseException as err:  # handed back to the waiting thread
            self.error = err


CpuEventHandler = Callable[[str, Any], None]


class Vcpu:
    """The guest's one CPU on a thread of its own.

    :param space: the engine it runs.
    :param machine_lock: the machine lock (see the module's docstring); held
        around every port handler from now on.
    :param on_event: called on the CPU thread with ``("exit", status)`` when
        the guest asks the process to end (``isa-debug-exit``),
        ``("shutdown", reason)`` when it powers the machine off, or
        ``("error", exception)`` when the guest stopped on something the CPU
        cannot go on from (a fault with no handler, an invalid instruction);
        the CPU is paused then.
    """

    def __init__(self, space: GuestAddressSpace, machine_lock: threading.RLock,
                 on_event: CpuEventHandler) -> None:
        self._space = space
        self._machine_lock = machine_lock
        self._on_event = on_event
        self._state = threading.Condition(threading.Lock())
        self._finished = threading.Condition(machine_lock)
        self._work: collections.deque[_Work[Any]] = collections.deque()
        self._running = False        # the VM runs (not -S, not stop)
        self._halted = False         # HLT: waits for an interrupt or a reset
        self._in_slice = False       # a slice of guest code is running now
        self._closing = False
        self._rip: int | None = None  # where the guest goes on; None: nothing booted
        self._thread: threading.Thread | None = None
        #: where external interrupts come from (the pc's 8259s), if anywhere
        self.interrupts: InterruptSource | None = None
        self._interrupt_hint = False   # an interrupt may be pending: look
        space.io_lock = machine_lock
        space.cpu_runner = self.run_on_cpu

    # -- control (any thread) ----------------------------------------------------

    @property
    def halted(self) -> bool:
        """The guest executed HLT and waits (for an interrupt, or for ever with IF clear)."""
        return self._halted

    @property
    def thread_id(self) -> int | None:
        """The CPU thread's host id (``None`` until :meth:`resume` first starts it)."""
        thread = self._thread
        return thread.native_id if thread is not None else None

    def boot(self, start: int) -> None:
        """Guest code starts at ``start`` on the next :meth:`resume` (a boot or a reset)."""
        with self._state:
            self._rip = start
            self._halted = False
            self._state.notify_all()

    def resume(self) -> None:
        """Run the guest (``cont``, or start-up without ``-S``)."""
        with self._state:
            self._running = True
            if self._thread is None and not self._closing:
                self._thread = threading.Thread(target=self._loop, name="pyqom-vcpu",
                                                daemon=True)
                self._thread.start()
            self._state.notify_all()

    def pause(self) -> None:
        """Stop running guest code (``stop``); returns once the CPU is between slices."""
        with self._state:
            self._running = False
        # Waiting lets the machine lock go (the caller may hold it, and the guest
        # may be waiting for it in a port handler, which the stop waits for).
        with self._finished:
            while self._in_slice:
                self._space.interrupt_engine()
                self._finished.wait(STOP_RESEND_INTERVAL)

    @property
    def running(self) -> bool:
        return self._running

    def interrupt_raised(self) -> None:
        """An interrupt may be pending (any thread): a running slice stops so the
        CPU can take it between two instructions; a halted CPU looks."""
        with self._state:
            self._interrupt_hint = True
            if self._in_slice:
                self._space.interrupt_engine()
            self._state.notify_all()

    def run_on_cpu(self, action: Callable[[], T]) -> T:
        """Run ``action`` on the CPU thread between two instructions and return its
        result (or raise its error); at once on the CPU thread itself, or when
        there is no CPU thread.  The machine lock is let go while waiting."""
        if self._thread is None or threading.current_thread() is self._thread:
            return action()
        work: _Work[T] = _Work(action)
        with self._state:
            if self._closing:
                return action()   # the thread is gone or going: nothing runs
            self._work.append(work)
            self._state.notify_all()
        with self._finished:
            while not work.done:
                self._space.interrupt_engine()
                self._finished.wait(STOP_RESEND_INTERVAL)
        if work.error is not None:
            raise work.error
        return work.result  # type: ignore[return-value]  # done without error: a T

    def close(self) -> None:
        """End the CPU thread (the machine shuts down); queued work is still done."""
        with self._state:
            self._closing = True
            self._running = False
            thread = self._thread
            self._state.notify_all()
        if thread is not None and thread is not threading.current_thread():
            while thread.is_alive():
                self._space.interrupt_engine()
                thread.join(0.01)
        self._space.io_lock = None
        self._space.cpu_runner = None

    # -- the CPU thread ------------------------------------------------------------

    def _ready_to_run(self) -> bool:
        return self._running and self._rip is not None and (
            not self._halted or self._interrupt_hint)

    def _take_interrupt(self) -> bool:
        """Deliver a pending external interrupt if the guest takes them (IF set);
        whether one was delivered.  The hint stays while one is pending but
        masked by IF, so the next slice boundary (an HLT, a port access that
        stops the slice) looks again."""
        source = self.interrupts
        if source is None:
            self._interrupt_hint = False
            return False
        with self._machine_lock:
            if not source.pending():
                self._interrupt_hint = False
                return False
            if not self._space.interrupts_enabled():
                return False
            vector = source.acknowledge()
        if vector is None:
            return False
        self._rip = self._space.deliver_interrupt(vector)
        self._interrupt_hint = source.pending()
        return True

    def _loop(self) -> None:
        while True:
            with self._state:
                while not (self._closing or self._work or self._ready_to_run()):
                    self._state.wait()
                works = list(self._work)
                self._work.clear()
                if not works and self._closing:
                    return
                start = self._rip
                self._in_slice = not works
            if works:
                for work in works:
                    work.run()
                with self._finished:
                    for work in works:
                        work.done = True
                    self._finished.notify_all()
                continue
            assert start is not None
            if self._interrupt_hint:
                try:
                    taken = self._take_interrupt()
                except (GuestFault, GuestError) as err:
                    with self._state:
                        self._in_slice = False
                        self._running = False
                    self._on_event("error", err)
                    continue
                if taken:
                    with self._state:
                        self._halted = False
                        start = self._rip
                elif self._halted:
                    with self._state:
                        self._in_slice = False
                        # halted with IF clear, or nothing pending: sleep on
                        self._interrupt_hint = False
                    continue
            assert start is not None
            self._run_slice(start)

    def _run_slice(self, start: int) -> None:
        event: tuple[str, Any] | None = None
        reason = StopReason.STOPPED
        try:
            reason = self._space.execute(start)
        except GuestExit as exit_request:
            event = ("exit", exit_request.status)
        except GuestShutdown as shutdown:
            event = ("shutdown", shutdown.reason)
        except (GuestFault, GuestError) as err:
            event = ("error", err)
        except Exception as err:   # a port handler's bug must not kill the CPU thread
            event = ("error", err)
        rip = self._space.reg_read("rip")
        with self._state:
            self._in_slice = False
            self._rip = rip
            if reason is StopReason.HLT:
                self._halted = True
            if event is not None:
                self._running = False
            self._state.notify_all()
        if event is not None:
            self._on_event(*event)
