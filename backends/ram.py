"""``memory-backend-ram``: anonymous host memory (QEMU's ``backends/hostmem-ram.c``).

The memory is an anonymous mapping, private or (``share=on``) shared, with
``MAP_NORESERVE`` for ``reserve=off``, page-rounded and aligned to 2 MiB
(QEMU_VMALLOC_ALIGN), so the region's alignment is 2 MiB.  Transparent huge
pages are requested with ``MADV_HUGEPAGE``, as QEMU's ``ram_block_add`` does.

A size the host cannot map (2^63 over QMP, or ``-1``, which QMP wraps to
2^64-1 and which makes QEMU 7.2 abort) gives QEMU's allocation error,
``cannot set up guest memory 'x': Cannot allocate memory``.
"""

from __future__ import annotations

import errno
from typing import Final

import attrs

from backends import host
from backends.base import MemoryBackend, MemoryBackendError, errno_message, register_base_types
from backends.host import HostMapping, HostMemory
from plugins import hookimpl
from qom import TypeInfo, TypeRegistry

TYPE_MEMORY_BACKEND_RAM: Final = "memory-backend-ram"


@attrs.define(eq=False, repr=False)
class RamBackend(MemoryBackend):
    """``memory-backend-ram``."""

    def _check_alloc(self) -> None:
        """What :meth:`alloc` checks before it maps (shared with :meth:`plan_alloc`)."""
        if not self.size:
            raise MemoryBackendError("can't create backend with size 0")
        self.check_noreserve(page_size=host.PAGE_SIZE, shared=self.share, readonly=False)
        try:
            host.check_mappable(host.round_up(self.size, host.PAGE_SIZE), host.VMALLOC_ALIGN)
        except OSError as err:
            raise self._setup_error(err) from err

    def _setup_error(self, err: OSError) -> MemoryBackendError:
        return errno_message(f"cannot set up guest memory '{self.region_name}'", err)

    def alloc(self) -> HostMapping:
        """QEMU's ``ram_backend_memory_alloc`` and ``qemu_anon_ram_alloc``."""
        self._check_alloc()
        try:
            mapping = HostMapping(size=self.size, align=host.VMALLOC_ALIGN, shared=self.share,
                                  noreserve=not self.reserve)
        except OSError as err:
            raise self._setup_error(err) from err
        except OverflowError as err:
            raise self._setup_error(host.os_error(errno.ENOMEM)) from err
        mapping.madvise(host.MADV_HUGEPAGE)
        return mapping

    def plan_alloc(self) -> HostMemory:
        """:meth:`alloc`'s checks; the memory it would map (2 MiB aligned), unmapped."""
        self._check_alloc()
        return host.planned_memory(size=self.size, align=host.VMALLOC_ALIGN,
                                   shared=self.share)


@hookimpl
def qom_register_types(registry: TypeRegistry) -> None:
    """Register ``memory-backend`` (if needed) and ``memory-backend-ram``."""
    register_base_types(registry)
    registry.register(TypeInfo(name=TYPE_MEMORY_BACKEND_RAM, parent="memory-backend",
                               impl=RamBackend))
