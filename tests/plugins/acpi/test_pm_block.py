"""PIIX4's PM block (plugins.acpi.registers.PmBlock): PM1 event and control, the PM timer."""

from __future__ import annotations

import pytest

from plugins.acpi.registers import PmBlock
from plugins.services import GuestShutdown


def test_the_timer_counts_at_3_579545_mhz_in_24_bits() -> None:
    now = [1_000_000_000]
    pm = PmBlock(clock=lambda: now[0])
    assert pm.read_timer(0, 4) == 0
    now[0] += 1_000_000_000            # one second
    assert pm.read_timer(0, 4) == 3_579_545
    assert pm.read_timer(0, 2) == 3_579_545 & 0xFFFF
    now[0] += 10 * 1_000_000_000       # wraps at 2**24
    assert pm.read_timer(0, 4) == (11 * 3_579_545) & 0xFFFFFF


def test_status_bits_are_write_one_to_clear_and_enable_is_plain() -> None:
    pm = PmBlock()
    pm.status = 0x0121
    pm.write_event(0, 2, 0x0100)
    assert pm.read_event(0, 2) == 0x0021
    pm.write_event(2, 2, 0x0120)
    assert pm.read_event(2, 2) == 0x0120
    assert pm.read_event(0, 4) == 0x0120_0021


def test_sleep_enable_with_type_0_powers_off() -> None:
    pm = PmBlock()
    pm.write_control(0, 2, 0x0001)      # SCI_EN: kept
    assert pm.read_control(0, 2) == 0x0001
    pm.write_control(0, 2, 0x0401)      # sleep type 1, no SLP_EN: nothing happens
    assert pm.read_control(0, 2) == 0x0401
    with pytest.raises(GuestShutdown) as shutdown:
        pm.write_control(0, 2, 0x2001)
    assert shutdown.value.reason == "guest-shutdown"
    assert pm.read_control(0, 2) & 0x2000 == 0  # SLP_EN reads back as 0


def test_the_power_button_is_seen_only_once_enabled() -> None:
    changes = []
    pm = PmBlock(on_change=lambda: changes.append(pm.sci_level))
    pm.power_button()
    assert pm.status == 0 and not pm.sci_level        # not enabled: nothing (QEMU's rule)
    pm.write_event(2, 2, 0x0100)
    pm.power_button()
    assert pm.read_event(0, 2) == 0x0100 and pm.sci_level
    pm.write_event(0, 2, 0x0100)                      # the guest clears it
    assert not pm.sci_level
    assert changes[-2:] == [True, False]
