"""The pc machine's CPUs as QOM objects, and the monitor's views of them.

QEMU puts each present CPU (``-smp cpus``) in ``/machine/unattached`` as a
``qemu64-x86_64-cpu``: CPU 0 is ``device[0]``, and since QEMU's
``kvmvapic`` device takes ``device[1]`` right after it, CPU ``n > 0`` is
``device[n + 1]``.  pyqom makes the same objects at the same paths (it has
no ``kvmvapic``, so ``device[1]`` stays free), with the topology properties
``query-hotpluggable-cpus`` and ``qom-get`` show.  Only CPU 0 runs guest code
(the guest's other CPUs would wait for a startup IPI pyqom does not deliver);
possible CPUs beyond ``cpus`` have no object, as in QEMU.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import attrs

from devices.topology import CPU_TYPE_QEMU64, CpuSlot
from plugins import hookimpl
from qom import TYPE_OBJECT, Object, ObjectClass, Property, TypeInfo, TypeRegistry

if TYPE_CHECKING:
    from devices.machine import PcMachine
    from qom import ObjectTree

TYPE_CPU: Final = "cpu"
TYPE_X86_64_CPU: Final = "x86_64-cpu"
TYPE_MAX_CPU: Final = "max-x86_64-cpu"
#: QMP's ``target`` of every CPU
TARGET: Final = "x86_64"


@attrs.define(eq=False, repr=False)
class X86Cpu(Object):
    """One present CPU: its slot (ids, node) and the host thread that runs it."""

    slot: CpuSlot | None = None
    #: the host thread id ``query-cpus-fast`` reports: QEMU's is the vCPU's own
    #: thread; pyqom's is the thread that made the CPU (its CPU thread runs
    #: CPU 0's code)
    thread_id: int = 0


def _slot_property(name: str, read: Any) -> Property:
    def get(obj: Object) -> Any:
        assert isinstance(obj, X86Cpu) and obj.slot is not None
        return read(obj.slot)
    return Property(name=name, type="int32" if name.endswith("-id") else "uint32", getter=get)


def _cpu_class_init(klass: ObjectClass, data: Any) -> None:
    klass.add_property(_slot_property("apic-id", lambda slot: slot.apic_id))
    klass.add_property(_slot_property("node-id", lambda slot: (
        -1 if slot.node_id is None else slot.node_id)))
    klass.add_property(_slot_property("socket-id", lambda slot: slot.socket_id))
    klass.add_property(_slot_property("die-id", lambda slot: slot.die_id))
    klass.add_property(_slot_property("core-id", lambda slot: slot.core_id))
    klass.add_property(_slot_property("thread-id", lambda slot: slot.thread_id))


@hookimpl
def qom_register_types(registry: TypeRegistry) -> None:
    """``cpu`` > ``x86_64-cpu`` > the two models ``-cpu`` takes."""
    registry.register(TypeInfo(name=TYPE_CPU, parent=TYPE_OBJECT, abstract=True))
    registry.register(TypeInfo(name=TYPE_X86_64_CPU, parent=TYPE_CPU, abstract=True,
                               impl=X86Cpu, class_init=_cpu_class_init))
    registry.register(TypeInfo(name=CPU_TYPE_QEMU64, parent=TYPE_X86_64_CPU))
    registry.register(TypeInfo(name=TYPE_MAX_CPU, parent=TYPE_X86_64_CPU))


def create_cpus(tree: ObjectTree, pc: PcMachine, cpu_type: str = CPU_TYPE_QEMU64,
                warn: Callable[[str], None] | None = None, *, amd: bool = True) -> None:
    """The present CPUs in ``/machine/unattached`` at QEMU's paths.

    ``qemu64`` is an AMD model (``amd``: its vendor was not changed) without
    ``topoext``: with threads, QEMU warns once as the first CPU is realized
    (``warn`` gets the text after the program name).
    """
    if (warn is not None and amd and cpu_type == CPU_TYPE_QEMU64 and pc.smp.threads > 1
            and pc.smp.cpus):
        warn(f"warning: This family of AMD CPU doesn't support hyperthreading"
             f"({pc.smp.threads})\nPlease configure -smp options properly or try enabling "
             "topoext feature.")
    container = tree.container("/machine/unattached")
    for slot in pc.cpu_slots[:pc.smp.cpus]:
        cpu = tree.new(cpu_type)
        assert isinstance(cpu, X86Cpu)
        cpu.slot = slot
        cpu.thread_id = threading.get_native_id()
        index = tree.unattached_count
        container.add_child(f"device[{index}]", cpu)
        # QEMU's kvmvapic takes the name after CPU 0
        tree.unattached_count = index + (2 if slot.index == 0 else 1)
        pc.cpus.append(cpu)


def query_cpus_fast(pc: PcMachine) -> list[dict[str, Any]]:
    """``query-cpus-fast``: each present CPU, by index."""
    return [{"thread-id": cpu.thread_id, "props": cpu.slot.props(),
             "qom-path": cpu.canonical_path, "cpu-index": cpu.slot.index, "target": TARGET}
            for cpu in pc.cpus if cpu.slot is not None]


def query_hotpluggable_cpus(pc: PcMachine, cpu_type: str = CPU_TYPE_QEMU64
                            ) -> list[dict[str, Any]]:
    """``query-hotpluggable-cpus``: every possible CPU, last first (QEMU's order);
    a present one names its object."""
    paths = {cpu.slot.index: cpu.canonical_path for cpu in pc.cpus if cpu.slot is not None}
    entries: list[dict[str, Any]] = []
    for slot in reversed(pc.cpu_slots):
        entry: dict[str, Any] = {"props": slot.props(), "vcpus-count": 1, "type": cpu_type}
        if slot.index in paths:
            entry["qom-path"] = paths[slot.index]
        entries.append(entry)
    return entries
