"""``memory-backend-file``: memory backed by a file (QEMU's ``backends/hostmem-file.c``).

``mem-path`` names a file or a directory:

* an existing file is opened read-write (read-only with ``readonly=on``) and
  used as it is: a file smaller than ``size`` is an error, a larger one is
  never truncated;
* a missing file is created (``O_CREAT|O_EXCL``, mode 0644; QEMU 7.2 does
  this even with ``readonly=on``), sized to ``size``, and unlinked again if
  allocation fails;
* a directory gets a unique ``qemu_back_mem.<id>.XXXXXX`` file, unlinked at
  once, so nothing is left on disk.

``share=on`` maps the file ``MAP_SHARED``, so writes through the backend's
memory reach the file; ``share=off`` maps it private (copy-on-write).  The
page size comes from ``fstatfs``: on hugetlbfs it is the huge page size and
the region is aligned to it (or to a larger power-of-two ``align``).
``discard-data=on`` punches the file's contents out (``MADV_REMOVE``) when
the backend is deleted.  ``pmem=on`` with ``share=on`` asks for ``MAP_SYNC``
and falls back (with QEMU's warning) on a non-DAX file.  7.2 has no
``offset`` and no ``rom`` property; neither has pyqom.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from typing import Any, Final

import attrs

from backends import host
from backends.base import (
    MemoryBackend,
    MemoryBackendError,
    backend_property,
    errno_message,
    plan_from_fd,
    ram_alloc_from_fd,
    register_base_types,
)
from backends.host import HostMapping, HostMemory
from plugins import hookimpl
from qom import BOOL, SIZE, STR, InvalidPropertyValue, ObjectClass, TypeInfo, TypeRegistry

TYPE_MEMORY_BACKEND_FILE: Final = "memory-backend-file"


#: how often ``file_ram_open`` retries a path that changes under it before giving up
_OPEN_ATTEMPTS = 100


def file_ram_open(path: str, region_name: str, readonly: bool) -> tuple[int, bool]:
    """QEMU 7.2's ``file_ram_open``: ``(fd, created)`` or QEMU's error.

    Opens an existing file; creates a missing one; in a directory, makes and
    unlinks a temporary file; retries on ``EEXIST`` (someone created the file
    between our two opens) and ``EINTR``.  Beyond QEMU 7.2, which loops forever
    on a dangling symbolic link (ENOENT, then EEXIST, again and again) and
    blocks forever opening a FIFO: a dangling link is "No such file or
    directory", the retries are bounded, and anything but a regular file,
    a directory or a device is refused without blocking.
    """
    failure: OSError | None = None
    for _ in range(_OPEN_ATTEMPTS):
        try:
            fd = os.open(path, (os.O_RDONLY if readonly else os.O_RDWR) | os.O_NONBLOCK)
        except OSError as err:
            failure = err
        else:
            return _regular_or_device(fd, path), False
        if failure.errno == errno.ENOENT:
            if os.path.islink(path):
                break  # a dangling link: O_EXCL would say EEXIST for ever
            try:
                return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644), True
            except OSError as err:
                failure = err
        elif failure.errno == errno.EISDIR:
            sanitized = region_name.replace("/", "_")
            try:
                import tempfile  # with shutil, about 3 ms: only for a directory mem-path

                fd, name = tempfile.mkstemp(prefix=f"qemu_back_mem.{sanitized}.", dir=path)
            except OSError as err:
                failure = err
            else:
                os.unlink(name)
                return fd, False
        if failure.errno not in (errno.EEXIST, errno.EINTR):
            break
    assert failure is not None
    raise errno_message(f"can't open backing store {path} for guest RAM", failure)


def _regular_or_device(fd: int, path: str) -> int:
    """Keep ``fd`` if it is a regular file, a directory (``readonly=on`` opens one, as
    QEMU does, and mapping it fails later) or a device, blocking again; refuse the
    rest (a FIFO, a socket) in the words of QEMU's open error."""
    mode = os.fstat(fd).st_mode
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISCHR(mode)
            or stat.S_ISBLK(mode)):
        os.close(fd)
        raise MemoryBackendError(f"can't open backing store {path} for guest RAM: "
                                 "not a regular file, directory or device")
    os.set_blocking(fd, True)
    return fd


def _is_empty_file(fd: int) -> bool:
    status = os.fstat(fd)
    return stat.S_ISREG(status.st_mode) and status.st_size == 0


