"""The pc's two 8259A interrupt controllers (QEMU's ``isa-i8259``, cascaded on
IRQ 2) and the PIIX edge/level control registers (ELCR, ports 0x4d0/0x4d1).

What a guest programs and reads, as QEMU models it: the initialisation words
(ICW1-ICW4: vector base, auto-EOI), the interrupt mask (OCW1), end of
interrupt (OCW2: non-specific and specific), the IRR/ISR read select (OCW3),
fixed priority (IRQ 0 highest), edge or level triggering per line (ELCR),
and the CPU's acknowledge (the vector; the line goes in service).  Not
modelled: rotation, special mask mode, poll mode, special fully nested mode.

The state starts as SeaBIOS leaves it on QEMU 7.2 (``info pic`` there):
vector bases 0x08 and 0x70, masks 0xb8 and 0x8e, IRQ 10 and 11 level.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from plugins import hookimpl
from plugins.services import GUEST_CPU, INTERRUPTS, PORT_IO, Services, services_of
from qom import Object, StashKey

PLUGIN_NAME = "devices.i8259"
_PICS: StashKey[PicPair] = StashKey("i8259")

MASTER_BASE_PORT: Final = 0x20
SLAVE_BASE_PORT: Final = 0xA0
ELCR_PORT: Final = 0x4D0
CASCADE_IRQ: Final = 2


class Pic:
    """One 8259A."""

    def __init__(self, irq_base: int, imr: int, elcr: int, elcr_mask: int) -> None:
        self.irr = 0
        self.imr = imr
        self.isr = 0
        self.irq_base = irq_base
        self.elcr = elcr
        self.elcr_mask = elcr_mask
        self.auto_eoi = False
        self.read_isr = False
        self.init_state = 0      # 0: running; 1-3: ICW2-ICW4 expected
        self.needs_icw4 = False
        self.levels = 0          # the input lines as they are now

    def set_line(self, line: int, level: bool) -> None:
        bit = 1 << line
        if self.elcr & bit:                   # level triggered: IRR follows the line
            if level:
                self.irr |= bit
            else:
                self.irr &= ~bit
        elif level and not self.levels & bit:  # edge triggered: a rising edge
            self.irr |= bit
        self.levels = (self.levels | bit) if level else (self.levels & ~bit)

    def _highest(self, mask: int) -> int | None:
        for line in range(8):
            if mask & (1 << line):
                return line
        return None

    def pending_line(self) -> int | None:
        """The line the chip would signal now: requested, unmasked, and above
        (in priority) every line in service."""
        line = self._highest(self.irr & ~self.imr)
        if line is None:
            return None
        in_service = self._highest(self.isr)
        if in_service is not None and in_service <= line:
            return None
        return line

    def acknowledge(self, line: int) -> None:
        bit = 1 << line
        if not self.auto_eoi:
            self.isr |= bit
        if not self.elcr & bit:
            self.irr &= ~bit

    def write_command(self, value: int) -> None:
        if value & 0x10:                      # ICW1
            self.imr = 0
            self.isr = 0
            self.irr = 0
            self.read_isr = False
            self.auto_eoi = False
            self.needs_icw4 = bool(value & 1)
            self.init_state = 1
        elif value & 0x08:                    # OCW3
            if value & 0x02:
                self.read_isr = bool(value & 0x01)
        else:                                 # OCW2
            command = value >> 5
            if command == 1:                  # non-specific EOI
                line = self._highest(self.isr)
                if line is not None:
                    self.isr &= ~(1 << line)
            elif command == 3:                # specific EOI
                self.isr &= ~(1 << (value & 7))

    def write_data(self, value: int) -> None:
        if self.init_state == 1:              # ICW2
            self.irq_base = value & 0xF8
            self.init_state = 2
        elif self.init_state == 2:            # ICW3
            self.init_state = 3 if self.needs_icw4 else 0
        elif self.init_state == 3:            # ICW4
            self.auto_eoi = bool(value & 0x02)
            self.init_state = 0
        else:                                 # OCW1
            self.imr = value

    def read_command(self) -> int:
        return self.isr if self.read_isr else self.irr


class PicPair:
    """The master and slave 8259 of a pc, with the CPU's side: :meth:`pending`
    and :meth:`acknowledge` (INTA), and a callback when the output may have risen.

    :param on_output: called whenever an interrupt may have become pending
        (the CPU looks then).
    """

    def __init__(self, on_output: Callable[[], None] | None = None) -> None:
        self.master = Pic(0x08, 0xB8, 0x00, 0xF8)
        self.slave = Pic(0x70, 0x8E, 0x0C, 0xDE)
        self.on_output = on_output

    def set_irq(self, irq: int, level: bool) -> None:
        """Input line ``irq`` (0-15) goes to ``level``."""
        if irq < 8:
            self.master.set_line(irq, level)
        else:
            self.slave.set_line(irq - 8, level)
        self._update()

    def _update(self) -> None:
        self.master.set_line(CASCADE_IRQ, self.slave.pending_line() is not None)
        if self.pending() and self.on_output is not None:
            self.on_output()

    def pending(self) -> bool:
        """Whether the master's INT output is up."""
        return self.master.pending_line() is not None

    def acknowledge(self) -> int | None:
        """The CPU's INTA: the vector of the highest pending interrupt (now in
        service), or ``None`` (a spurious one: nothing is pending any more)."""
        line = self.master.pending_line()
        if line is None:
            return None
        self.master.acknowledge(line)
        if line == CASCADE_IRQ:
            slave_line = self.slave.pending_line()
            if slave_line is None:
                vector = self.slave.irq_base + 7   # spurious on the slave
            else:
                self.slave.acknowledge(slave_line)
                vector = self.slave.irq_base + slave_line
            self.master.set_line(CASCADE_IRQ, self.slave.pending_line() is not None)
            return vector
        return self.master.irq_base + line

    # -- port I/O ----------------------------------------------------------------

    def port_handlers(self, chip: Pic) -> tuple[Callable[[int, int], int],
                                                Callable[[int, int, int], None]]:
        def read(offset: int, size: int) -> int:
            return chip.read_command() if offset == 0 else chip.imr

        def write(offset: int, size: int, value: int) -> None:
            if offset == 0:
                chip.write_command(value & 0xFF)
            else:
                chip.write_data(value & 0xFF)
            self._update()

        return read, write

    def elcr_handlers(self, which: int) -> tuple[Callable[[int, int], int],
                                                 Callable[[int, int, int], None]]:
        """The ELCR byte of the master (0) or the slave (1)."""
        chip = self.master if which == 0 else self.slave

        def read(offset: int, size: int) -> int:
            return chip.elcr

        def write(offset: int, size: int, value: int) -> None:
            chip.elcr = value & chip.elcr_mask
            self._update()

        return read, write


@hookimpl
def qom_machine_services(machine: Object, services: Services) -> None:
    """The interrupt lines of the machine: a pair of 8259s."""
    pics = PicPair()
    machine.stash[_PICS] = pics
    services.provide(INTERRUPTS, pics, provider=PLUGIN_NAME)


@hookimpl
def qom_machine_init(machine: Object) -> None:
    """Claim the 8259 and ELCR ports; connect the master's output to the CPU."""
    pics = machine.stash.get(_PICS)
    if pics is None:
        return
    services = services_of(machine)
    cpu = services.find(GUEST_CPU)
    if cpu is not None:
        cpu.set_interrupt_source(pics)
        pics.on_output = cpu.interrupt_raised
    ports = services.find(PORT_IO)
    if ports is not None:
        for base, chip, name in ((MASTER_BASE_PORT, pics.master, "pic"),
                                 (SLAVE_BASE_PORT, pics.slave, "pic")):
            read, write = pics.port_handlers(chip)
            ports.register_ports(base, 2, read, write, name)
        for offset in (0, 1):   # QEMU's two one-byte regions
            read, write = pics.elcr_handlers(offset)
            ports.register_ports(ELCR_PORT + offset, 1, read, write, "elcr")
