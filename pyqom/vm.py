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

from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

import pluggy

import qom
from backends.base import query_memdev
from devices.machine import (
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
from plugins.services import GUEST_CPU, GUEST_MEMORY, GuestCpu, GuestMemory, services_of
from pyqom.chardevs import HostChardevs, parse_legacy_chardev
from pyqom.command_line import parse_command_line, start
from pyqom.manager import make_plugin_manager, make_registry, make_tree


class VM:
    """A pc machine, its objects and devices, and its guest memory.

    :param memory: ``-m`` text (``"1G,slots=3,maxmem=4G"``; a bare number is
        MiB, as in QEMU), bytes as an int (``1 << 30``), or a :class:`MemoryConfig`.
    :param slots: hotplug slots (``-m ...,slots=``).
    :param maxmem: maximum memory (``-m ...,maxmem=``), bytes as an int or a size string.
    :raises ValueError: ``slots`` or ``maxmem`` given in ``memory`` and as a keyword.
    :param machine: ``-machine`` type name.
    :param phys_bits: the CPU's physical address bits.
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
        self.pm: pluggy.PluginManager = make_plugin_manager(
            autoload=autoload, plugins=[*plugins, self.chardevs])
        self.tree: qom.ObjectTree = make_tree(self.pm, make_registry(self.pm))
        #: QEMU's run state, the one the monitors report and change:
        #: ``prelaunch`` until the machine is ready, then ``running`` (or still
        #: ``prelaunch`` with ``-S``), ``paused`` after ``stop``
        self.status = "prelaunch"
        #: QEMU's ShutdownCause given to ``qom_machine_shutdown`` by :meth:`close`:
        #: ``host-qmp-quit`` unless the monitors or the command say otherwise
        #: (``host-signal``, ``host-error``)
        self.shutdown_reason = "host-qmp-quit"

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

    def machine_ready(self, *, paused: bool = False) -> None:
        """Cold plug is over: devices added from now on are hot-plugged."""
        self.status = "prelaunch" if paused else "running"
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

    def device_del(self, id: str) -> None:
        """``device_del``: asks the guest to release the device (QEMU 7.2 semantics)."""
        qom.device_del(self.tree, id)

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
        if machine is not None and not machine.finalized:
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


def _warning(warn: Callable[[str], None], location: str) -> Callable[[str], None]:
    """``warn`` given QEMU's line: the ``-option text: `` location, ``warning: ``, the message."""
    return lambda message: warn(f"{location}warning: {message}")
