"""Host memory primitives: mappings, madvise, mbind and fstatfs through ctypes.

Python's :mod:`mmap` cannot place a mapping at an address, so a backend's
memory is made the way QEMU's ``qemu_ram_mmap`` makes it:

1. reserve ``size + align`` bytes of address space (an anonymous,
   ``MAP_NORESERVE`` :class:`mmap.mmap`, so Python owns and finally unmaps
   the whole range);
2. map the real memory (anonymous or a file, shared or private, with or
   without ``MAP_NORESERVE``/``MAP_SYNC``) with ``MAP_FIXED`` at the first
   ``align``-aligned address inside it, through libc's ``mmap``;
3. turn the rest of the reservation into ``PROT_NONE`` guard space.

Keeping a Python ``mmap`` object as the owner is what makes the memory safe
to hand out: a :class:`memoryview` of it pins it, so closing while someone
still holds a view fails (:class:`BufferError`) instead of leaving a
dangling pointer; :meth:`HostMapping.release` then leaves the final unmap to
the garbage collector.  Code that keeps only the raw :attr:`HostMemory.address`
(the Unicorn address space) must stop using it before the backend goes;
the backend's ``mapped`` flag is what guarantees that.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
from typing import Final

import attrs

from qom.reprs import FieldsRepr

PAGE_SIZE: Final = mmap.PAGESIZE
#: QEMU_VMALLOC_ALIGN on x86-64 Linux: anonymous RAM is aligned to 2 MiB.
VMALLOC_ALIGN: Final = 2 * 1024 * 1024
HUGETLBFS_MAGIC: Final = 0x958458F6

PROT_NONE: Final = 0
PROT_READ: Final = 1
PROT_WRITE: Final = 2
MAP_SHARED: Final = 0x01
MAP_PRIVATE: Final = 0x02
MAP_SHARED_VALIDATE: Final = 0x03
MAP_FIXED: Final = 0x10
MAP_ANONYMOUS: Final = 0x20
MAP_NORESERVE: Final = 0x4000
MAP_SYNC: Final = 0x80000

MADV_REMOVE: Final = 9
MADV_MERGEABLE: Final = 12
MADV_UNMERGEABLE: Final = 13
MADV_HUGEPAGE: Final = 14
MADV_DONTDUMP: Final = 16
MADV_DODUMP: Final = 17
MADV_POPULATE_READ: Final = 22
MADV_POPULATE_WRITE: Final = 23

#: HostMemPolicy values are the kernel's MPOL_* numbers.
MPOL_MF_STRICT: Final = 1 << 0
MPOL_MF_MOVE: Final = 1 << 1
#: QEMU's MAX_NODES: host-nodes values must be below it.
MAX_NODES: Final = 128
_SYS_MBIND: Final = 237  # x86-64
_ULONG_BITS: Final = ctypes.sizeof(ctypes.c_ulong) * 8

OVERCOMMIT_MEMORY_PATH: Final = "/proc/sys/vm/overcommit_memory"


class _Libc:
    """Typed handles on the few libc functions we need (made once per use, no globals)."""

    def __init__(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self.mmap = libc.mmap
        self.mmap.restype = ctypes.c_void_p
        self.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                              ctypes.c_int, ctypes.c_long]
        self.mprotect = libc.mprotect
        self.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        # ctypes releases the GIL around these calls, so prealloc threads really
        # run in parallel.
        self.madvise = libc.madvise
        self.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        self.mincore = libc.mincore
        self.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t,
                                 ctypes.POINTER(ctypes.c_ubyte)]
        self.syscall = libc.syscall
        self.syscall.restype = ctypes.c_long
        self.fstatfs = libc.fstatfs
        self.fstatfs.argtypes = [ctypes.c_int, ctypes.c_void_p]


def libc() -> _Libc:
    """The libc handles (cheap: ``CDLL(None)`` reuses the loaded C library)."""
    return _Libc()


def os_error(err: int) -> OSError:
    """An :class:`OSError` for ``err`` with the C library's ``strerror`` text."""
    return OSError(err, os.strerror(err))


