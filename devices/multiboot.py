"""``-kernel`` with a Multiboot v1 kernel, as QEMU 7.2's pc machine boots one.

QEMU recognises the kernel (``x86_load_linux``), lays it out with the
Multiboot info (``hw/i386/multiboot.c``), and its option ROM, run by SeaBIOS,
fills in the memory map from SeaBIOS's e820 table, copies everything into
RAM and jumps to the kernel.  pyqom does the same work here, before the
guest's first instruction, so the guest finds the same bytes at the same
addresses:

* the kernel: an ELF32 file's ``PT_LOAD`` segments at their physical
  addresses (an ELF64 one is refused as QEMU refuses it), or the a.out
  kludge's ranges when the header's flag bit 16 is set;
* after the kernel image (rounded up to 4 KiB from its start): the module
  list, the module strings, the kernel command line (``<path> <append>``),
  the boot loader name ``qemu``; then each ``-initrd`` module, 4 KiB aligned;
* the 88-byte info block at 0x9500 and the memory map at 0x9000 (24 bytes
  per entry, size field 20), ``mem_lower`` 639 and ``mem_upper`` as the
  option ROM computes them;
* the CPU: 32-bit protected mode, paging off, EAX 0x2BADB002, EBX 0x9500,
  and the other registers as QEMU 7.2's option ROM leaves them.

Nothing here touches the machine: :func:`load` turns files into a
:class:`MultibootImage` (what goes where, and the entry state), which the
machine writes into RAM.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final

import attrs

from devices.machine import E820_RAM, E820_RESERVED, E820Entry
from plugins.services import ACPI, GUEST_CPU, services_of
from qom import QomError
from qom.reprs import FieldsRepr

if TYPE_CHECKING:
    from devices.machine import PcMachine

MULTIBOOT_MAGIC: Final = 0x1BADB002
MULTIBOOT_BOOTLOADER_MAGIC: Final = 0x2BADB002
#: the header is searched in the first 8 KiB, at 4-byte steps (QEMU stops 48 bytes short)
HEADER_SEARCH_END: Final = 8192 - 48
FLAG_VIDEO_MODE: Final = 1 << 2
FLAG_AOUT_KLUDGE: Final = 1 << 16
INFO_ADDRESS: Final = 0x9500
MMAP_ADDRESS: Final = 0x9000
INFO_SIZE: Final = 88
#: memory, boot device, command line, modules, memory map, boot loader name
INFO_FLAGS: Final = 0x24F
BOOT_DEVICE: Final = 0x8000FFFF
BOOT_LOADER_NAME: Final = b"qemu"
PAGE: Final = 4096
#: what SeaBIOS reports below 640 KiB (int 12h): its EBDA takes the last KiB
MEM_LOWER_KIB: Final = 639
EM_X86_64: Final = 62

#: SeaBIOS's own areas: the EBDA, the BIOS segment, its high zone at the top of
#: RAM below 4 GiB (the ACPI tables are there), and its 256 KiB ROM image
EBDA_START: Final = 0x9FC00
BIOS_SEGMENT: Final = (0xF0000, 0x10000)
SEABIOS_HIGH_ZONE: Final = 0x20000
BIOS_ROM: Final = (0xFFFC0000, 0x40000)
#: the registers QEMU 7.2's option ROM (multiboot_dma.bin under SeaBIOS)
#: leaves besides EAX, EBX and ECX (the entry): observed on QEMU 7.2.22
ENTRY_EDX_LOW: Final = 0x0511
ENTRY_ESP: Final = 0x6F08
ENTRY_EFLAGS: Final = 0x6
#: where the CPU's way into protected mode goes (QEMU's GDT lives in its option
#: ROM there)
BOOT_SCRATCH: Final = 0xC02B8


class KernelLoadError(QomError):
    """A kernel QEMU refuses.

    :ivar bare: QEMU prints the message as it is (a literal ``qemu: `` start),
        not after its program name.
    """

    def __init__(self, message: str, *, bare: bool = False) -> None:
        super().__init__(message)
        self.bare = bare


@attrs.frozen(repr=False)
class MultibootImage(FieldsRepr):
    """What the loader puts in guest RAM, and how the CPU starts.

    :ivar chunks: (guest-physical address, bytes) the firmware copies when the
        guest first runs, in order.
    :ivar at_reset: what is in RAM from machine reset on (an ELF kernel's
        segments: QEMU loads them as ROM blobs; the rest comes from its option ROM).
    :ivar entry: the kernel's entry point.
    :ivar registers: the CPU's registers at entry.
    :ivar warnings: what QEMU prints on the way (``multiboot knows VBE. we don't``).
    """

    chunks: tuple[tuple[int, bytes], ...]
    at_reset: tuple[tuple[int, bytes], ...]
    entry: int
    registers: tuple[tuple[str, int], ...]
    warnings: tuple[str, ...] = ()


def seabios_e820(qemu_e820: Sequence[E820Entry], high_extra: int = 0) -> list[E820Entry]:
    """The e820 map SeaBIOS gives a guest, from the one QEMU gives SeaBIOS.

    QEMU's table has the RAM below and above 4 GiB (and the AMD HyperTransport
    hole); SeaBIOS carves its EBDA and high zone out of the low RAM, adds its
    BIOS segment and ROM, and reports the result sorted by address.

    :param high_extra: bytes SeaBIOS allocates in its high zone for QEMU's
        table-loader files besides the tables (``etc/acpi/nvdimm-mem``): it
        reserves that much more (it gives back what it did not use).
    """
    high_zone = SEABIOS_HIGH_ZONE + high_extra
    entries: list[E820Entry] = []
    for given in qemu_e820:
        if given.type == E820_RAM and given.base == 0:
            top = given.length
            entries.append(E820Entry(0, min(EBDA_START, top), E820_RAM))
            if top > EBDA_START:
                entries.append(E820Entry(EBDA_START, 0xA0000 - EBDA_START, E820_RESERVED))
            if top > 0x100000 + high_zone:
                entries.append(E820Entry(0x100000, top - high_zone - 0x100000, E820_RAM))
                entries.append(E820Entry(top - high_zone, high_zone, E820_RESERVED))
        else:
            entries.append(given)
    entries.append(E820Entry(*BIOS_SEGMENT, E820_RESERVED))
    entries.append(E820Entry(*BIOS_ROM, E820_RESERVED))
    return sorted(entries, key=lambda entry: entry.base)


def mem_upper_kib(e820: Sequence[E820Entry]) -> int:
    """The option ROM's ``mem_upper``: from 1 MiB, grown over every RAM entry
    below 4 GiB that holds the end so far; in KiB above 1 MiB."""
    end = 0x100000
    grown = True
    while grown:
        grown = False
        for entry in e820:
            if entry.type == E820_RAM and entry.base < 1 << 32 \
                    and entry.base <= end < entry.base + entry.length:
                end = entry.base + entry.length
                grown = True
    return (end - 0x100000) // 1024


def split_initrd(text: str) -> list[str]:
    """``-initrd a,b c,,d``: items split on commas, ``,,`` a literal comma; a
    trailing comma adds nothing."""
    items: list[str] = []
    current: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == ",":
            if text[index + 1:index + 2] == ",":
                current.append(",")
                index += 2
                continue
            items.append("".join(current))
            current = []
        else:
            current.append(char)
        index += 1
    if current:
        items.append("".join(current))
    return items


def find_header(head: bytes) -> tuple[int, int] | None:
    """(file offset, flags) of the Multiboot header in ``head`` (the first 8 KiB),
    or ``None``."""
    for offset in range(0, HEADER_SEARCH_END, 4):
        if offset + 12 > len(head):
            break
        magic, flags, checksum = struct.unpack_from("<III", head, offset)
        if magic == MULTIBOOT_MAGIC and (magic + flags + checksum) & 0xFFFFFFFF == 0:
            return offset, flags
    return None


def _round_up(value: int, align: int) -> int:
    return -(-value // align) * align


def _load_aout(data: bytes, offset: int) -> tuple[int, bytes, int]:
    """The a.out kludge: (load address, image, entry)."""
    header_addr, load_addr, load_end, bss_end, entry = struct.unpack_from(
        "<IIIII", data, offset + 12)
    if header_addr < load_addr:
        raise KernelLoadError("invalid load_addr address")
    if header_addr - load_addr > offset:
        raise KernelLoadError("invalid header_addr address")
    start = offset - (header_addr - load_addr)
    if load_end:
        if load_end < load_addr:
            raise KernelLoadError("invalid load_end_addr address")
        size = load_end - load_addr
    else:
        if len(data) < start:
            raise KernelLoadError("invalid kernel_file_size")
        size = len(data) - start
    if size > 0xFFFFFFFF - load_addr:
        raise KernelLoadError("kernel does not fit in address space")
    image_size = size
    if bss_end:
        if bss_end < load_addr + size:
            raise KernelLoadError("invalid bss_end_addr address")
        image_size = bss_end - load_addr
    if start + size > len(data):
        raise KernelLoadError("fread() failed")
    image = data[start:start + size] + bytes(image_size - size)
    return load_addr, image, entry


def _load_elf(data: bytes) -> tuple[int, bytes, int]:
    """An ELF32 kernel: (lowest physical address, image, entry)."""
    if len(data) >= 20 and struct.unpack_from("<H", data, 18)[0] == EM_X86_64:
        raise KernelLoadError("Cannot load x86-64 image, give a 32bit one.")
    if len(data) < 52 or data[:4] != b"\x7fELF" or data[4] != 1 or data[5] != 1 \
            or struct.unpack_from("<H", data, 18)[0] != 3:
        raise KernelLoadError("Error while loading elf kernel")
    entry, phoff = struct.unpack_from("<II", data, 24)
    phentsize, phnum = struct.unpack_from("<HH", data, 42)
    segments: list[tuple[int, int, int, int, int, int]] = []
    for index in range(phnum):
        at = phoff + index * phentsize
        if at + 32 > len(data):
            raise KernelLoadError("Error while loading elf kernel")
        p_type, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_flags = struct.unpack_from(
            "<IIIIIII", data, at)
        if p_type != 1 or p_memsz == 0:  # PT_LOAD with something in it
            continue
        if p_offset + p_filesz > len(data) or p_filesz > p_memsz:
            raise KernelLoadError("Error while loading elf kernel")
        segments.append((p_paddr, p_offset, p_filesz, p_memsz, p_vaddr, p_flags))
    if not segments:
        raise KernelLoadError("Error while loading elf kernel")
    segments.sort()
    # A segment's zero-filled tail that would run into the next is cut to its file size.
    sized = []
    for index, (paddr, offset, filesz, memsz, vaddr, flags) in enumerate(segments):
        following = segments[index + 1][0] if index + 1 < len(segments) else None
        if following is not None and paddr + memsz > following:
            memsz = filesz
        sized.append((paddr, offset, filesz, memsz, vaddr, flags))
    low = min(paddr for paddr, *_ in sized)
    high = max(paddr + memsz for paddr, _, _, memsz, _, _ in sized)
    image = bytearray(high - low)
    for paddr, offset, filesz, _, vaddr, flags in sized:
        image[paddr - low:paddr - low + filesz] = data[offset:offset + filesz]
        # An entry given as a virtual address of an executable segment loaded
        # elsewhere is moved with it.
        if flags & 1 and vaddr != paddr and vaddr <= entry < vaddr + filesz:
            entry = entry - vaddr + paddr
    return low, bytes(image), entry


def load(path: str, *, append: str, initrd: str | None, e820: Sequence[E820Entry],
         read: Callable[[str], bytes]) -> MultibootImage | None:
    """The Multiboot boot of ``path``, or ``None`` if it is no Multiboot kernel.

    :param read: reads a file (``OSError`` with the reason if it cannot).
    :raises KernelLoadError: QEMU 7.2's message for a kernel or module it refuses.
    """
    try:
        data = read(path)
    except IsADirectoryError as err:   # QEMU opens it, then cannot read it
        raise KernelLoadError(f"qemu: could not load kernel '{path}': {err.strerror}",
                              bare=True) from None
    except OSError as err:
        raise KernelLoadError(f"qemu: could not open kernel file '{path}': "
                              f"{err.strerror}", bare=True) from None
    if not data:
        raise KernelLoadError(f"qemu: could not load kernel '{path}': "
                              "No such file or directory", bare=True)
    head = data[:8192]
    if len(head) >= 0x206 and head[0x202:0x206] == b"HdrS":
        return None   # a Linux kernel (bzImage)
    found = find_header(head)
    if found is None:
        return None
    offset, flags = found
    warnings = ("multiboot knows VBE. we don't",) if flags & FLAG_VIDEO_MODE else ()
    if flags & FLAG_AOUT_KLUDGE:
        base, image, entry = _load_aout(data, offset)
    else:
        base, image, entry = _load_elf(data)
    at_reset = () if flags & FLAG_AOUT_KLUDGE else ((base, image),)
    modules = split_initrd(initrd) if initrd is not None else []
    module_data: list[bytes] = []
    for item in modules:
        name = item.split(" ", 1)[0]
        try:
            module_data.append(read(name))
        except OSError:
            raise KernelLoadError(f"Failed to open file '{name}'") from None
    # The area after the kernel: module list, strings, boot loader name.
    kernel_size = _round_up(len(image), PAGE)
    cmdline = f"{path} {append}".encode()
    strings_size = (len(path) + 1) + (len(append) + 1)
    if initrd is not None:
        strings_size += len(initrd) + 1
    list_size = 16 * len(modules)
    area = bytearray(_round_up(list_size + strings_size + len(BOOT_LOADER_NAME) + 1, PAGE))
    area_addr = base + kernel_size
    strings_at = list_size
    module_addr = area_addr + len(area)
    module_chunks: list[tuple[int, bytes]] = []
    for index, (item, content) in enumerate(zip(modules, module_data, strict=True)):
        text = item.encode() + b"\0"
        area[strings_at:strings_at + len(text)] = text
        struct.pack_into("<III", area, 16 * index, module_addr, module_addr + len(content),
                         area_addr + strings_at)
        strings_at += len(text)
        module_chunks.append((module_addr, content))
        module_addr += _round_up(len(content), PAGE)
    cmdline_addr = area_addr + strings_at
    area[strings_at:strings_at + len(cmdline) + 1] = cmdline + b"\0"
    name_at = list_size + strings_size
    area[name_at:name_at + len(BOOT_LOADER_NAME) + 1] = BOOT_LOADER_NAME + b"\0"
    upper = mem_upper_kib(e820)
    mmap = b"".join(struct.pack("<IQQI", 20, entry_.base, entry_.length, entry_.type)
                    for entry_ in e820)
    info = struct.pack("<12I", INFO_FLAGS, MEM_LOWER_KIB, upper, BOOT_DEVICE,
                       cmdline_addr, len(modules), area_addr, 0, 0, 0, 0, len(mmap)) \
        + struct.pack("<7I", MMAP_ADDRESS, 0, 0, 0, area_addr + name_at, 0, 0) \
        + bytes(INFO_SIZE - 76)
    edi = int.from_bytes(base.to_bytes(4, "little"), "big")   # the ROM's byte-swapped address
    # EDX keeps the top half of the ROM's mem_upper sum and the fw_cfg port it used
    edx = (upper & 0xFFFF0000) | ENTRY_EDX_LOW
    registers = (("rax", MULTIBOOT_BOOTLOADER_MAGIC), ("rbx", INFO_ADDRESS), ("rcx", entry),
                 ("rdx", edx), ("rsi", 0), ("rdi", edi), ("rbp", 0), ("rsp", ENTRY_ESP),
                 ("rflags", ENTRY_EFLAGS))
    chunks = ((base, image), (area_addr, bytes(area)), *module_chunks,
              (MMAP_ADDRESS, mmap), (INFO_ADDRESS, info))
    return MultibootImage(chunks=chunks, at_reset=at_reset, entry=entry, registers=registers,
                          warnings=warnings)


def _read_file(path: str) -> bytes:
    with open(path, "rb") as file:
        return file.read()


def boot_kernel(pc: PcMachine, path: str, *, append: str, initrd: str | None,
                warn: Callable[[str], None]) -> bool:
    """Load the Multiboot kernel ``path`` into ``pc``'s RAM and make its CPU start
    there; ``False`` if ``path`` is no Multiboot kernel.

    :raises KernelLoadError: QEMU's message (or pyqom's, for RAM it does not have).
    """
    acpi = services_of(pc).find(ACPI)
    e820 = seabios_e820(pc.e820, acpi.reserved_size() if acpi is not None else 0)
    image = load(path, append=append, initrd=initrd, e820=e820, read=_read_file)
    if image is None:
        return False
    for text in image.warnings:
        warn(text)
    ram = pc.main_ram
    if ram is None:
        raise KernelLoadError("the machine has no RAM to load the kernel into")
    for gpa, data in image.chunks:
        if gpa + len(data) > pc.below_4g_mem_size:
            raise KernelLoadError(f"the kernel's data at 0x{gpa:x}-0x{gpa + len(data) - 1:x}"
                                  " is beyond the RAM below 4 GiB")

    for gpa, data in image.at_reset:
        ram.write(gpa, data)

    def copy_into_ram() -> None:
        # QEMU's option ROM copies the info, the modules (and an a.out kernel)
        # when the guest first runs: with -S they are not in RAM before cont.
        for gpa, data in image.chunks:
            ram.write(gpa, data)

    cpu = services_of(pc).get(GUEST_CPU)
    cpu.boot_protected_mode(image.entry, dict(image.registers), scratch=BOOT_SCRATCH,
                            firmware=copy_into_ram)
    return True
