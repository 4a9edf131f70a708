"""``thread-context``: a host thread that creates threads (QEMU's ``util/thread-context.c``).

On Linux a new thread inherits the CPU affinity of the thread that creates
it.  A thread context is one persistent thread (``TC <id>``, started by
``complete()``; the kernel's thread name too) whose affinity is set from ``cpu-affinity`` or
``node-affinity``; :meth:`ThreadContext.start_thread` asks that thread to
start a new one, which therefore runs with the context's affinity.  A memory
backend with ``prealloc-context`` starts its preallocation threads there.

Properties, as in QEMU 7.2:

* ``thread-id`` (read-only ``int``): the context thread's kernel thread id
  (``-1``, read as an unsigned 64-bit value, before ``complete()``).
* ``cpu-affinity`` (list of ``uint16``): before ``complete()`` the value is
  kept and applied to the thread once it exists; afterwards it is applied
  at once (``sched_setaffinity`` on the thread id), to the context thread
  only, never to threads it already created.  Reading it gives the thread's
  real affinity.
* ``node-affinity`` (write-only list of ``uint16``): the CPUs of those host
  NUMA nodes (``/sys/devices/system/node/nodeN/cpulist``; unknown nodes are
  ignored, as libnuma's ``numa_node_to_cpus`` errors are in QEMU).

Host NUMA information always comes from sysfs, so QEMU's ``NUMA node
affinity is not supported by this QEMU`` (a build without libnuma) never
happens.  Errors are QEMU's: ``Mixing CPU and node affinity not supported`` (a second
affinity before ``complete()``), ``CPU list is empty``, ``Node list is
empty``, ``The nodes select no CPUs``, ``Setting CPU affinity failed:
<strerror>`` and ``Object not initialized yet``.

One difference, on purpose: a context deleted with ``object-del`` while a
backend still links to it stops its thread here (QEMU keeps it until the
last reference goes).  A thread started in a stopped context is given the
context's last affinity directly, so it runs where QEMU's would.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final

import attrs

from backends.base import TYPE_THREAD_CONTEXT
from backends.prealloc import name_this_thread
from plugins import hookimpl
from qom import (
    TYPE_USER_CREATABLE,
    UINT16,
    UINT64,
    ListKind,
    Object,
    ObjectClass,
    Property,
    QomError,
    TypeInfo,
    TypeRegistry,
)

#: Where the kernel lists host NUMA nodes and their CPUs.
NODE_SYSFS: Final = Path("/sys/devices/system/node")
AFFINITY_LIST: Final = ListKind(UINT16)

Command = Callable[[], None]


def parse_cpu_list(text: str) -> set[int]:
    """The CPUs of a kernel CPU list (``"0-3,8,10-11"``)."""
    cpus: set[int] = set()
    for part in text.strip().split(","):
        if not part:
            continue
        low, _, high = part.partition("-")
        cpus.update(range(int(low), int(high or low) + 1))
    return cpus


def node_cpus(node: int, sysfs: Path = NODE_SYSFS) -> set[int] | None:
    """The CPUs of host NUMA node ``node``, or ``None`` if the host has no such node.

    A host whose kernel has no NUMA support (no ``sysfs`` node directory at
    all) has one node, 0, with every CPU, as libnuma reports it.
    """
    try:
        return parse_cpu_list((sysfs / f"node{node}" / "cpulist").read_text())
    except OSError:
        if node == 0 and not sysfs.exists():
            return set(range(os.cpu_count() or 1))
        return None


def affinity_error(err: OSError) -> QomError:
    """QEMU's ``Setting CPU affinity failed: <strerror>``."""
    return QomError(f"Setting CPU affinity failed: {os.strerror(err.errno or 0)}")