def round_up(value: int, align: int) -> int:
    """``value`` rounded up to a multiple of ``align`` (a power of two or not)."""
    return -(-value // align) * align


def is_power_of_2(value: int) -> bool:
    return value > 0 and value & (value - 1) == 0


class _StatFs(ctypes.Structure):
    # struct statfs on 64-bit Linux.
    _fields_ = [
        ("f_type", ctypes.c_long), ("f_bsize", ctypes.c_long),
        ("f_blocks", ctypes.c_ulong), ("f_bfree", ctypes.c_ulong),
        ("f_bavail", ctypes.c_ulong), ("f_files", ctypes.c_ulong),
        ("f_ffree", ctypes.c_ulong), ("f_fsid", ctypes.c_int * 2),
        ("f_namelen", ctypes.c_long), ("f_frsize", ctypes.c_long),
        ("f_flags", ctypes.c_long), ("f_spare", ctypes.c_long * 4),
    ]


def fd_page_size(fd: int) -> int:
    """QEMU's ``qemu_fd_getpagesize``: ``f_bsize`` on hugetlbfs, else the host page size."""
    if fd < 0:
        return PAGE_SIZE
    buf = _StatFs()
    lib = libc()
    while True:
        if lib.fstatfs(fd, ctypes.byref(buf)) == 0:
            break
        if ctypes.get_errno() != errno.EINTR:
            return PAGE_SIZE
    if buf.f_type & 0xFFFFFFFF == HUGETLBFS_MAGIC:
        return int(buf.f_bsize)
    return PAGE_SIZE


def overcommit_mode() -> int | None:
    """The value of ``/proc/sys/vm/overcommit_memory``, or ``None`` if unreadable."""
    try:
        with open(OVERCOMMIT_MEMORY_PATH) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


@attrs.frozen(eq=False, repr=False)
class HostMemory(FieldsRepr):
    """A backend's host memory, as other plugins see it; nothing here is copied.

    :ivar address: host virtual address of the first byte (for ``mem_map_ptr``).
    :ivar size: usable bytes (the backend's ``size``).
    :ivar mapped_size: bytes actually mapped (``size`` rounded to the page size).
    :ivar align: the region's alignment: 2 MiB for RAM, the page size (or a
        larger ``align``) for file and memfd backends.  DIMM addresses must be
        multiples of it.
    :ivar page_size: the backing page size (4 KiB, or the huge page size).
    :ivar view: a memoryview of exactly ``size`` bytes (read-only when the
        backend is); slices of it keep the mapping alive.
    :ivar fd: the backing file descriptor, or -1 for anonymous memory.
    :ivar shared: ``MAP_SHARED`` (writes reach the file / other mappers).
    :ivar readonly: mapped without ``PROT_WRITE``.
    :ivar planned: what a plan (``x-plan-plug``) worked out for a backend it
        did not allocate: no memory behind it (``address`` 0, ``fd`` -1, an
        empty ``view``), never to be mapped.
    """

    address: int
    size: int
    mapped_size: int
    align: int
    page_size: int
    view: memoryview
    fd: int = -1
    shared: bool = False
    readonly: bool = False
    planned: bool = False


def planned_memory(*, size: int, align: int, page_size: int = PAGE_SIZE,
                   map_length: int | None = None, shared: bool = False,
                   readonly: bool = False) -> HostMemory:
    """The :class:`HostMemory` a :class:`HostMapping` of these arguments would have,
    with nothing allocated (``planned`` is true)."""
    length = map_length if map_length is not None else round_up(size, page_size)
    return HostMemory(address=0, size=size, mapped_size=length, align=align,
                      page_size=page_size, view=memoryview(b""), shared=shared,
                      readonly=readonly, planned=True)


def check_mappable(length: int, align: int) -> None:
    """What :class:`HostMapping` refuses before asking the kernel: a length Python's
    ``mmap`` cannot take (the kernel would refuse it anyway)."""
    if length + align > (1 << 63) - 1:
        raise os_error(errno.ENOMEM)


class HostMapping:
    """Owner of one aligned mapping (see the module docstring); release it exactly once."""

    def __init__(self, *, size: int, align: int, fd: int = -1, shared: bool = False,
                 readonly: bool = False, noreserve: bool = False, sync: bool = False,
                 page_size: int = PAGE_SIZE, map_length: int | None = None) -> None:
        """Reserve and map; raise :class:`OSError` (with the failing errno) on failure.

        :param size: the usable size reported to users.
        :param align: power-of-two alignment of the start, at least a page.
        :param fd: file to map at offset 0, or -1 for anonymous memory.
        :param map_length: bytes to map (default: ``size`` rounded to ``page_size``).
        :param sync: try ``MAP_SYNC | MAP_SHARED_VALIDATE`` first (pmem=on, share=on).
        """
        length = map_length if map_length is not None else round_up(size, page_size)
        check_mappable(length, align)
        total = length + align
        lib = libc()
        self._mmap: mmap.mmap | None = mmap.mmap(
            -1, total, flags=mmap.MAP_PRIVATE | MAP_NORESERVE,
            prot=PROT_READ | PROT_WRITE)
        self.sync_failed = False
        try:
            base = ctypes.addressof(ctypes.c_char.from_buffer(self._mmap))
            start = round_up(base, align)
            prot = PROT_READ | (0 if readonly else PROT_WRITE)
            flags = MAP_FIXED | (MAP_SHARED if shared else MAP_PRIVATE)
            if fd < 0:
                flags |= MAP_ANONYMOUS
            if noreserve:
                flags |= MAP_NORESERVE
            result = None
            if sync and shared:
                result = lib.mmap(start, length, prot, flags | MAP_SYNC | MAP_SHARED_VALIDATE,
                                  fd, 0)
                if result in (None, ctypes.c_void_p(-1).value):
                    # QEMU retries without MAP_SYNC (a non-DAX file) and warns.
                    self.sync_failed = ctypes.get_errno() == errno.EOPNOTSUPP
                    result = None
            if result is None:
                result = lib.mmap(start, length, prot, flags, fd, 0)
            if result in (None, ctypes.c_void_p(-1).value):
                raise os_error(ctypes.get_errno())
            # Guard space: nothing may use the rest of the reservation.
            if start > base:
                lib.mprotect(base, start - base, PROT_NONE)
            tail = start + length
            if base + total > tail:
                lib.mprotect(tail, base + total - tail, PROT_NONE)
        except BaseException:
            self._mmap.close()
            self._mmap = None
            raise
        view = memoryview(self._mmap)
        self._view = view[start - base:start - base + size]
        view.release()
        if readonly:
            writable = self._view
            self._view = writable.toreadonly()
            writable.release()
        self.memory = HostMemory(address=start, size=size, mapped_size=length, align=align,
                                 page_size=page_size, view=self._view, fd=fd, shared=shared,
                                 readonly=readonly)

    @property
    def released(self) -> bool:
        return self._mmap is None

    def madvise(self, advice: int, *, length: int | None = None) -> int:
        """``madvise`` over the mapped range; returns 0 or the errno (QEMU ignores most)."""
        lib = libc()
        size = self.memory.mapped_size if length is None else length
        if lib.madvise(self.memory.address, size, advice) != 0:
            return ctypes.get_errno()
        return 0

    def release(self) -> bool:
        """Unmap everything; True if unmapped now, False if a user's view delays it.

        Never raises: a view still held elsewhere keeps the memory valid until
        it is dropped, then Python unmaps it.
        """
        if self._mmap is None:
            return True
        self._view.release()
        mm, self._mmap = self._mmap, None
        try:
            mm.close()
        except BufferError:
            return False
        return True


#: where the cgroup hierarchies are mounted
CGROUP_ROOT: Final = "/sys/fs/cgroup"
#: a memory limit at or above this is "no limit" (v1 writes PAGE_COUNTER_MAX)
_NO_LIMIT: Final = 1 << 62


def _read_int(path: str) -> int | None:
    try:
        with open(path) as file:
            text = file.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None   # "max": no limit


def _inactive_file(stat_path: str, key: str) -> int:
    """Page cache the kernel would drop before it ran out (it counts as used)."""
    try:
        with open(stat_path) as file:
            for line in file:
                name, _, value = line.partition(" ")
                if name == key:
                    return int(value)
    except (OSError, ValueError):
        pass
    return 0


def cgroup_memory_headroom() -> tuple[int, str] | None:
    """How many more bytes this process's memory cgroup lets it use (the smallest
    margin of the cgroup and its ancestors, reclaimable page cache counted as
    free), and that cgroup's path; ``None`` when no memory limit applies or the
    kernel does not say (cgroup v2 ``memory.max``, or v1 ``memory.limit_in_bytes``)."""
    try:
        with open("/proc/self/cgroup") as file:
            entries = [line.rstrip("\n").split(":", 2) for line in file]
    except OSError:
        return None
    for entry in entries:
        if len(entry) != 3:
            continue
        hierarchy, controllers, path = entry
        if hierarchy == "0" and controllers == "":
            base, files = CGROUP_ROOT, ("memory.max", "memory.current", "inactive_file")
        elif "memory" in controllers.split(","):
            base = os.path.join(CGROUP_ROOT, "memory")
            files = ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file")
        else:
            continue
        best: tuple[int, str] | None = None
        parts = [part for part in path.split("/") if part]
        for depth in range(len(parts), -1, -1):
            group = "/" + "/".join(parts[:depth])
            directory = os.path.join(base, *parts[:depth])
            limit = _read_int(os.path.join(directory, files[0]))
            usage = _read_int(os.path.join(directory, files[1]))
            if limit is None or usage is None or limit >= _NO_LIMIT:
                continue
            used = usage - _inactive_file(os.path.join(directory, "memory.stat"), files[2])
            margin = max(0, limit - max(used, 0))
            if best is None or margin < best[0]:
                best = (margin, group)
        if best is not None:
            return best
    return None


def resident_pages(address: int, length: int, page_size: int = PAGE_SIZE) -> int:
    """How many pages of ``[address, address+length)`` are resident (``mincore``)."""
    pages = round_up(length, PAGE_SIZE) // PAGE_SIZE
    vec = (ctypes.c_ubyte * pages)()
    if libc().mincore(address, length, vec) != 0:
        raise os_error(ctypes.get_errno())
    resident = sum(1 for b in vec if b & 1)
    return resident * PAGE_SIZE // page_size


def mbind(address: int, length: int, mode: int, nodes: frozenset[int]) -> None:
    """``mbind(2)`` with QEMU's flags and nodemask sizing; raise OSError on failure.

    QEMU passes ``maxnode = last node + 2`` because of an old kernel quirk that
    drops the last node of the mask.
    """
    maxnode = max(nodes) + 1
    words = (MAX_NODES + 1 + _ULONG_BITS - 1) // _ULONG_BITS
    mask = (ctypes.c_ulong * words)()
    for node in nodes:
        mask[node // _ULONG_BITS] |= 1 << (node % _ULONG_BITS)
    result = libc().syscall(
        ctypes.c_long(_SYS_MBIND), ctypes.c_void_p(address), ctypes.c_ulong(length),
        ctypes.c_long(mode), mask, ctypes.c_ulong(maxnode + 1),
        ctypes.c_uint(MPOL_MF_STRICT | MPOL_MF_MOVE))
    if result != 0:
        raise os_error(ctypes.get_errno())
