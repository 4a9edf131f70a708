"""``pyqom -x-check-config ...``: would this machine boot? (a pyqom addition, issue 14)

The start-up planner runs what QEMU 7.2 checks of ``-m``, ``-machine`` and
``-cpu`` before the machine exists: ``machine_set_mem``'s rules
(:func:`devices.memory_options.machine_set_mem`) and board init's
(:func:`devices.machine.check_board`: ``phys-bits``, the RAM split, the AMD
1 TiB hole, the slot count, ``maxmem``'s alignment and the device-memory
region against the address space), the same code start-up runs, on a
machine object that is never attached: no RAM is allocated, no plugin runs,
no ``-object`` or ``-device`` is created and no monitor is opened.

:func:`plan_startup` is the same for the Python API.

Exit status 0 and the layout on stdout when it boots; status 1 and QEMU's
error (the line QEMU prints after its program name), then the largest
``maxmem`` that would boot with the same RAM, slots and CPU, on stderr when
it does not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

import attrs

from devices.machine import (
    CPU_VENDOR_AMD,
    DEFAULT_PHYS_BITS,
    BoardPlan,
    check_board,
    largest_bootable_maxmem,
)
from devices.memory_options import (
    MemoryConfig,
    fix_up_memory_options,
    machine_set_mem,
    memory_config,
)
from qom import QomError
from qom.reprs import FieldsValue

if TYPE_CHECKING:
    from pyqom.command_line import CommandLine
    from pyqom.vm import VM

@attrs.frozen(repr=False, eq=False)
class StartupPlan(FieldsValue):
    """What :func:`plan_startup` found.

    :ivar config: the memory after ``machine_set_mem``.
    :ivar board: board init's layout, or its error (``board.error``).
    :ivar largest_maxmem: when it does not boot, the largest ``maxmem`` that
        would with the same RAM, slots and CPU (``None`` if none would, or
        when it boots).
    """

    config: MemoryConfig
    board: BoardPlan
    largest_maxmem: int | None = None

    @property
    def boots(self) -> bool:
        """Whether board init succeeds."""
        return self.board.boots


def plan_startup(memory: str | int | MemoryConfig | None = None, *, slots: int | None = None,
                 maxmem: int | str | None = None, machine: str = "pc",
                 phys_bits: int = DEFAULT_PHYS_BITS, cpu_vendor: str = CPU_VENDOR_AMD,
                 max_ram_below_4g: int = 0) -> StartupPlan:
    """The start-up planner for the Python API, with :class:`~pyqom.vm.VM`'s
    memory arguments: whether ``VM(memory, slots=..., maxmem=..., machine=...,
    phys_bits=..., cpu_vendor=...)`` would get past board init, without building it.

    :raises QomError: what QEMU says of the ``-m`` values themselves
        (``machine_set_mem``) or of an unknown machine.
    """
    from pyqom.vm import VM

    config = memory if isinstance(memory, MemoryConfig) else memory_config(
        memory, slots=slots, maxmem=maxmem)
    vm = VM.empty()
    try:
        board = check_board(vm.tree, config, machine=machine, phys_bits=phys_bits,
                            cpu_vendor=cpu_vendor, max_ram_below_4g=max_ram_below_4g)
        largest = None if board.boots else largest_bootable_maxmem(
            vm.tree, config, machine=machine, phys_bits=phys_bits, cpu_vendor=cpu_vendor,
            max_ram_below_4g=max_ram_below_4g)
    finally:
        vm.close()
    return StartupPlan(config=config, board=board, largest_maxmem=largest)


_UNITS = (("E", 60), ("P", 50), ("T", 40), ("G", 30), ("M", 20), ("K", 10))


def size_text(value: int) -> str:
    """``value`` in the largest unit that divides it (``751G``), as ``-m`` takes it."""
    for suffix, shift in _UNITS:
        if value and value % (1 << shift) == 0:
            return f"{value >> shift}{suffix}"
    return f"{value}B"


def layout_text(config: MemoryConfig, plan: BoardPlan) -> str:
    """What a configuration that boots gets, one fact a line."""
    lines = [f"boots: RAM {size_text(config.ram_size)}, slots {config.ram_slots}, "
             f"maxmem {size_text(config.maxram_size)}"]
    if plan.device_memory_size:
        lines.append(f"device memory: 0x{plan.device_memory_base:x}, "
                     f"size 0x{plan.device_memory_size:x}")
    if plan.above_4g_mem_start != 1 << 32:
        lines.append(f"RAM above 4 GiB starts at 0x{plan.above_4g_mem_start:x} "
                     "(the AMD HyperTransport hole)")
    lines.append(f"highest address used: 0x{plan.max_used_gpa:x} "
                 f"(phys-bits limit 0x{plan.phys_limit:x})")
    return "".join(f"{line}\n" for line in lines)


def check_config(vm: VM, line: CommandLine, warn: Callable[[str], None], out: TextIO,
                 err: TextIO) -> int:
    """Run the start-up planner for ``line``; returns the exit status (0 boots).

    :param warn: prints one ``pyqom: ...`` line on stderr (``err``).
    """
    try:
        config = machine_set_mem(fix_up_memory_options(
            line.memory, lambda message: warn(f"warning: {message}")))
        plan = check_board(vm.tree, config, machine=line.machine, phys_bits=line.phys_bits,
                           cpu_vendor=line.cpu_vendor, max_ram_below_4g=line.max_ram_below_4g)
        if plan.error is None:
            out.write(layout_text(config, plan))
            out.flush()
            return 0
        warn(str(plan.error))
        largest = largest_bootable_maxmem(vm.tree, config, machine=line.machine,
                                          phys_bits=line.phys_bits,
                                          cpu_vendor=line.cpu_vendor,
                                          max_ram_below_4g=line.max_ram_below_4g)
    except QomError as error:
        warn(str(error))
        if error.hint:
            err.write(error.hint.rstrip("\n") + "\n")
        return 1
    if largest is None:
        warn("no maxmem boots with this RAM, slots and CPU")
    else:
        warn(f"the largest maxmem that boots with this RAM, slots and CPU: "
             f"{size_text(largest)} (0x{largest:x})")
    return 1