@attrs.define(eq=False, repr=False)
class ThreadContext(Object):
    """A ``thread-context``: one persistent thread to create threads from."""

    #: the affinity set before complete(), applied when the thread exists
    _init_cpus: frozenset[int] | None = attrs.field(default=None, init=False)
    _thread: threading.Thread | None = attrs.field(default=None, init=False)
    _thread_id: int = attrs.field(default=-1, init=False)
    _commands: queue.SimpleQueue[Command | None] = attrs.field(
        factory=queue.SimpleQueue, init=False)
    #: the affinity last given to the thread (kept for a stopped context)
    _last_cpus: frozenset[int] | None = attrs.field(default=None, init=False)
    #: serialises start_thread() callers, as QEMU's mutex does
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False)

    @property
    def thread_id(self) -> int:
        """The context thread's kernel thread id, -1 before ``complete()``."""
        return self._thread_id

    @property
    def running(self) -> bool:
        """True while the context thread is alive (after ``complete()``, before finalize)."""
        return self._thread is not None

    # -- the context thread ------------------------------------------------

    def _run(self, started: threading.Event) -> None:
        name_this_thread(threading.current_thread().name)
        self._thread_id = threading.get_native_id()
        started.set()
        while True:
            command = self._commands.get()
            if command is None:
                return
            command()

    def complete(self) -> None:
        """user-creatable: start the context thread, then apply the affinity set so far."""
        if self._thread is not None:
            return
        started = threading.Event()
        thread = threading.Thread(target=self._run, args=(started,),
                                  name=f"TC {self.name_in_parent or ''}", daemon=True)
        thread.start()
        started.wait()  # the id is there before complete() returns, as in QEMU
        self._thread = thread
        cpus, self._init_cpus = self._init_cpus, None
        if cpus is not None:
            # On failure object-add unparents the context, which stops the thread.
            self._apply(cpus)

    def stop(self) -> None:
        """Stop and join the context thread (finalize; idempotent)."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._commands.put(None)
            thread.join()

    def _apply(self, cpus: Iterable[int]) -> None:
        mask = frozenset(cpus)
        try:
            os.sched_setaffinity(self._thread_id, mask)
        except OSError as err:
            raise affinity_error(err) from err
        self._last_cpus = mask

    def start_thread(self, target: Callable[..., Any], *, args: tuple[Any, ...] = (),
                     name: str | None = None) -> threading.Thread:
        """Start a thread running ``target(*args)`` from the context thread and return it.

        The new thread inherits the context thread's CPU affinity (QEMU's
        ``thread_context_create_thread``).  The call returns once the thread
        has started.
        """
        with self._lock:
            if self._thread is None:
                # Stopped (deleted) context: the thread places itself first.
                thread = threading.Thread(target=self._placed, args=(target, args),
                                          name=name, daemon=True)
                thread.start()
                return thread
            thread = threading.Thread(target=target, args=args, name=name, daemon=True)
            failure: list[BaseException] = []
            done = threading.Event()

            def start_in_context() -> None:
                try:
                    thread.start()
                except BaseException as err:  # handed back to the caller below
                    failure.append(err)
                finally:
                    done.set()

            self._commands.put(start_in_context)
            done.wait()
        if failure:
            raise failure[0]
        return thread

    def _placed(self, target: Callable[..., Any], args: tuple[Any, ...]) -> None:
        if self._last_cpus is not None:
            os.sched_setaffinity(0, self._last_cpus)
        target(*args)

    # -- properties --------------------------------------------------------

    def set_cpu_affinity(self, cpus: list[int]) -> None:
        """``cpu-affinity``: kept before complete, applied to the thread after."""
        if self._init_cpus is not None:
            raise QomError("Mixing CPU and node affinity not supported")
        if not cpus:
            raise QomError("CPU list is empty")
        self._set_cpus(frozenset(cpus))

    def get_cpu_affinity(self) -> list[int]:
        """``cpu-affinity``: the context thread's real affinity, ascending."""
        if self._thread_id == -1:
            raise QomError("Object not initialized yet")
        try:
            return sorted(os.sched_getaffinity(self._thread_id))
        except OSError as err:
            raise QomError(
                f"Getting CPU affinity failed: {os.strerror(err.errno or 0)}") from err

    def set_node_affinity(self, nodes: list[int]) -> None:
        """``node-affinity``: the CPUs of the given host nodes, as ``cpu-affinity``."""
        if self._init_cpus is not None:
            raise QomError("Mixing CPU and node affinity not supported")
        if not nodes:
            raise QomError("Node list is empty")
        cpus: set[int] = set()
        for node in nodes:
            cpus |= node_cpus(node) or set()
        if not cpus:
            raise QomError("The nodes select no CPUs")
        self._set_cpus(frozenset(cpus))

    def _set_cpus(self, cpus: frozenset[int]) -> None:
        if self._thread is None:
            self._init_cpus = cpus
        else:
            self._apply(cpus)


def _context(obj: Object) -> ThreadContext:
    assert isinstance(obj, ThreadContext)
    return obj


def _thread_id(obj: Object) -> int:
    # QEMU visits the int -1 as a uint64.
    return _context(obj).thread_id % (1 << 64)


def _thread_context_class_init(klass: ObjectClass, data: Any) -> None:
    klass.add_property(Property(name="thread-id", type="int", kind=UINT64, getter=_thread_id))
    klass.add_property(Property(
        name="cpu-affinity", type="int", kind=AFFINITY_LIST,
        getter=lambda obj: _context(obj).get_cpu_affinity(),
        setter=lambda obj, value: _context(obj).set_cpu_affinity(value)))
    klass.add_property(Property(
        name="node-affinity", type="int", kind=AFFINITY_LIST,
        setter=lambda obj, value: _context(obj).set_node_affinity(value)))


def _thread_context_finalize(obj: Object) -> None:
    _context(obj).stop()


THREAD_CONTEXT_INFO: Final = TypeInfo(
    name=TYPE_THREAD_CONTEXT, parent="object", impl=ThreadContext,
    interfaces=(TYPE_USER_CREATABLE,), class_init=_thread_context_class_init,
    instance_finalize=_thread_context_finalize,
)


@hookimpl
def qom_register_types(registry: TypeRegistry) -> None:
    """Register ``thread-context``."""
    registry.register(THREAD_CONTEXT_INFO)
