"""The Python API: a pc machine with memory hotplug, in one object.

::

    from pyqom.vm import VM

    with VM(memory="1G", slots=3, maxmem="4G") as vm:     # or VM.from_args([...])
        vm.object_add("memory-backend-ram", "mem1", size=1 << 30)
        vm.device_add("pc-dimm", "dimm1", memdev="mem1")
        vm.query_memory_devices()     # [{"type": "dimm", "data": {"addr": 4294967296, ...}}]
        vm.write(0x100000000, b"hi")  # guest-physical memory is the backend's memory
        vm.run(code, load_at=0x1000)  # x86-64 code in Unicorn, until HLT

A :class:`VM` is a composition root: it makes its own plugin manager,
registry, tree and machine, processes objects, the machine and cold-plugged
devices in QEMU's order, and tears everything down in :meth:`close`.
Errors are :class:`qom.QomError` with QEMU 7.2's messages; a failed call
leaves the machine as it was.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

import pluggy

import qom
from backends.base import query_memdev
from devices.machine import (
    CPU_VENDOR_AMD,
    DEFAULT_PHYS_BITS,
    PcMachine,
    create_pc_machine,
    machine_ready,
    shutdown_machine,
)
from devices.memory_options import (
    MemoryConfig,
    memory_config,
)
from devices.none_machine import NoneMachine, create_none_machine
from plugins import hookimpl
from plugins.device_events import DeviceRef, Outcome, online_outcome, removal_outcome
from plugins.services import CHARDEVS, GUEST_CPU, GUEST_MEMORY, GuestCpu, GuestMemory, services_of
from pyqom.chardevs import PROVIDER as CHARDEVS_PROVIDER
from pyqom.chardevs import HostChardevs, parse_legacy_chardev
from pyqom.command_line import parse_command_line, start
from pyqom.manager import make_plugin_manager, make_registry, make_tree

if TYPE_CHECKING:
    # concurrent.futures imports logging: off the start-up path until a future is made
    from concurrent.futures import Future

    from pyqom.check_config import StartupPlan


class VM:
    """A pc machine, its objects and devices, and its guest memory.

    :param memory: ``-m`` text (``"1G,slots=3,maxmem=4G"``; a bare number is
        MiB, as in QEMU), bytes as an int (``1 << 30``), or a :class:`MemoryConfig`.
    :param slots: hotplug slots (``-m ...,slots=``).
    :param maxmem: maximum memory (``-m ...,maxmem=``), bytes as an int or a size string.
    :raises ValueError: ``slots`` or ``maxmem`` given in ``memory`` and as a keyword.
    :param machine: ``-machine`` type name.
    :param phys_bits: the CPU's physical address bits.
    :param cpu_vendor: the CPU's vendor (``-cpu ...,vendor=``): an Intel CPU has no
        AMD 1 TiB hole in the memory layout.
    :param objects: ``object-add`` argument dicts created before the machine.
    :param devices: ``device_add`` option dicts cold-plugged after machine init
        (values as for QMP ``device_add``: strings or JSON values).
    :param object_source: how ``objects`` values are read (``qom.OPTS`` for
        command-line strings).
    :param chardevs: chardevs for devices, id -> legacy spec (``{"c0":
        "file:/tmp/out"}``; ``null``, ``stdio``, ``vc``, ``file:PATH``).
    :param globals: ``-global`` settings, (driver, property, value) strings.
    :param plugins: extra plugin objects.
    :param autoload: load third-party plugins (default: unless disabled by env).
    """

    def __init__(self, memory: str | int | MemoryConfig | None = None, *,
                 slots: int | None = None, maxmem: int | str | None = None,
                 machine: str = "pc", phys_bits: int = DEFAULT_PHYS_BITS,
                 cpu_vendor: str = CPU_VENDOR_AMD,
                 max_ram_below_4g: int = 0, acpi: bool = True,
                 memory_hotplug_support: bool = True,
                 objects: Iterable[dict[str, Any]] = (),
                 devices: Iterable[dict[str, Any]] = (),
                 plugins: Iterable[object] = (), autoload: bool | None = None,
                 object_source: qom.Input = qom.JSON,
                 chardevs: Mapping[str, str] | None = None,
                 globals: Iterable[tuple[str, str, str]] = ()) -> None:
        if isinstance(memory, MemoryConfig):
            config = memory
        else:
            config = memory_config(memory, slots=slots, maxmem=maxmem)
        self._start(plugins, autoload)
        try:
            for chardev_id, spec in (chardevs or {}).items():
                self.chardevs.open(parse_legacy_chardev(chardev_id, spec))
            self.tree.globals.extend(globals)
            for arguments in objects:
                qom.object_add(self.tree, arguments, object_source)
            self.create_machine(config, machine=machine, phys_bits=phys_bits,
                                cpu_vendor=cpu_vendor,
                                max_ram_below_4g=max_ram_below_4g, acpi=acpi,
                                memory_hotplug_support=memory_hotplug_support)
            for options in devices:
                qom.device_add(self.tree, qom.qemu_opts_from_qdict(options))
            self.machine_ready()
        except BaseException:
            self.close()
            raise

    def _start(self, plugins: Iterable[object], autoload: bool | None) -> None:
        #: the chardevs devices write to (``-chardev``, ``-debugcon``)
        self.chardevs = HostChardevs()
        self._events = _EventWatch()
        self.pm: pluggy.PluginManager = make_plugin_manager(
            autoload=autoload, plugins=[*plugins, self.chardevs, self._events])
        self.tree: qom.ObjectTree = make_tree(self.pm, make_registry(self.pm))
        # objects made before the machine (rng-egd) find the chardevs on the root
        services_of(self.tree.root).provide(CHARDEVS, self.chardevs, provider=CHARDEVS_PROVIDER)
        #: QEMU's run state, the one the monitors report and change:
        #: ``prelaunch`` until the machine is ready, then ``running`` (or still
        #: ``prelaunch`` with ``-S``), ``paused`` after ``stop``
        self.status = "prelaunch"
        #: QEMU's ShutdownCause given to ``qom_machine_shutdown`` by :meth:`close`:
        #: ``host-qmp-quit`` unless the monitors or the command say otherwise
        #: (``host-signal``, ``host-error``)
        self.shutdown_reason = "host-qmp-quit"
        #: ``-machine none``: :attr:`machine` is a :class:`NoneMachine`
        self.empty_machine = False
        #: ``migrate-set-capabilities`` (pyqom honours ``events`` only)
        self.migration_capabilities: dict[str, bool] = {}
        #: ``-uuid`` (``query-uuid``)
        self.uuid = "00000000-0000-0000-0000-000000000000"

    @classmethod
    def empty(cls, *, plugins: Iterable[object] = (), autoload: bool | None = None) -> VM:
        """A VM with its plugins and tree but no machine yet, for callers that follow
        QEMU's start-up step by step (the command line): add ``-object`` backends,
        then :meth:`create_machine`, cold-plug devices, then :meth:`machine_ready`."""
        vm = cls.__new__(cls)
        vm._start(plugins, autoload)
        return vm

    def create_machine(self, config: MemoryConfig, **options: Any) -> PcMachine:
        """Board init of the pc machine (see ``devices.machine.create_pc_machine``)."""
        self.machine: PcMachine = create_pc_machine(self.tree, config, hook=self.pm.hook,
                                                    **options)
        return self.machine

    def create_none_machine(self, config: MemoryConfig) -> NoneMachine:
        """``-machine none``: ``/machine`` with no RAM, CPU or devices (what
        libvirt starts to probe an emulator)."""
        machine = create_none_machine(self.tree, ram_size=config.ram_size)
        self.machine = machine  # type: ignore[assignment]  # the monitors' view of it only
        self.empty_machine = True
        return machine

    def machine_ready(self, *, paused: bool = False) -> None:
        """Cold plug is over: devices added from now on are hot-plugged."""
        self.status = "prelaunch" if paused else "running"
        if self.empty_machine:
            self.tree.machine_ready = True
            return
        machine_ready(self.tree, self.machine)

    @classmethod
    def from_args(cls, args: Sequence[str], *, warn: Callable[[str], None] | None = None,
                  plugins: Iterable[object] = (), autoload: bool | None = None) -> VM:
        """A VM from QEMU command-line options, processed as ``pyqom`` processes them
        (``pyqom.command_line``): ``-m``, ``-machine``, ``-cpu``, ``-object``,
        ``-device``, ``-no-acpi``, ``-global PIIX4_PM.memory-hotplug-support``...

        :param warn: receives each warning as QEMU prints it after its program
            name (``-m 0x400M: warning: Using ...`` or ``warning: ...``).
        :raises StartupError: a :class:`qom.QomError`; ``str()`` is QEMU's
            message, ``location`` the option text QEMU prints before it.
        """
        vm = cls.empty(plugins=plugins, autoload=autoload)
        try:
            line = parse_command_line(args, warn or (lambda text: None), vm.tree.registry)
            start(vm, line, warn or (lambda text: None))
        except BaseException:
            vm.close()
            raise
        return vm

    # -- objects and devices ---------------------------------------------

    def object_add(self, qom_type: str, id: str, **props: Any) -> qom.Object:
        """``object-add`` with QMP-typed values; property names may use ``_`` for ``-``."""
        arguments = {"qom-type": qom_type, "id": id,
                     **{name.replace("_", "-"): value for name, value in props.items()}}
        return qom.object_add(self.tree, arguments)

    def object_del(self, id: str) -> None:
        """``object-del``."""
        qom.object_del(self.tree, id)

    def device_add(self, driver: str, id: str | None = None, **props: Any) -> qom.Device:
        """``device_add``; values may be Python values or ``-device`` strings."""
        options: dict[str, Any] = {"driver": driver}
        if id is not None:
            options["id"] = id
        options.update({name.replace("_", "-"): value for name, value in props.items()})
        return qom.device_add(self.tree, qom.qemu_opts_from_qdict(options))

    def device_del(self, id: str) -> Future[dict[str, Any]]:
        """``device_del`` of an id or a QOM path: asks the guest to release the
        device (QEMU 7.2 semantics).

        :returns: a :class:`concurrent.futures.Future` (a pyqom addition) that
            completes with ``DEVICE_DELETED``'s data once the guest has ejected
            the device, or fails with :class:`qom.QomError` if the guest refused
            (its ``_OST`` failure status); wait with ``.result(timeout)``, or
            ``await asyncio.wrap_future(...)`` in asyncio code.
        :raises qom.QomError: QEMU's refusal of the request itself.
        """
        device = DeviceRef.of(qom.find_device(self.tree, id))
        return self._watch(lambda name, data: removal_outcome(device, name, data),
                           lambda: qom.device_del(self.tree, id))

    def onlined(self, id: str) -> Future[dict[str, Any]]:
        """A future (a pyqom addition) that completes with the ``_OST`` info once
        the guest reports it onlined DIMM ``id`` (at once if it did already), or
        fails with :class:`qom.QomError` on the guest's failure status."""
        device = DeviceRef.of(qom.find_device(self.tree, id))
        return self._watch(lambda name, data: online_outcome(device, name, data), lambda: None,
                           replay=True)

    def _watch(self, settles: Callable[[str, dict[str, Any]], Outcome | None],
               start: Callable[[], object], *, replay: bool = False) -> Future[dict[str, Any]]:
        from concurrent.futures import Future

        future: Future[dict[str, Any]] = Future()

        def settle(outcome: Outcome) -> None:
            if future.done():
                return
            if outcome.ok:
                future.set_result(dict(outcome.data or {}))
            else:
                future.set_exception(qom.QomError(outcome.message))

        self._events.watch(settles, settle, replay=replay)
        try:
            start()
        except BaseException:
            self._events.forget(settles)
            raise
        return future

    # -- plans (pyqom additions) ------------------------------------------

    def plan_plug(self, *requests: Mapping[str, Any]) -> dict[str, Any]:
        """What ``object-add`` / ``device_add`` requests would do, without doing them
        (``x-plan-plug``; see :mod:`devices.plan`): each request is
        ``{"execute": "object-add" | "device_add", "arguments": {...}}``, values
        as for QMP.  The machine is left exactly as it was.

        :returns: ``fits``; the planned ``objects`` and ``devices`` (slot,
            address, size, alignment, padding); on a refusal ``failed`` (the
            request's index) and ``error`` (``class``, ``desc``: what the real
            command would answer); ``slots-left``, ``maxmem-left``,
            ``highest-address`` and ``phys-bits-limit``.
        """
        from devices.plan import plan_plug, requests_from_qmp  # only for plans

        with self.tree.lock:
            return plan_plug(self.tree, requests_from_qmp(list(requests)))

    def memory_capacity(self, alignments: Sequence[int] | None = None) -> dict[str, Any]:
        """``x-query-memory-capacity``: free slots and ``maxmem``, the device-memory
        region's free ranges and fragmentation, and per alignment (default 4 KiB,
        2 MiB and 1 GiB) the largest DIMM that fits now (see
        :func:`devices.plan.memory_capacity`)."""
        from devices.plan import DEFAULT_ALIGNMENTS, memory_capacity

        with self.tree.lock:
            return memory_capacity(self.machine, DEFAULT_ALIGNMENTS if alignments is None
                                   else alignments)

    @staticmethod
    def plan_startup(memory: str | int | MemoryConfig | None = None, *,
                     slots: int | None = None, maxmem: int | str | None = None,
                     machine: str = "pc", phys_bits: int = DEFAULT_PHYS_BITS,
                     cpu_vendor: str = CPU_VENDOR_AMD,
                     max_ram_below_4g: int = 0) -> StartupPlan:
        """Whether ``VM(memory, slots=..., maxmem=..., ...)`` would get past board
        init, and if not the largest ``maxmem`` that would, without building it
        (``pyqom -x-check-config``; see :func:`pyqom.check_config.plan_startup`)."""
        from pyqom.check_config import plan_startup

        return plan_startup(memory, slots=slots, maxmem=maxmem, machine=machine,
                            phys_bits=phys_bits, cpu_vendor=cpu_vendor,
                            max_ram_below_4g=max_ram_below_4g)

    # -- queries ---------------------------------------------------------

    def query_memory_devices(self) -> list[dict[str, Any]]:
        """``query-memory-devices``: realized memory devices by address."""
        return self.machine.query_memory_devices()

    def query_memdev(self) -> list[dict[str, Any]]:
        """``query-memdev``: every backend, ``pc.ram`` included."""
        return query_memdev(self.tree)

    def query_memory_size_summary(self) -> dict[str, int]:
        """``query-memory-size-summary``."""
        return self.machine.memory_size_summary()

    def qom_get(self, path: str, prop: str) -> Any:
        return qom.qom_get(self.tree, path, prop)

    def qom_set(self, path: str, prop: str, value: Any) -> None:
        qom.qom_set(self.tree, path, prop, value)

    # -- the guest -------------------------------------------------------

    @property
    def address_space(self) -> GuestMemory:
        """The guest's physical address space (the ``guest-memory`` service: a
        Unicorn engine over the backends' memory).

        :raises plugins.services.ServiceUnavailableError: its plugin is disabled.
        """
        return services_of(self.machine).get(GUEST_MEMORY)

    @property
    def cpu(self) -> GuestCpu:
        """The guest's CPU (the ``guest-cpu`` service)."""
        return services_of(self.machine).get(GUEST_CPU)

    def read(self, gpa: int, size: int) -> bytes:
        """Read guest-physical memory; unmapped addresses raise ``GuestFault``."""
        return self.address_space.read(gpa, size)

    def write(self, gpa: int, data: bytes) -> None:
        """Write guest-physical memory (it lands in the backend behind that address)."""
        self.address_space.write(gpa, data)

    def run(self, code: bytes, *, load_at: int = 0x1000, **options: Any) -> Any:
        """Run flat x86-64 ``code`` from ``load_at`` until ``HLT``; returns the
        engine's ``RunResult`` (why it stopped, the registers)."""
        return self.cpu.run(code, load_at=load_at, **options)

    # -- lifetime --------------------------------------------------------

    def close(self) -> None:
        """Shut down: plugins release what they hold, then every object is finalized."""
        machine = getattr(self, "machine", None)
        if machine is not None and not machine.finalized and not self.empty_machine:
            shutdown_machine(machine, self.shutdown_reason)
        self._teardown()

    def _teardown(self) -> None:
        tree = getattr(self, "tree", None)
        if tree is not None and not tree.root.finalized:
            tree.root.finalize()
        chardevs = getattr(self, "chardevs", None)
        if chardevs is not None:
            chardevs.close()

    def __enter__(self) -> VM:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class _EventWatch:
    """The VM's own ``qom_event`` listener: what :meth:`VM.device_del` and
    :meth:`VM.onlined` wait for.  Events come on whichever thread raised them
    (a guest's eject on the CPU thread); futures are thread-safe."""

    __name__ = "pyqom.vm.events"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watches: list[tuple[Callable[[str, dict[str, Any]], Outcome | None],
                                  Callable[[Outcome], None]]] = []
        self._recent: list[tuple[str, dict[str, Any]]] = []   # for onlined()

    def watch(self, settles: Callable[[str, dict[str, Any]], Outcome | None],
              settle: Callable[[Outcome], None], *, replay: bool) -> None:
        with self._lock:
            if replay:
                for name, data in self._recent:
                    outcome = settles(name, data)
                    if outcome is not None:
                        settle(outcome)
                        return
            self._watches.append((settles, settle))

    def forget(self, settles: Callable[[str, dict[str, Any]], Outcome | None]) -> None:
        with self._lock:
            self._watches = [entry for entry in self._watches if entry[0] is not settles]

    @hookimpl
    def qom_event(self, tree: qom.ObjectTree, name: str, data: dict[str, Any]) -> None:
        """Settle the watches this event settles."""
        settled = []
        with self._lock:
            if name == "ACPI_DEVICE_OST":
                self._recent = [*self._recent[-63:], (name, data)]
            elif name == "DEVICE_DELETED":   # an id may come back: forget its _OSTs
                gone = data.get("device")
                self._recent = [(n, d) for n, d in self._recent
                                if d.get("info", {}).get("device") != gone]
            for entry in list(self._watches):
                outcome = entry[0](name, data)
                if outcome is not None:
                    self._watches.remove(entry)
                    settled.append((entry[1], outcome))
        for settle, outcome in settled:
            settle(outcome)


def _warning(warn: Callable[[str], None], location: str) -> Callable[[str], None]:
    """``warn`` given QEMU's line: the ``-option text: `` location, ``warning: ``, the message."""
    return lambda message: warn(f"{location}warning: {message}")
