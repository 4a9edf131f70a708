"""The Unicorn address space: real Unicorn, real backends made through object-add.

Guest code is hand-assembled x86-64; each byte string carries its assembly.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends.host import HostMapping
from plugins.address_space.engine import (
    AddressSpaceError,
    GuestAddressSpace,
    GuestError,
    GuestFault,
    MappingError,
    StopReason,
    UnknownMappingError,
)
from pyqom.manager import make_plugin_manager, make_tree
from qom import object_add, object_del

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
TiB = 1024 * GiB
CODE = 0x1000  # where tests load code, in low RAM
STACK_TOP = 0x8000
PATTERN = 0x0123_4567_89AB_CDEF


def u64(value: int) -> bytes:
    return struct.pack("<Q", value)


def u32(value: int) -> bytes:
    return struct.pack("<I", value)


def store_loop(dst: int, qwords: int, first: int = PATTERN) -> bytes:
    """Store ``first``, ``first+1``, ... as qwords at ``dst``, then HLT."""
    return (
        b"\x48\xbf" + u64(dst)        # mov rdi, dst
        + b"\x48\xb9" + u64(qwords)   # mov rcx, qwords
        + b"\x48\xb8" + u64(first)    # mov rax, first
        # loop:
        + b"\x48\x89\x07"             # mov [rdi], rax
        + b"\x48\xff\xc0"             # inc rax
        + b"\x48\x83\xc7\x08"         # add rdi, 8
        + b"\x48\xff\xc9"             # dec rcx
        + b"\x75\xf1"                 # jnz loop (-15)
        + b"\xf4"                     # hlt
    )


def load_rax(address: int) -> bytes:
    return b"\x48\xa1" + u64(address) + b"\xf4"   # movabs rax, [address] ; hlt


def store_rax(address: int) -> bytes:
    return b"\x48\xa3" + u64(address) + b"\xf4"   # movabs [address], rax ; hlt


def expected_pattern(qwords: int, first: int = PATTERN) -> bytes:
    return b"".join(u64((first + i) & (2**64 - 1)) for i in range(qwords))


# ---------------------------------------------------------------------------
# fixtures: a tree with real backends, an address space with low RAM mapped
# ---------------------------------------------------------------------------


@pytest.fixture
def objtree():
    tree = make_tree(make_plugin_manager(autoload=False))
    yield tree
    tree.root.finalize()


def ram_backend(tree, id, size=2 * MiB):
    object_add(tree, {"qom-type": "memory-backend-ram", "id": id, "size": size})
    return tree.objects.child(id).host_memory


def file_backend(tree, id, path, size=2 * MiB):
    object_add(tree, {"qom-type": "memory-backend-file", "id": id, "size": size,
                      "mem-path": str(path), "share": True})
    return tree.objects.child(id).host_memory


@pytest.fixture(params=["virtual", "cpu"])
def gas(request, objtree):
    """An address space (both TLB modes) with 2 MiB of RAM ("low") at 0."""
    space = GuestAddressSpace(tlb_mode=request.param)
    space.map_ram("low", 0, ram_backend(objtree, "low"))
    yield space
    space.close()


# ---------------------------------------------------------------------------
# guest stores reach the backend
# ---------------------------------------------------------------------------


def test_guest_store_loop_writes_the_backends_memory(gas, objtree):
    dimm = ram_backend(objtree, "m1")
    gas.map_ram("dimm0", 4 * GiB, dimm)
    result = gas.run(store_loop(4 * GiB + 0x100, 64), load_at=CODE, stack_top=STACK_TOP)
    assert result.reason == StopReason.HLT == "hlt"
    assert result.rcx == 0 and result.rdi == 4 * GiB + 0x100 + 64 * 8
    assert result.rax == PATTERN + 64
    assert result.rip == CODE + len(store_loop(0, 0))  # just after the HLT
    assert bytes(dimm.view[0x100:0x100 + 64 * 8]) == expected_pattern(64)
    assert bytes(dimm.view[:0x100]) == bytes(0x100)  # nothing else touched
    assert gas.read(4 * GiB + 0x100, 64 * 8) == expected_pattern(64)


def test_store_loop_fills_the_whole_range(gas, objtree):
    dimm = ram_backend(objtree, "m1")
    gas.map_ram("dimm0", 4 * GiB, dimm)
    result = gas.run(store_loop(4 * GiB, 2 * MiB // 8), load_at=CODE)
    assert result.reason == "hlt"
    data = bytes(dimm.view)
    assert data[:16] == expected_pattern(2) and data[-8:] == u64(PATTERN + 2 * MiB // 8 - 1)


def test_host_writes_are_seen_by_the_guest_and_guest_writes_by_the_host(gas, objtree):
    dimm = ram_backend(objtree, "m1")
    gas.map_ram("dimm0", 4 * GiB, dimm)
    dimm.view[0x40:0x48] = u64(0xDEAD_BEEF_F00D_CAFE)
    assert gas.run(load_rax(4 * GiB + 0x40), load_at=CODE).rax == 0xDEAD_BEEF_F00D_CAFE
    gas.write(4 * GiB + 0x80, b"pyqom")
    assert bytes(dimm.view[0x80:0x85]) == b"pyqom"


def test_code_rewritten_between_runs_is_translated_again(gas):
    assert gas.run(b"\xb8\x01\x00\x00\x00\xf4", load_at=CODE).rax == 1  # mov eax, 1 ; hlt
    assert gas.run(b"\xb8\x02\x00\x00\x00\xf4", load_at=CODE).rax == 2  # mov eax, 2 ; hlt


def test_shared_file_backend_keeps_the_guests_bytes(gas, objtree, tmp_path):
    path = tmp_path / "dimm.ram"
    dimm = file_backend(objtree, "f1", path)
    mapped = gas.map_ram("dimm-file", 4 * GiB, dimm)
    assert gas.run(store_loop(4 * GiB + 4 * KiB, 512), load_at=CODE).reason == "hlt"
    gas.unmap(mapped)
    object_del(objtree, "f1")
    data = path.read_bytes()
    assert len(data) == 2 * MiB
    assert data[4 * KiB:4 * KiB + 512 * 8] == expected_pattern(512)
    assert data[:4 * KiB] == bytes(4 * KiB)


def test_map_at_an_offset_of_the_backend(gas, objtree):
    """The machine maps pc.ram as two ranges: a piece of a backend at an offset."""
    backend = ram_backend(objtree, "big", size=4 * MiB)
    mapped = gas.map_ram("ram-above-4g", 4 * GiB, backend, offset=2 * MiB, size=1 * MiB)
    assert mapped.host_address == backend.address + 2 * MiB and mapped.size == MiB
    gas.run(store_loop(4 * GiB, 4), load_at=CODE)
    assert bytes(backend.view[2 * MiB:2 * MiB + 32]) == expected_pattern(4)
    assert bytes(backend.view[:32]) == bytes(32)


@pytest.mark.parametrize("gpa", [4 * GiB, 1 * TiB, 64 * TiB - 2 * MiB],
                         ids=["4GiB", "1TiB", "64TiB"])
def test_high_addresses(gas, objtree, gpa):
    dimm = ram_backend(objtree, "m1")
    gas.map_ram("high", gpa, dimm)
    assert gas.run(store_loop(gpa + 2 * MiB - 64, 8), load_at=CODE).reason == "hlt"
    assert bytes(dimm.view[-64:]) == expected_pattern(8)
    # Code can run up there too.
    result = gas.run(b"\xb8\x07\x00\x00\x00\xf4", load_at=gpa)  # mov eax, 7 ; hlt
    assert (result.rax, result.rip) == (7, gpa + 6)


# ---------------------------------------------------------------------------
# faults
# ---------------------------------------------------------------------------


def test_after_unmap_a_guest_access_faults(gas, objtree):
    dimm = ram_backend(objtree, "m1")
    gas.map_ram("dimm0", 4 * GiB, dimm)
    gas.run(store_rax(4 * GiB + 8), load_at=CODE)  # warm Unicorn's TLB for the page
    gas.unmap("dimm0")
    with pytest.raises(GuestFault) as info:
        gas.run(store_rax(4 * GiB + 8), load_at=CODE)
    assert info.value.address == 4 * GiB + 8
    assert info.value.access == "write" and not info.value.protection
    assert info.value.rip == CODE
    assert str(info.value) == (f"guest write of unmapped guest-physical address"
                               f" 0x{4 * GiB + 8:x} at rip 0x{CODE:x}")
    with pytest.raises(GuestFault) as info:
        gas.run(load_rax(4 * GiB + 16), load_at=CODE)
    assert (info.value.address, info.value.access) == (4 * GiB + 16, "read")
    with pytest.raises(GuestFault, match="read of unmapped guest-physical address 0x100000000"):
        gas.read(4 * GiB, 8)
    with pytest.raises(GuestFault, match="write of unmapped"):
        gas.write(4 * GiB, b"x")


def test_a_loop_running_off_the_end_of_ram_faults_with_precise_state(gas, objtree):
    code = store_loop(2 * MiB - 64, 16)
    with pytest.raises(GuestFault) as info:
        gas.run(code, load_at=CODE)
    store_at = CODE + 30  # the "mov [rdi], rax" after the three 10-byte moves
    assert (info.value.address, info.value.access, info.value.size) == (2 * MiB, "write", 8)
    assert info.value.rip == store_at
    # The CPU stopped at the faulting store, after 8 of the 16 iterations.
    assert (gas.reg_read("rip"), gas.reg_read("rdi"), gas.reg_read("rcx")) == \
        (store_at, 2 * MiB, 8)
    assert gas.read(2 * MiB - 64, 64) == expected_pattern(8)


def test_the_guest_runs_again_after_a_fault(gas):
    with pytest.raises(GuestFault):
        gas.run(load_rax(0x4000_0000), load_at=CODE)
    assert gas.run(b"\xb8\x05\x00\x00\x00\xf4", load_at=CODE).rax == 5  # mov eax, 5 ; hlt


def test_fetch_from_unmapped_memory_faults(gas):
    code = b"\x48\xb8" + u64(0x3000_0000) + b"\xff\xe0"  # mov rax, 0x30000000 ; jmp rax
    with pytest.raises(GuestFault) as info:
        gas.run(code, load_at=CODE)
    assert (info.value.address, info.value.access) == (0x3000_0000, "fetch")


def test_a_store_straddling_the_end_of_ram_faults_at_the_first_unmapped_byte(gas):
    with pytest.raises(GuestFault) as info:
        gas.run(store_rax(2 * MiB - 4), load_at=CODE)
    assert info.value.address == 2 * MiB and info.value.access == "write"
    with pytest.raises(GuestFault) as info:
        gas.read(2 * MiB - 4, 8)
    assert info.value.address == 2 * MiB


def test_read_only_mapping(gas, objtree):
    dimm = ram_backend(objtree, "m1")
    dimm.view[:8] = u64(0x55)
    gas.map_ram("rom", 4 * GiB, dimm, readonly=True)
    assert gas.run(load_rax(4 * GiB), load_at=CODE).rax == 0x55
    with pytest.raises(GuestFault) as info:
        gas.run(store_rax(4 * GiB), load_at=CODE)
    assert info.value.protection and info.value.access == "write"
    assert "write of read-only guest-physical address 0x100000000" in str(info.value)
    with pytest.raises(GuestFault, match="read-only"):
        gas.write(4 * GiB, b"x")
    assert bytes(dimm.view[:8]) == u64(0x55)


def test_invalid_instruction(gas):
    with pytest.raises(GuestError) as info:
        gas.run(b"\x0f\x0b", load_at=CODE)  # ud2
    assert not isinstance(info.value, GuestFault)
    assert info.value.rip == CODE and "UC_ERR_INSN_INVALID" in str(info.value)


def test_instruction_budget_and_timeout(gas):
    spin = b"\xeb\xfe"  # jmp $
    assert gas.run(spin, load_at=CODE, max_instructions=1000).reason == "instruction-limit"
    result = gas.run(spin, load_at=CODE, max_instructions=None, timeout_us=20_000)
    assert result.reason == "timeout" and result.rip == CODE


def test_registers_in_and_out(gas):
    code = b"\x48\x01\xd8\xf4"  # add rax, rbx ; hlt
    result = gas.run(code, load_at=CODE, registers={"rax": 40, "rbx": 2})
    assert result.registers == {"rax": 42, "rbx": 2, "rcx": 0, "rdx": 0, "rsi": 0,
                                "rdi": 0, "rip": CODE + 4}
    with pytest.raises(ValueError, match="unknown registers: xyz"):
        gas.run(code, load_at=CODE, registers={"xyz": 1})


def test_stack_top_sets_rsp(gas):
    code = b"\x6a\x2a\x58\xf4"  # push 42 ; pop rax ; hlt
    result = gas.run(code, load_at=CODE, stack_top=STACK_TOP)
    assert result.rax == 42 and gas.reg_read("rsp") == STACK_TOP
    assert gas.read(STACK_TOP - 8, 8) == u64(42)


def test_code_must_be_loaded_into_writable_ram(gas):
    with pytest.raises(MappingError, match="cannot load 2 bytes of code at 0x1fffff:"
                                           " 0x200000 is not writable mapped RAM"):
        gas.run(b"\x90\xf4", load_at=2 * MiB - 1)


# ---------------------------------------------------------------------------
# port I/O
# ---------------------------------------------------------------------------


class Device:
    """A port device recording every access."""

    def __init__(self):
        self.reads: list[tuple[int, int]] = []
        self.writes: list[tuple[int, int, int]] = []

    def read(self, offset, size):
        self.reads.append((offset, size))
        return 0x1122_3344_5566_7700 | offset  # wider than any access: truncated

    def write(self, offset, size, value):
        self.writes.append((offset, size, value))


def test_in_dispatches_offset_and_size(gas):
    dev = Device()
    gas.register_ports(0x0A00, 0x18, dev.read, dev.write, "acpi-mem-hotplug")
    code = (
        b"\x48\x31\xc0"          # xor rax, rax
        b"\x66\xba\x04\x0a"      # mov dx, 0x0a04
        b"\xec"                  # in al, dx
        b"\x48\x89\xc3"          # mov rbx, rax
        b"\x66\xba\x06\x0a"      # mov dx, 0x0a06
        b"\x66\xed"              # in ax, dx
        b"\x48\x89\xc1"          # mov rcx, rax
        b"\x66\xba\x08\x0a"      # mov dx, 0x0a08
        b"\xed"                  # in eax, dx
        b"\x48\x89\xc6"          # mov rsi, rax
        b"\xe5\x00"              # in eax, 0x00 (imm8 form; unclaimed)
        b"\x48\x89\xc7"          # mov rdi, rax
        b"\x48\x31\xc0"          # xor rax, rax
        b"\x66\xe5\x80"          # in ax, 0x80 (unclaimed)
        b"\xf4"                  # hlt
    )
    result = gas.run(code, load_at=CODE)
    assert dev.reads == [(4, 1), (6, 2), (8, 4)]
    assert result.rbx == 0x04
    assert result.rcx == 0x7706
    assert result.rsi == 0x5566_7708
    assert result.rdi == 0xFFFF_FFFF       # unclaimed: all ones of the width
    assert result.rax == 0xFFFF


def test_unclaimed_byte_in_reads_ff(gas):
    code = b"\x48\x31\xc0\xe4\x70\xf4"  # xor rax, rax ; in al, 0x70 ; hlt
    assert gas.run(code, load_at=CODE).rax == 0xFF


def test_out_dispatches_offset_size_and_value(gas):
    dev = Device()
    gas.register_ports(0x0A00, 0x18, dev.read, dev.write, "acpi-mem-hotplug")
    code = (
        b"\x66\xba\x04\x0a"          # mov dx, 0x0a04
        b"\xb0\x11"                  # mov al, 0x11
        b"\xee"                      # out dx, al
        b"\x66\xba\x10\x0a"          # mov dx, 0x0a10
        b"\x66\xb8\x22\x33"          # mov ax, 0x3322
        b"\x66\xef"                  # out dx, ax
        b"\x66\xba\x14\x0a"          # mov dx, 0x0a14
        b"\xb8\x44\x55\x66\x77"      # mov eax, 0x77665544
        b"\xef"                      # out dx, eax
        b"\xe6\x80"                  # out 0x80, al (unclaimed: ignored)
        b"\xe7\x00"                  # out 0x00, eax (unclaimed: ignored)
        b"\xf4"                      # hlt
    )
    assert gas.run(code, load_at=CODE).reason == "hlt"
    assert dev.writes == [(4, 1, 0x11), (0x10, 2, 0x3322), (0x14, 4, 0x77665544)]
    assert dev.reads == []


def test_unregistered_ports_fall_back_to_all_ones(gas):
    dev = Device()
    handle = gas.register_ports(0x0A00, 0x18, dev.read, dev.write, "acpi-mem-hotplug")
    gas.unregister_ports(handle)
    code = b"\x66\xba\x00\x0a\xed\xee\xf4"  # mov dx, 0x0a00 ; in eax, dx ; out dx, al ; hlt
    assert gas.run(code, load_at=CODE).rax == 0xFFFF_FFFF
    assert dev.reads == dev.writes == []
    with pytest.raises(UnknownMappingError, match="'acpi-mem-hotplug' is not registered"):
        gas.unregister_ports(handle)


def test_two_port_ranges_each_get_their_accesses(gas):
    a, b = Device(), Device()
    gas.register_ports(0x0A00, 4, a.read, a.write, "a")
    gas.register_ports(0x0A04, 4, b.read, b.write, "b")
    code = (b"\x66\xba\x03\x0a\xee"   # mov dx, 0x0a03 ; out dx, al
            b"\x66\xba\x05\x0a\xee"   # mov dx, 0x0a05 ; out dx, al
            b"\xf4")                  # hlt
    gas.run(code, load_at=CODE, registers={"rax": 9})
    assert a.writes == [(3, 1, 9)] and b.writes == [(1, 1, 9)]


def test_a_port_handler_exception_stops_the_guest_and_propagates(gas):
    def broken_read(offset, size):
        raise RuntimeError("device on fire")

    gas.register_ports(0x0A00, 1, broken_read, lambda *a: None, "broken")
    code = b"\x66\xba\x00\x0a\xec\xb8\x01\x00\x00\x00\xf4"  # mov dx,0xa00; in al,dx; mov eax,1; hlt
    with pytest.raises(RuntimeError, match="device on fire"):
        gas.run(code, load_at=CODE)
    gas.run(b"\xf4", load_at=CODE)  # the next run is clean


def test_a_port_handler_can_stop_the_guest(gas):
    gas.register_ports(0x00F4, 1, lambda o, s: 0,
                       lambda o, s, v: gas.request_stop(), "isa-debug-exit")
    code = (b"\xe6\xf4"               # out 0xf4, al
            b"\xb8\x01\x00\x00\x00"   # mov eax, 1 (not reached)
            b"\xf4")                  # hlt
    result = gas.run(code, load_at=CODE, registers={"rax": 0})
    assert result.reason == "stopped" and result.rax == 0 and result.rip == CODE + 2


def test_port_registration_is_checked(gas):
    dev = Device()
    gas.register_ports(0x0A00, 0x18, dev.read, dev.write, "acpi-mem-hotplug")
    with pytest.raises(MappingError, match="'gpe0' at 0xa10-0xa13: they overlap"
                                           " 'acpi-mem-hotplug' at 0xa00-0xa17"):
        gas.register_ports(0x0A10, 4, dev.read, dev.write, "gpe0")
    with pytest.raises(MappingError, match="not inside the I/O space"):
        gas.register_ports(0xFFFF, 2, dev.read, dev.write, "wide")
    with pytest.raises(MappingError, match="not inside the I/O space"):
        gas.register_ports(0x10, 0, dev.read, dev.write, "empty")


# ---------------------------------------------------------------------------
# mapping rules
# ---------------------------------------------------------------------------


def test_overlaps_are_refused(gas, objtree):
    dimm = ram_backend(objtree, "m1")
    gas.map_ram("dimm0", 4 * GiB, dimm)
    for name, gpa in (("below", 4 * GiB - 1 * MiB), ("inside", 4 * GiB + 1 * MiB),
                      ("same", 4 * GiB)):
        with pytest.raises(MappingError, match=f"cannot map '{name}' at 0x.*: it overlaps"
                                               " 'dimm0' at 0x100000000-0x1001fffff"):
            gas.map_ram(name, gpa, dimm)
    with pytest.raises(MappingError, match="overlaps 'low' at 0x0-0x1fffff"):
        gas.map_ram("zero", 0x1000, dimm, size=4096)
    with pytest.raises(MappingError, match="a range named 'dimm0' is already mapped"):
        gas.map_ram("dimm0", 8 * GiB, dimm)
    # Adjacent ranges are fine.
    gas.map_ram("after", 4 * GiB + 2 * MiB, dimm)
    gas.map_ram("before", 4 * GiB - 2 * MiB, dimm)
    assert [m.name for m in gas.mappings()] == ["low", "before", "dimm0", "after"]


@pytest.fixture(scope="module")
def sixteen_pages():
    mapping = HostMapping(size=16 * 4096, align=4096)
    yield mapping.memory
    mapping.release()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 63), st.integers(1, 16), st.booleans()), max_size=12))
def test_mappings_match_a_model(sixteen_pages, steps):
    """Random map/unmap steps: refused exactly when a model says they overlap."""
    model: dict[str, tuple[int, int]] = {}
    with GuestAddressSpace() as space:
        for index, (page, pages, unmap_first) in enumerate(steps):
            if unmap_first and model:
                name = sorted(model)[0]
                space.unmap(name)
                del model[name]
            start, end = page * 4096, (page + pages) * 4096
            clash = any(s < end and start < e for s, e in model.values())
            name = f"r{index}"
            if clash:
                with pytest.raises(MappingError, match="overlaps"):
                    space.map_ram(name, start, sixteen_pages, size=pages * 4096)
            else:
                space.map_ram(name, start, sixteen_pages, size=pages * 4096)
                model[name] = (start, end)
            assert [(m.name, m.gpa, m.end) for m in space.mappings()] == \
                sorted(((n, s, e) for n, (s, e) in model.items()), key=lambda t: t[1])
            for name, (s, e) in model.items():
                assert space.mapping_at(s).name == name and space.mapping_at(e - 1).name == name


def test_a_write_spanning_adjacent_ranges(gas, objtree):
    a, b = ram_backend(objtree, "a"), ram_backend(objtree, "b")
    gas.map_ram("a", 4 * GiB, a)
    gas.map_ram("b", 4 * GiB + 2 * MiB, b)
    gas.write(4 * GiB + 2 * MiB - 2, b"wxyz")
    assert bytes(a.view[-2:]) + bytes(b.view[:2]) == b"wxyz"
    assert gas.read(4 * GiB + 2 * MiB - 2, 4) == b"wxyz"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"gpa": 4 * GiB + 512}, "guest-physical address 0x100000200 is not aligned to 4 KiB"),
    ({"gpa": 4 * GiB, "size": 6000}, "size 0x1770 is not aligned to 4 KiB"),
    ({"gpa": 4 * GiB, "offset": 100}, "offset 0x64 is not aligned to 4 KiB"),
    ({"gpa": 4 * GiB, "size": 0}, "must be positive"),
    ({"gpa": 4 * GiB, "size": 4 * MiB}, "is beyond its host memory \\(0x200000 bytes\\)"),
    ({"gpa": 4 * GiB, "offset": 2 * MiB}, "must be positive"),
    ({"gpa": 4 * GiB, "offset": MiB, "size": 2 * MiB}, "is beyond its host memory"),
    ({"gpa": (1 << 52) - MiB}, "beyond the 52-bit guest-physical address space"),
])
def test_bad_mappings_are_refused(gas, objtree, kwargs, message):
    dimm = ram_backend(objtree, "m1")
    with pytest.raises(MappingError, match=message) as info:
        gas.map_ram("bad", host=dimm, **kwargs)
    assert isinstance(info.value, ValueError)
    assert [m.name for m in gas.mappings()] == ["low"]


def test_backend_size_is_rounded_up_to_4k(gas):
    odd = HostMapping(size=10_000, align=4096)
    try:
        mapped = gas.map_ram("odd", 4 * GiB, odd.memory)
        assert mapped.size == 12 * KiB
        gas.unmap(mapped)
    finally:
        odd.release()


def test_unmap_by_name_or_handle_and_unknown(gas, objtree):
    dimm = ram_backend(objtree, "m1")
    handle = gas.map_ram("dimm0", 4 * GiB, dimm)
    assert gas.mapping_at(4 * GiB + 5) is handle and gas.mapping_at(4 * GiB + 2 * MiB) is None
    assert gas.unmap(handle) is handle
    gas.map_ram("dimm0", 4 * GiB, dimm)  # the name and the range are free again
    gas.unmap("dimm0")
    with pytest.raises(UnknownMappingError, match="no range named 'dimm0' is mapped"):
        gas.unmap("dimm0")
    with pytest.raises(UnknownMappingError):
        gas.unmap(handle)


def test_read_only_backend_is_always_mapped_read_only(gas, objtree, tmp_path):
    path = tmp_path / "rom.img"
    path.write_bytes(b"\x5a" * (2 * MiB))
    object_add(objtree, {"qom-type": "memory-backend-file", "id": "rom", "size": 2 * MiB,
                         "mem-path": str(path), "readonly": True})
    rom = objtree.objects.child("rom").host_memory
    assert rom.readonly
    mapped = gas.map_ram("rom", 4 * GiB, rom)
    assert mapped.readonly
    assert gas.read(4 * GiB, 2) == b"\x5a\x5a"
    with pytest.raises(GuestFault, match="read-only"):
        gas.run(store_rax(4 * GiB), load_at=CODE)


def test_mapped_host_memory_stays_valid_until_unmapped(gas):
    """Releasing a backend while mapped must not leave Unicorn a dangling pointer."""
    mapping = HostMapping(size=2 * MiB, align=2 * MiB)
    gas.map_ram("early-free", 4 * GiB, mapping.memory)
    assert mapping.release() is False  # our pin keeps the host pages
    gas.run(store_loop(4 * GiB, 16), load_at=CODE)
    assert gas.read(4 * GiB, 8) == u64(PATTERN)
    gas.unmap("early-free")


# ---------------------------------------------------------------------------
# mtree, close
# ---------------------------------------------------------------------------


def test_close_unmaps_everything_and_is_idempotent(objtree):
    dimm = ram_backend(objtree, "m1")
    space = GuestAddressSpace()
    space.map_ram("dimm0", 0, dimm)
    space.close()
    space.close()
    assert space.closed and space.mappings() == []
    with pytest.raises(AddressSpaceError, match="closed"):
        space.read(0, 1)
    with pytest.raises(AddressSpaceError, match="closed"):
        space.map_ram("again", 0, dimm)
    object_del(objtree, "m1")  # nothing pins the backend any more


def test_context_manager_and_tlb_mode_check(objtree):
    with GuestAddressSpace(tlb_mode="cpu") as space:
        space.map_ram("low", 0, ram_backend(objtree, "m1"))
        assert space.run(b"\xf4", load_at=0).reason == "hlt"
    assert space.closed
    with pytest.raises(ValueError, match="tlb_mode must be 'virtual' or 'cpu'"):
        GuestAddressSpace(tlb_mode="fast")  # type: ignore[arg-type]


def test_call_outside_runs_between_instructions_and_the_guest_goes_on(gas, objtree):
    """An OUT whose handler unmaps a DIMM (an eject): the unmap waits until the CPU
    loop is left, then the guest continues after the OUT, and sees the range gone."""
    dimm = ram_backend(objtree, "m1")
    gas.map_ram("dimm0", 4 * GiB, dimm)
    done: list[str] = []

    def write(offset: int, size: int, value: int) -> None:
        gas.call_outside(lambda: (gas.unmap("dimm0"), done.append("unmapped")))

    gas.register_ports(0x0A14, 1, lambda offset, size: 0, write, "eject")
    code = (
        b"\x66\xba\x14\x0a"      # mov dx, 0x0a14
        b"\xb0\x08"              # mov al, 8
        b"\xee"                  # out dx, al       -> the handler defers the unmap
        b"\xbb\x2a\x00\x00\x00"  # mov ebx, 42      (runs after the unmap)
        b"\xf4"                  # hlt
    )
    result = gas.run(code, load_at=CODE)
    assert (result.reason, result.rbx, done) == (StopReason.HLT, 42, ["unmapped"])
    assert [m.name for m in gas.mappings()] == ["low"]
    gas.call_outside(lambda: done.append("now"))  # no guest running: at once
    assert done == ["unmapped", "now"]


def test_the_engine_is_created_on_first_use_with_what_was_set_up_before(objtree):
    """Start-up maps RAM and registers ports without Unicorn; the engine, made on
    first use, maps those ranges and serves those ports."""
    low, gone = ram_backend(objtree, "m1"), ram_backend(objtree, "m2")
    space = GuestAddressSpace()
    space.map_ram("low", 0, low)
    space.map_ram("gone", 4 * GiB, gone)
    space.unmap("gone")
    seen: list[int] = []
    space.register_ports(0x0A14, 1, lambda offset, size: 0, lambda o, s, v: seen.append(v),
                         "probe")
    low.view[0x1000:0x1004] = b"abcd"
    assert space._uc is None  # nothing so far needed the engine
    assert space.read(0x1000, 4) == b"abcd"
    space.run(b"\x66\xba\x14\x0a\xb0\x07\xee\xf4", load_at=CODE)  # mov dx; mov al, 7; out
    assert seen == [7]
    with pytest.raises(GuestFault):
        space.read(4 * GiB, 1)
    space.close()
    never = GuestAddressSpace()
    never.map_ram("low", 0, ram_backend(objtree, "m3"))
    never.close()  # closing without an engine unmaps too
    assert never.closed and never._uc is None and never.mappings() == []
    with pytest.raises(AddressSpaceError, match="closed"):
        never.reg_read("rip")
