"""The host memory a backend exposes is the memory itself: other code maps it without copying."""

from __future__ import annotations

import ctypes

import pytest

from qom import object_add, object_del

unicorn = pytest.importorskip("unicorn")
x86 = pytest.importorskip("unicorn.x86_const")

MiB = 1024 * 1024
GUEST_BASE = 0x100000000


def test_guest_stores_reach_a_shared_file(tree, tmp_path):
    """A guest store through Unicorn's mem_map_ptr lands in the backend's file."""
    path = tmp_path / "guest.ram"
    memory = object_add(tree, {"qom-type": "memory-backend-file", "id": "f1", "size": 2 * MiB,
                               "mem-path": str(path), "share": True}).host_memory
    uc = unicorn.Uc(unicorn.UC_ARCH_X86, unicorn.UC_MODE_64)
    uc.mem_map_ptr(GUEST_BASE, memory.mapped_size, unicorn.UC_PROT_ALL, memory.address)
    # mov rax, imm64; mov [rbx], rax
    code = b"\x48\xb8" + (0x1122334455667788).to_bytes(8, "little") + b"\x48\x89\x03"
    memory.view[0:len(code)] = code
    uc.reg_write(x86.UC_X86_REG_RBX, GUEST_BASE + 0x1000)
    uc.emu_start(GUEST_BASE, GUEST_BASE + len(code))
    assert bytes(memory.view[0x1000:0x1008]) == (0x1122334455667788).to_bytes(8, "little")
    uc.mem_unmap(GUEST_BASE, memory.mapped_size)
    object_del(tree, "f1")
    assert path.read_bytes()[0x1000:0x1008] == (0x1122334455667788).to_bytes(8, "little")


def test_address_and_view_are_the_same_bytes(tree):
    memory = object_add(tree, {"qom-type": "memory-backend-memfd", "id": "m1",
                               "size": MiB}).host_memory
    ctypes.memmove(memory.address + 123, b"via ctypes", 10)
    assert bytes(memory.view[123:133]) == b"via ctypes"
