"""devices.i8259: the pc's cascaded 8259s as a guest programs them (QEMU's model)."""

from __future__ import annotations

from devices.i8259 import PicPair


def programmed(master_mask: int = 0xFB, slave_mask: int = 0xFD) -> PicPair:
    """What an OS does: ICW1-ICW4 on both, vectors 0x20/0x28, then the masks."""
    pics = PicPair()
    for base, vector, icw3 in ((0x20, 0x20, 0x04), (0xA0, 0x28, 0x02)):
        _, write = pics.port_handlers(pics.master if base == 0x20 else pics.slave)
        write(0, 1, 0x11)
        write(1, 1, vector)
        write(1, 1, icw3)
        write(1, 1, 0x01)
    pics.port_handlers(pics.master)[1](1, 1, master_mask)
    pics.port_handlers(pics.slave)[1](1, 1, slave_mask)
    return pics


def eoi(pics: PicPair) -> None:
    pics.port_handlers(pics.slave)[1](0, 1, 0x20)
    pics.port_handlers(pics.master)[1](0, 1, 0x20)


def test_it_starts_as_seabios_leaves_it() -> None:
    pics = PicPair()
    assert (pics.master.irq_base, pics.master.imr) == (0x08, 0xB8)
    assert (pics.slave.irq_base, pics.slave.imr, pics.slave.elcr) == (0x70, 0x8E, 0x0C)


def test_the_sci_reaches_the_cpu_through_the_cascade() -> None:
    raised = []
    pics = programmed()
    pics.on_output = lambda: raised.append(True)
    pics.set_irq(9, True)
    assert raised and pics.pending()
    assert pics.acknowledge() == 0x29
    assert not pics.pending()                    # in service until the EOI
    pics.set_irq(9, False)
    eoi(pics)
    assert not pics.pending()
    pics.set_irq(9, True)                        # edge triggered: a new rising edge
    assert pics.acknowledge() == 0x29


def test_masked_lines_wait_and_priority_is_fixed() -> None:
    pics = programmed(master_mask=0xFB, slave_mask=0xFF)
    pics.set_irq(9, True)
    assert not pics.pending()                    # masked at the slave
    pics.port_handlers(pics.slave)[1](1, 1, 0xF9)   # IRQ 9 and 10 unmasked
    pics.set_irq(10, True)
    assert pics.acknowledge() == 0x29            # the lower line first
    eoi(pics)
    assert pics.acknowledge() == 0x2A


def test_level_lines_stay_requested_while_high() -> None:
    pics = programmed(slave_mask=0xFB)           # IRQ 10, level triggered (ELCR)
    pics.set_irq(10, True)
    assert pics.acknowledge() == 0x2A
    eoi(pics)
    assert pics.pending()                        # still high: requested again
    pics.set_irq(10, False)
    # The master's cascade input is edge triggered and latched: the CPU still sees
    # INTR, and the slave, with nothing left, answers its spurious vector (IRQ 15).
    assert pics.acknowledge() == 0x2F


def test_ocw3_selects_irr_or_isr_and_the_imr_reads_back() -> None:
    pics = programmed()
    read, write = pics.port_handlers(pics.slave)
    pics.set_irq(9, True)
    write(0, 1, 0x0A)                            # read IRR
    assert read(0, 1) == 0x02
    pics.acknowledge()
    write(0, 1, 0x0B)                            # read ISR
    assert read(0, 1) == 0x02
    assert read(1, 1) == 0xFD
    assert pics.acknowledge() is None            # nothing more pending
