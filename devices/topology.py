"""The CPU topology of the pc machine: ``-smp`` and the possible CPUs.

:func:`parse_smp` does what QEMU 7.2's ``machine_parse_smp_config`` does for
a machine with dies and without clusters (x86): the missing values are
computed (cores before sockets since machine 6.2, sockets before cores
earlier), then the topology is checked, with QEMU's messages.

:func:`possible_cpus` lists every CPU the machine can have (``maxcpus``), in
CPU-index order, with its APIC id and its socket, die, core and thread, as
``x86_possible_cpu_arch_ids`` does: the APIC id packs the ids in fields as
wide as the counts need (``apicid_bitwidth_for_count``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs

from qom import QomError
from qom.numbers import NumberFormatError, parse_i64
from qom.reprs import FieldsRepr, FieldsValue

#: ``-smp`` keys of ``SMPConfiguration``, in the order QEMU's property shows them
SMP_KEYS: Final = ("cpus", "sockets", "dies", "clusters", "cores", "threads", "maxcpus")
#: the CPU type of ``-cpu qemu64`` (the only model pyqom's topology needs)
CPU_TYPE_QEMU64: Final = "qemu64-x86_64-cpu"

Warn = Callable[[str], None]


@attrs.frozen(repr=False, eq=False)
class SmpConfig(FieldsValue):
    """The topology after ``machine_parse_smp_config``."""

    cpus: int = 1
    sockets: int = 1
    dies: int = 1
    clusters: int = 1
    cores: int = 1
    threads: int = 1
    max_cpus: int = 1

    def as_qom(self) -> dict[str, int]:
        """The machine's ``smp`` property as ``qom-get`` shows it (QEMU's key order)."""
        return {"cpus": self.cpus, "maxcpus": self.max_cpus, "threads": self.threads,
                "cores": self.cores, "dies": self.dies, "sockets": self.sockets,
                "clusters": self.clusters}

    def hierarchy(self) -> str:
        """``sockets (2) * dies (1) * cores (2) * threads (1)`` (x86 has dies, no clusters)."""
        return (f"sockets ({self.sockets}) * dies ({self.dies}) * cores ({self.cores}) * "
                f"threads ({self.threads})")


def _c_integer(name: str, text: str) -> int:
    """A keyval integer as ``qemu_strtoi64`` reads it (base 0: ``0x``, leading-0 octal)."""
    try:
        return parse_i64(text)
    except NumberFormatError:
        raise QomError(f"Parameter 'smp.{name}' expects integer") from None


def smp_options(merged: Mapping[str, str]) -> dict[str, int]:
    """The merged ``-smp`` keys as integers; QEMU's visitor errors (checked when the
    machine's ``smp`` property is set, so without the option's text)."""
    values: dict[str, int] = {}
    for name, text in merged.items():
        if name not in SMP_KEYS:
            raise QomError(f"Parameter 'smp.{name}' is unexpected")
        values[name] = _c_integer(name, text)
    return values


def parse_smp(given: Mapping[str, int], *, prefer_sockets: bool, machine_name: str,
              max_cpus_supported: int, warn: Warn, min_cpus: int = 1) -> SmpConfig:
    """``machine_parse_smp_config`` for x86 (dies supported, clusters not).

    :param given: the keys the user gave (``smp_options``); absent keys are 0.
    :param prefer_sockets: machines before 6.2 fill sockets before cores.
    :raises QomError: QEMU's topology errors.
    """
    if any(value == 0 for value in given.values()):
        warn("Deprecated CPU topology (considered invalid): "
             "CPU topology parameters must be greater than zero")
    # QEMU takes the int64 members into C unsigned ints (so -1 is 2^32-1)
    u32 = {name: value & 0xFFFFFFFF for name, value in given.items()}
    cpus, sockets, dies = u32.get("cpus", 0), u32.get("sockets", 0), u32.get("dies", 0)
    clusters, cores = u32.get("clusters", 0), u32.get("cores", 0)
    threads, maxcpus = u32.get("threads", 0), u32.get("maxcpus", 0)
    if clusters > 1:
        raise QomError("clusters not supported by this machine's CPU topology")
    dies = dies if dies > 0 else 1
    clusters = 1
    if cpus == 0 and maxcpus == 0:
        sockets, cores, threads = sockets or 1, cores or 1, threads or 1
    else:
        maxcpus = maxcpus or cpus
        if prefer_sockets:
            if sockets == 0:
                cores, threads = cores or 1, threads or 1
                sockets = maxcpus // (dies * clusters * cores * threads)
            elif cores == 0:
                threads = threads or 1
                cores = maxcpus // (sockets * dies * clusters * threads)
        elif cores == 0:
            sockets, threads = sockets or 1, threads or 1
            cores = maxcpus // (sockets * dies * clusters * threads)
        elif sockets == 0:
            threads = threads or 1
            sockets = maxcpus // (dies * clusters * cores * threads)
        if threads == 0:
            threads = maxcpus // (sockets * dies * clusters * cores)
    maxcpus = maxcpus or sockets * dies * clusters * cores * threads
    cpus = cpus or maxcpus
    smp = SmpConfig(cpus, sockets, dies, clusters, cores, threads, maxcpus)
    if sockets * dies * clusters * cores * threads != maxcpus:
        raise QomError("Invalid CPU topology: product of the hierarchy must match maxcpus: "
                       f"{smp.hierarchy()} != maxcpus ({maxcpus})")
    if maxcpus < cpus:
        raise QomError("Invalid CPU topology: maxcpus must be equal to or greater than smp: "
                       f"{smp.hierarchy()} == maxcpus ({maxcpus}) < smp_cpus ({cpus})")
    if cpus < min_cpus:
        raise QomError(f"Invalid SMP CPUs {_as_int(cpus)}. The min CPUs supported by machine "
                       f"'{machine_name}' is {min_cpus}")
    if maxcpus > max_cpus_supported:
        raise QomError(f"Invalid SMP CPUs {_as_int(maxcpus)}. The max CPUs supported by "
                       f"machine '{machine_name}' is {max_cpus_supported}")
    return smp


def _as_int(value: int) -> int:
    """An unsigned int as QEMU's ``%d`` prints it."""
    return value - (1 << 32) if value >= 1 << 31 else value