@attrs.define(eq=False, repr=False)
class FileBackend(MemoryBackend):
    """``memory-backend-file``."""

    mem_path: str | None = None
    align: int = 0
    discard_data: bool = False
    pmem: bool = False
    readonly: bool = False
    _created: bool = attrs.field(default=False, init=False)
    _grown: bool = attrs.field(default=False, init=False)   # an empty user file, sized

    def complete(self) -> None:
        """Allocate; if a later step fails, also unlink a file this backend created
        and shrink back an existing empty file it grew.

        QEMU 7.2 unlinks a created file only when the allocation itself fails
        and keeps it when a later check (NUMA, prealloc) fails, and leaves an
        empty user file grown to ``size``; pyqom leaves nothing behind after any
        failed ``object-add``.
        """
        try:
            super().complete()
        except BaseException:
            if self._created and self.mem_path:
                with contextlib.suppress(OSError):
                    os.unlink(self.mem_path)
            elif self._grown and self.mem_path:
                with contextlib.suppress(OSError):
                    os.truncate(self.mem_path, 0)
            raise
        finally:
            self._created = self._grown = False

    def alloc(self) -> HostMapping:
        """QEMU's ``file_backend_memory_alloc`` and ``qemu_ram_alloc_from_file``."""
        if not self.size:
            raise MemoryBackendError("can't create backend with size 0")
        if not self.mem_path:
            raise MemoryBackendError("mem-path property not set")
        fd, created = file_ram_open(self.mem_path, self.region_name, self.readonly)
        self._created = created
        self._grown = not created and _is_empty_file(fd)
        try:
            mapping = ram_alloc_from_fd(self, fd, align=self.align, readonly=self.readonly,
                                        pmem=self.pmem)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return mapping

    def charges_memory(self, page_size: int) -> bool:
        """A private mapping's pages are copies the cgroup counts; a shared file's
        are page cache the kernel can write back (a shared file on tmpfs is not
        checked)."""
        return not self.share and super().charges_memory(page_size)

    def plan_alloc(self) -> HostMemory:
        """:meth:`alloc`'s checks on the file, with nothing mapped or grown.

        The file is opened as :meth:`alloc` opens it (``file_ram_open``): a
        ``mem-path`` that does not exist yet is created, as the real
        ``object-add`` creates it, and removed again before this returns; a
        directory gets QEMU's temporary file, unlinked at once, as always.
        """
        if not self.size:
            raise MemoryBackendError("can't create backend with size 0")
        if not self.mem_path:
            raise MemoryBackendError("mem-path property not set")
        fd, created = file_ram_open(self.mem_path, self.region_name, self.readonly)
        try:
            return plan_from_fd(self, fd, align=self.align, readonly=self.readonly)
        finally:
            os.close(fd)
            if created:
                with contextlib.suppress(OSError):
                    os.unlink(self.mem_path)

    def on_unparent(self) -> None:
        """QEMU's ``file_backend_unparent``: ``discard-data=on`` punches out the file
        (not a planned backend's: a plan mapped nothing)."""
        memory = self.host_memory
        if memory is not None and not memory.planned and self.discard_data:
            host.libc().madvise(memory.address, memory.size, host.MADV_REMOVE)

    def refuse_before_visit(self, name: str) -> str | None:
        if name == "align" and self.inited:
            return f"cannot change property '{name}' of {self.type_name}"
        return super().refuse_before_visit(name)

    def _refuse(self, name: str, period: str = "") -> None:
        if self.inited:
            raise InvalidPropertyValue(
                f"cannot change property '{name}' of {self.type_name}{period}")

    def set_mem_path(self, value: str) -> None:
        """``mem-path``: only before complete."""
        self._refuse("mem-path")
        self.mem_path = value

    def set_align(self, value: int) -> None:
        """``align``: only before complete; checked against the page size at complete."""
        self._refuse("align")
        self.align = value

    def set_pmem(self, value: bool) -> None:
        """``pmem``: only before complete."""
        # Debian's 7.2 is built with libpmem, so pmem=on is accepted.
        self._refuse("pmem", ".")
        self.pmem = value

    def set_readonly(self, value: bool) -> None:
        """``readonly``: only before complete."""
        self._refuse("readonly", ".")
        self.readonly = value

    def set_discard_data(self, value: bool) -> None:
        """``discard-data``: any time; used when the backend is deleted."""
        self.discard_data = value


def _file_class_init(klass: ObjectClass, data: Any) -> None:
    # QAPI order of MemoryBackendFileProperties' own members.
    add = klass.add_property
    add(backend_property("align", SIZE, "int", "align", FileBackend.set_align))
    add(backend_property("discard-data", BOOL, "bool", "discard_data",
                         FileBackend.set_discard_data))
    add(backend_property("mem-path", STR, "string", "mem_path", FileBackend.set_mem_path,
                         mandatory=True, getter=lambda obj: obj.mem_path or ""))
    add(backend_property("pmem", BOOL, "bool", "pmem", FileBackend.set_pmem))
    add(backend_property("readonly", BOOL, "bool", "readonly", FileBackend.set_readonly))


@hookimpl
def qom_register_types(registry: TypeRegistry) -> None:
    """Register ``memory-backend`` (if needed) and ``memory-backend-file``."""
    register_base_types(registry)
    registry.register(TypeInfo(name=TYPE_MEMORY_BACKEND_FILE, parent="memory-backend",
                               impl=FileBackend, class_init=_file_class_init))
