"""The ISA debug devices on pyqom's own: ports, shadowing, chardev front ends."""

from __future__ import annotations

from pathlib import Path

import pytest

import qom
from plugins.address_space.plugin import address_space_of
from plugins.services import GuestExit
from pyqom import VM

# in al, dx ; mov bl, al ; hlt   (dx preset by the caller)
READ_PORT = bytes([0xEC, 0x88, 0xC3, 0xF4])
# out dx, al ; hlt
WRITE_PORT = bytes([0xEE, 0xF4])


def _out(vm: VM, port: int, value: int) -> None:
    vm.run(WRITE_PORT, load_at=0x1000, registers={"rdx": port, "rax": value})


def test_the_later_of_two_debugcons_on_one_port_gets_it(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    with VM("128M", chardevs={"a": f"file:{first}", "b": f"file:{second}"}, autoload=False,
            devices=[{"driver": "isa-debugcon", "chardev": "a"},
                     {"driver": "isa-debugcon", "chardev": "b"}]) as vm:
        _out(vm, 0xE9, ord("x"))
        names = [(p.name, p.base) for p in address_space_of(vm.machine).port_ranges()]
        assert names.count(("isa-debugcon", 0xE9)) == 2
    assert (first.read_bytes(), second.read_bytes()) == (b"", b"x")


def test_unreachable_or_empty_regions_are_accepted_and_claim_nothing() -> None:
    with VM("128M", chardevs={"c": "null"}, autoload=False,
            devices=[{"driver": "isa-debugcon", "chardev": "c", "iobase": "0x10000"},
                     {"driver": "isa-debug-exit", "iosize": "0"}]) as vm:
        assert [p.name for p in address_space_of(vm.machine).port_ranges()
                if p.name.startswith("isa")] == []
        _out(vm, 0x501, 0x21)   # no exit: the region is empty


def test_readback_and_exit_status() -> None:
    with VM("128M", chardevs={"c": "null"}, autoload=False,
            globals=[("isa-debugcon", "readback", "0x1ff")],
            devices=[{"driver": "isa-debugcon", "chardev": "c"},
                     {"driver": "isa-debug-exit"}]) as vm:
        result = vm.run(READ_PORT, load_at=0x1000, registers={"rdx": 0xE9})
        assert result.registers["rbx"] & 0xFF == 0xFF
        with pytest.raises(GuestExit) as caught:
            _out(vm, 0x502, 0x80)
        assert caught.value.status == (0x80 << 1) | 1


def test_a_chardev_has_one_front_end_and_a_failed_add_lets_it_go() -> None:
    with VM("128M", chardevs={"c": "null"}, autoload=False) as vm:
        vm.tree.machine_ready = False   # cold plug, as on the command line
        with pytest.raises(qom.QomError, match=r"Property .isa-debugcon\.bogus. not found"):
            vm.device_add("isa-debugcon", chardev="c", bogus="1")
        vm.device_add("isa-debugcon", "d1", chardev="c")    # free again
        with pytest.raises(qom.QomError) as caught:
            vm.device_add("isa-debugcon", chardev="c", iobase="0x402")
        assert str(caught.value) == (
            "Property 'isa-debugcon.chardev' can't take value 'c': Device 'c' is in use")


def test_hot_plug_is_refused_as_on_qemus_isa_bus() -> None:
    with VM("128M", chardevs={"c": "null"}, autoload=False) as vm:
        with pytest.raises(qom.QomError, match=r"^Bus .isa\.0. does not support hotplugging$"):
            vm.device_add("isa-debug-exit")
