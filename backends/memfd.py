"""``memory-backend-memfd``: memory from ``memfd_create`` (QEMU's ``backends/hostmem-memfd.c``).

The type exists only where the host supports sealing memfds, and its
``hugetlb``/``hugetlbsize`` properties only where ``MFD_HUGETLB`` works, as
in QEMU (checked when the types are registered, never at import).  ``share``
defaults to true and ``seal`` to true: the file cannot grow or shrink once
made (``F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL``).

As in QEMU 7.2 the memfd is sized to ``size`` exactly and then mapped like a
file, so a size that is not a multiple of the page size fails with the
file backend's ``backing store size ... does not match`` message.
"""

from __future__ import annotations

import errno
import fcntl
import os
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
from qom import BOOL, SIZE, InvalidPropertyValue, Object, ObjectClass, TypeInfo, TypeRegistry

TYPE_MEMORY_BACKEND_MEMFD: Final = "memory-backend-memfd"
MFD_HUGE_SHIFT: Final = 26
SEALS: Final = fcntl.F_SEAL_GROW | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_SEAL


def memfd_supported(flags: int) -> bool:
    """QEMU's ``qemu_memfd_check``: can a memfd with ``flags`` be made here?"""
    create = getattr(os, "memfd_create", None)
    if create is None:
        return False
    try:
        fd = create("test", flags | os.MFD_CLOEXEC)
    except OSError:
        return False
    os.close(fd)
    return True


def memfd_create(name: str, size: int, *, hugetlb: bool, hugetlbsize: int,
                 seals: int) -> int:
    """QEMU's ``qemu_memfd_create``: a sized (and sealed) memfd, or QEMU's error."""
    shift = (hugetlbsize & -hugetlbsize).bit_length() - 1 if hugetlbsize else 0
    if shift and 1 << shift != hugetlbsize:
        raise MemoryBackendError("Hugepage size must be a power of 2")
    flags = os.MFD_CLOEXEC
    if seals:
        flags |= os.MFD_ALLOW_SEALING
    if hugetlb:
        flags |= os.MFD_HUGETLB | (shift << MFD_HUGE_SHIFT)
    try:
        fd = os.memfd_create(name, flags)
    except OSError as err:
        raise errno_message(f"failed to create memfd with flags 0x{flags:x}", err) from err
    try:
        try:
            os.ftruncate(fd, size)
        except OverflowError as err:
            # off_t is signed: the kernel would say EINVAL.
            raise errno_message(f"failed to resize memfd to {size}",
                                host.os_error(errno.EINVAL)) from err
        except OSError as err:
            raise errno_message(f"failed to resize memfd to {size}", err) from err
        if seals:
            try:
                fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals)
            except OSError as err:
                raise errno_message(f"failed to add seals 0x{seals:x}", err) from err
    except BaseException:
        os.close(fd)
        raise
    return fd


@attrs.define(eq=False, repr=False)
class MemfdBackend(MemoryBackend):
    """``memory-backend-memfd``."""

    hugetlb: bool = False
    hugetlbsize: int = 0
    seal: bool = True

    def alloc(self) -> HostMapping:
        """QEMU's ``memfd_backend_memory_alloc``."""
        if not self.size:
            raise MemoryBackendError("can't create backend with size 0")
        fd = memfd_create(TYPE_MEMORY_BACKEND_MEMFD, self.size, hugetlb=self.hugetlb,
                          hugetlbsize=self.hugetlbsize, seals=SEALS if self.seal else 0)
        try:
            mapping = ram_alloc_from_fd(self, fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return mapping

    def plan_alloc(self) -> HostMemory:
        """:meth:`alloc`'s checks: a real memfd of the size (sparse: it holds no
        memory until mapped and touched) is made, checked and closed, unmapped."""
        if not self.size:
            raise MemoryBackendError("can't create backend with size 0")
        fd = memfd_create(TYPE_MEMORY_BACKEND_MEMFD, self.size, hugetlb=self.hugetlb,
                          hugetlbsize=self.hugetlbsize, seals=SEALS if self.seal else 0)
        try:
            return plan_from_fd(self, fd)
        finally:
            os.close(fd)

    def refuse_before_visit(self, name: str) -> str | None:
        if name == "hugetlbsize" and self.inited:
            return "cannot change property value"
        return super().refuse_before_visit(name)

    def set_hugetlb(self, value: bool) -> None:
        """``hugetlb``: accepted any time (QEMU 7.2 checks nothing), used at complete."""
        self.hugetlb = value

    def set_hugetlbsize(self, value: int) -> None:
        """``hugetlbsize``: only before complete, and not 0."""
        if self.inited:
            raise InvalidPropertyValue("cannot change property value")
        if not value:
            raise InvalidPropertyValue(
                f"Property '{self.type_name}.hugetlbsize' doesn't take value '0'")
        self.hugetlbsize = value

    def set_seal(self, value: bool) -> None:
        """``seal``: any time; used at complete."""
        self.seal = value


def _memfd_class_init(klass: ObjectClass, data: Any) -> None:
    # QAPI order of MemoryBackendMemfdProperties' own members.
    add = klass.add_property
    if data.get("hugetlb"):
        add(backend_property("hugetlb", BOOL, "bool", "hugetlb", MemfdBackend.set_hugetlb,
                             description="Use huge pages"))
        add(backend_property("hugetlbsize", SIZE, "int", "hugetlbsize",
                             MemfdBackend.set_hugetlbsize,
                             description="Huge pages size (ex: 2M, 1G)"))
    add(backend_property("seal", BOOL, "bool", "seal", MemfdBackend.set_seal,
                         description="Seal growing & shrinking"))


def _memfd_instance_init(obj: Object) -> None:
    assert isinstance(obj, MemfdBackend)
    obj.share = True


@hookimpl
def qom_register_types(registry: TypeRegistry) -> None:
    """Register ``memory-backend`` (if needed) and, if the host can, ``memory-backend-memfd``."""
    register_base_types(registry)
    if not memfd_supported(os.MFD_ALLOW_SEALING if hasattr(os, "MFD_ALLOW_SEALING") else 0):
        return
    registry.register(TypeInfo(
        name=TYPE_MEMORY_BACKEND_MEMFD, parent="memory-backend", impl=MemfdBackend,
        class_init=_memfd_class_init, instance_init=_memfd_instance_init,
        class_data={"hugetlb": memfd_supported(os.MFD_HUGETLB)},
    ))
