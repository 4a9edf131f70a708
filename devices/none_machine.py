"""QEMU's ``none`` machine: no RAM, no CPU, no devices (``-machine none``).

libvirt starts its emulator with ``-machine none`` to ask what it can do over
QMP before any guest exists.  The machine is ``/machine``, of type
``none-machine``; with nothing on it, the monitor's views of memory and CPUs
answer as QEMU 7.2's do there: no memory devices, no CPUs, and no CPU
hot-plug (``query-hotpluggable-cpus`` fails).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import attrs

from devices.numa import NumaState
from plugins import hookimpl
from qom import Object, ObjectClass, QomError, TypeInfo, TypeRegistry
from qom.device import SLOT_GET_HOTPLUG_HANDLER

if TYPE_CHECKING:
    from qom import ObjectTree

TYPE_NONE_MACHINE: Final = "none-machine"


@attrs.define(eq=False, repr=False)
class NoneMachine(Object):
    """The ``none`` machine: nothing to show but itself."""

    #: a machine's CPUs and their slots, as the pc machine has them: none here
    cpus: list[Any] = attrs.field(factory=list)
    cpu_slots: list[Any] = attrs.field(factory=list)
    cpu_type: str = ""
    #: no NUMA nodes (``info numa`` says ``0 nodes``)
    numa: NumaState = attrs.field(factory=NumaState)

    def query_memory_devices(self) -> list[dict[str, Any]]:
        """No memory devices can be plugged: QEMU answers ``[]``."""
        return []

    def memory_size_summary(self) -> dict[str, int]:
        """``query-memory-size-summary``: no RAM, nothing plugged."""
        return {"base-memory": 0, "plugged-memory": 0}


def _no_hotplug_handler(machine: Object, device: Any) -> None:
    """Nothing can be plugged: QEMU's "can not be hotplugged on this machine"."""
    return None


def _none_machine_class_init(klass: ObjectClass, data: Any) -> None:
    klass.slots[SLOT_GET_HOTPLUG_HANDLER] = _no_hotplug_handler


@hookimpl
def qom_register_types(registry: TypeRegistry) -> None:
    """``none-machine`` under ``machine`` (registered by :mod:`devices.machine`)."""
    registry.register(TypeInfo(name=TYPE_NONE_MACHINE, parent="machine", impl=NoneMachine,
                               class_init=_none_machine_class_init))


def create_none_machine(tree: ObjectTree, *, ram_size: int) -> NoneMachine:
    """``/machine`` as ``-machine none`` makes it.

    :param ram_size: ``-m``'s size; pyqom's ``none`` machine has no RAM, so
        only 0 (no ``-m``) is true of it.
    :raises QomError: a RAM size was asked for.
    """
    if ram_size:
        raise QomError("pyqom's none machine has no RAM: leave out -m")
    machine = tree.new(TYPE_NONE_MACHINE)
    assert isinstance(machine, NoneMachine)
    tree.attach_machine(machine)
    return machine


def hotpluggable_cpus_refused() -> QomError:
    """QEMU's error for ``query-hotpluggable-cpus`` on a machine without CPU slots."""
    return QomError("machine does not support hot-plugging CPUs")
