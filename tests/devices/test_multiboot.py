"""devices.multiboot: recognising, laying out and refusing kernels as QEMU 7.2 does
(the messages and rules are QEMU 7.2.22's, checked against the binary by
tests/conformance/test_guest.py)."""

from __future__ import annotations

import re
import struct

import pytest

from devices.machine import E820_RAM, E820_RESERVED, E820Entry
from devices.multiboot import (
    INFO_ADDRESS,
    MMAP_ADDRESS,
    KernelLoadError,
    find_header,
    load,
    mem_upper_kib,
    seabios_e820,
    split_initrd,
)

MB_MAGIC = 0x1BADB002


def header(flags: int, *extra: int) -> bytes:
    return struct.pack("<III", MB_MAGIC, flags, (-(MB_MAGIC + flags)) & 0xFFFFFFFF) + \
        struct.pack(f"<{len(extra)}I", *extra)


def elf32(segments: list[tuple[int, int, bytes, int]], entry: int, *, machine: int = 3,
          body_offset: int = 0x1000) -> bytes:
    """A minimal ELF32 with PT_LOAD (vaddr, paddr, data, memsz) segments."""
    phoff, count = 52, len(segments)
    out = bytearray(struct.pack("<4sBBBB8sHHIIIIIHHHHHH", b"\x7fELF", 1, 1, 1, 0, bytes(8),
                                2, machine, 1, entry, phoff, 0, 0, 52, 32, count, 40, 0, 0))
    offset = body_offset
    bodies = []
    for vaddr, paddr, data, memsz in segments:
        out += struct.pack("<8I", 1, offset, vaddr, paddr, len(data), memsz, 5, 0x1000)
        bodies.append((offset, data))
        offset += -(-len(data) // 0x1000) * 0x1000
    for at, data in bodies:
        out += bytes(at - len(out))
        out[at:at + len(data)] = data
    return bytes(out)


E820_128M = seabios_e820([E820Entry(0xFD00000000, 0x300000000, E820_RESERVED),
                          E820Entry(0, 128 << 20, E820_RAM)])


def files(**contents: bytes):
    def read(path: str) -> bytes:
        if path not in contents:
            raise FileNotFoundError(2, "No such file or directory", path)
        return contents[path]
    return read


def test_seabios_map_of_128m_is_what_qemu_72_guests_see() -> None:
    # Observed on QEMU 7.2.22 with -m 128M (the default CPU, qemu64, is AMD's).
    assert [(e.base, e.length, e.type) for e in E820_128M] == [
        (0x0, 0x9FC00, 1), (0x9FC00, 0x400, 2), (0xF0000, 0x10000, 2),
        (0x100000, 0x7EE0000, 1), (0x7FE0000, 0x20000, 2), (0xFFFC0000, 0x40000, 2),
        (0xFD00000000, 0x300000000, 2)]
    assert mem_upper_kib(E820_128M) == 0x1FB80


def test_mem_upper_stops_below_4g() -> None:
    e820 = seabios_e820([E820Entry(0, 3 << 30, E820_RAM), E820Entry(1 << 32, 1 << 30, E820_RAM)])
    assert mem_upper_kib(e820) == 0x2FFB80   # QEMU 7.2 with -m 4G


@pytest.mark.parametrize(("text", "items"), [
    ("a", ["a"]), ("a,b", ["a", "b"]), ("a b,c", ["a b", "c"]), ("a,,b", ["a,b"]),
    ("a,", ["a"]), (",a", ["", "a"]), ("", []),
])
def test_initrd_items(text: str, items: list[str]) -> None:
    assert split_initrd(text) == items


def test_the_header_is_found_on_4_byte_steps_within_8k() -> None:
    assert find_header(bytes(8) + header(3)) == (8, 3)
    assert find_header(bytes(6) + header(3)) is None          # not aligned
    assert find_header(bytes(8144) + header(3)) is None       # beyond QEMU's scan
    bad = bytearray(header(3))
    bad[8] ^= 1
    assert find_header(bytes(bad)) is None                    # wrong checksum


def test_an_elf_kernel_is_laid_out_as_qemu_lays_it_out() -> None:
    code = header(3) + b"\xf4" * 4
    kernel = elf32([(0x100000, 0x100000, code, 0x3000)], entry=0x10000C)
    image = load("/k", append="a b", initrd="/m1 x,/m2", e820=E820_128M,
                 read=files(**{"/k": kernel, "/m1": b"one", "/m2": b"two!" * 2000}))
    assert image is not None
    chunks = dict(image.chunks)
    assert chunks[0x100000][:len(code)] == code and len(chunks[0x100000]) == 0x3000
    info = chunks[INFO_ADDRESS]
    flags, lower, upper, boot, cmdline, count, mods = struct.unpack_from("<7I", info)
    assert (flags, lower, upper, boot, count) == (0x24F, 639, 0x1FB80, 0x8000FFFF, 2)
    assert mods == 0x103000           # after the kernel, rounded up to 4 KiB
    area = chunks[mods]
    first = struct.unpack_from("<3I", area, 0)
    second = struct.unpack_from("<3I", area, 16)
    assert first[0] == 0x104000 and first[1] == 0x104003           # end is exclusive
    assert second[0] == 0x105000 and second[1] == 0x105000 + 8000
    assert area[first[2] - mods:].split(b"\0")[0] == b"/m1 x"
    assert area[second[2] - mods:].split(b"\0")[0] == b"/m2"
    assert area[cmdline - mods:].split(b"\0")[0] == b"/k a b"
    name = struct.unpack_from("<I", info, 64)[0]
    assert area[name - mods:].split(b"\0")[0] == b"qemu"
    assert struct.unpack_from("<2I", info, 44) == (24 * 7, MMAP_ADDRESS)
    registers = dict(image.registers)
    assert registers["rax"] == 0x2BADB002 and registers["rbx"] == INFO_ADDRESS
    assert registers["rcx"] == image.entry == 0x10000C
    assert registers["rdx"] == 0x10511 and registers["rdi"] == 0x1000


def test_an_entry_given_as_a_virtual_address_moves_with_its_segment() -> None:
    kernel = elf32([(0xC0100000, 0x100000, header(3) + b"\xf4", 0x1000)], entry=0xC010000C)
    image = load("/k", append="", initrd=None, e820=E820_128M, read=files(**{"/k": kernel}))
    assert image is not None and image.entry == 0x10000C


def test_the_aout_kludge_loads_the_file_at_the_header_addresses() -> None:
    body = header(0x10003, 0x200000, 0x200000, 0, 0x204000, 0x20000C) + b"\xf4" * 100
    image = load("/k", append="", initrd=None, e820=E820_128M, read=files(**{"/k": body}))
    assert image is not None and image.entry == 0x20000C
    base, data = image.chunks[0]
    assert base == 0x200000 and data[:len(body)] == body and len(data) == 0x4000


@pytest.mark.parametrize(("kernel", "message"), [
    (elf32([(0x100000, 0x100000, header(3), 0x1000)], 0x100000, machine=62),
     "Cannot load x86-64 image, give a 32bit one."),
    (header(3) + bytes(100), "Error while loading elf kernel"),
    (header(0x10000, 0x200000, 0x200010, 0, 0, 0), "invalid load_addr address"),
    (header(0x10000, 0x200100, 0x200000, 0, 0, 0), "invalid header_addr address"),
    (header(0x10000, 0x200000, 0x200000, 0x100000, 0, 0), "invalid load_end_addr address"),
    (header(0x10000, 0x200000, 0x200000, 0, 0x200001, 0), "invalid bss_end_addr address"),
])
def test_kernels_qemu_refuses(kernel: bytes, message: str) -> None:
    with pytest.raises(KernelLoadError, match=f"^{re.escape(message)}$"):
        load("/k", append="", initrd=None, e820=E820_128M, read=files(**{"/k": kernel}))


def test_missing_files() -> None:
    with pytest.raises(KernelLoadError) as err:
        load("/nope", append="", initrd=None, e820=E820_128M, read=files())
    assert str(err.value) == "qemu: could not open kernel file '/nope': No such file or directory"
    assert err.value.bare
    kernel = elf32([(0x100000, 0x100000, header(3), 0x1000)], 0x100000)
    with pytest.raises(KernelLoadError, match=r"^Failed to open file 'gone'$"):
        load("/k", append="", initrd="gone arg", e820=E820_128M, read=files(**{"/k": kernel}))


def test_files_that_are_not_multiboot() -> None:
    linux = bytearray(0x400)
    linux[0x202:0x206] = b"HdrS"
    linux[16:16 + 12] = header(3)
    assert load("/k", append="", initrd=None, e820=E820_128M,
                read=files(**{"/k": bytes(linux)})) is None
    assert load("/k", append="", initrd=None, e820=E820_128M,
                read=files(**{"/k": bytes(9000)})) is None


def test_without_modules_the_loader_name_follows_the_command_line() -> None:
    kernel = elf32([(0x100000, 0x100000, header(3), 0x1000)], 0x100000)
    image = load("/k", append="x", initrd=None, e820=E820_128M, read=files(**{"/k": kernel}))
    assert image is not None
    info = dict(image.chunks)[INFO_ADDRESS]
    cmdline, name = struct.unpack_from("<I", info, 16)[0], struct.unpack_from("<I", info, 64)[0]
    assert name == cmdline + len(b"/k x") + 1    # as QEMU 7.2 lays them out