def _bit_width(count: int) -> int:
    """``apicid_bitwidth_for_count``: bits to number ``count`` ids."""
    return (count - 1).bit_length() if count > 1 else 0


@attrs.define(repr=False, eq=False)
class CpuSlot(FieldsRepr):
    """One possible CPU (QEMU's ``CPUArchId``): fixed ids, and the node it is on.

    ``node_id`` is ``None`` until ``-numa`` or the default mapping gives it one.
    """

    index: int
    apic_id: int
    socket_id: int
    die_id: int
    core_id: int
    thread_id: int
    #: the die id is a property only when the machine has more than one die
    has_die_id: bool = False
    node_id: int | None = None

    def props(self) -> dict[str, Any]:
        """``CpuInstanceProperties`` as QMP shows them (``query-hotpluggable-cpus``)."""
        props: dict[str, Any] = {"core-id": self.core_id, "thread-id": self.thread_id}
        if self.node_id is not None:
            props["node-id"] = self.node_id
        if self.has_die_id:
            props["die-id"] = self.die_id
        props["socket-id"] = self.socket_id
        return props

    def describe(self) -> str:
        """``cpu_slot_to_string``: ``socket-id: 0, core-id: 2, thread-id: 0``."""
        parts = [f"socket-id: {self.socket_id}"]
        if self.has_die_id:
            parts.append(f"die-id: {self.die_id}")
        parts += [f"core-id: {self.core_id}", f"thread-id: {self.thread_id}"]
        return ", ".join(parts)


def possible_cpus(smp: SmpConfig) -> list[CpuSlot]:
    """Every possible CPU in index order (``x86_possible_cpu_arch_ids``)."""
    smt_width, core_width = _bit_width(smp.threads), _bit_width(smp.cores)
    die_width = _bit_width(smp.dies)
    core_offset = smt_width
    die_offset = core_offset + core_width
    pkg_offset = die_offset + die_width
    slots: list[CpuSlot] = []
    for index in range(smp.max_cpus):
        socket = index // (smp.dies * smp.cores * smp.threads)
        die = index // (smp.cores * smp.threads) % smp.dies
        core = index // smp.threads % smp.cores
        thread = index % smp.threads
        apic_id = (socket << pkg_offset) | (die << die_offset) | (core << core_offset) | thread
        slots.append(CpuSlot(index, apic_id, socket, die, core, thread,
                             has_die_id=smp.dies > 1))
    return slots


def apic_id_limit(slots: list[CpuSlot]) -> int:
    """One more than the highest APIC id (QEMU's ``apic_id_limit``)."""
    return slots[-1].apic_id + 1 if slots else 0
