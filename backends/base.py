"""The abstract ``memory-backend`` type (QEMU's ``backends/hostmem.c``).

A backend is a user-creatable object that owns host memory.  Its properties
are set first; ``complete()`` (run by ``object-add``) then allocates the
memory through the subclass hook :meth:`MemoryBackend.alloc` and applies, in
QEMU 7.2's order: ``madvise`` MERGEABLE / DONTDUMP, the NUMA policy
(``mbind``), then preallocation.  Afterwards the memory is
:attr:`MemoryBackend.host_memory`, a :class:`~backends.host.HostMemory` that
other plugins map without copying.

Frontends (pc-dimm, the machine's RAM) call :meth:`MemoryBackend.set_mapped`
while they use a backend; a mapped backend cannot be deleted and must not be
given to a second frontend (``is_mapped()``).

Deviations from QEMU 7.2, on purpose:

* ``size=-1`` (2^64-1 over QMP) makes QEMU 7.2 abort (``find_ram_offset:
  Assertion 'size != 0'``); pyqom answers like it does for 2^63:
  ``cannot set up guest memory 'x': Cannot allocate memory`` (file and memfd
  backends give their own allocation errors).
* When ``complete()`` fails after allocating (a NUMA check), QEMU keeps the
  memory until the object is finalized a moment later; pyqom frees it at once.
* ``prealloc-context`` is a ``link<thread-context>`` as in 7.2: prealloc
  threads are started in that context (``backends.thread_context``) and run
  with its CPU affinity.
* ``preferred`` binds with ``MPOL_PREFERRED`` (QEMU may use
  ``MPOL_PREFERRED_MANY`` when libnuma has it).
* A ``reserve=off`` backend on a host with ``overcommit_memory=2`` fails with
  the message QEMU prints (``Skipping reservation of swap space ...``).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from typing import Any, Final

import attrs

from backends import host
from backends.host import HostMapping, HostMemory
from backends.prealloc import ThreadStarter, prealloc
from qom import (
    BOOL,
    SIZE,
    TYPE_USER_CREATABLE,
    UINT16,
    UINT32,
    UINT64,
    EnumKind,
    InvalidPropertyValue,
    ListKind,
    Object,
    ObjectClass,
    ObjectTree,
    QomError,
    TypeInfo,
    TypeRegistry,
    link_property,
)
from qom.logs import LazyLogger
from qom.properties import Property
from qom.values import Kind

TYPE_MEMORY_BACKEND: Final = "memory-backend"
TYPE_MEMORY_REGION: Final = "memory-region"
TYPE_THREAD_CONTEXT: Final = "thread-context"

HOST_MEM_POLICY: Final = EnumKind("HostMemPolicy", ("default", "preferred", "bind", "interleave"))
#: HostMemPolicy name -> the kernel's MPOL_* mode.
MPOL_MODES: Final = {"default": 0, "preferred": 1, "bind": 2, "interleave": 3}
HOST_NODES: Final = ListKind(UINT16)

_log = LazyLogger("backends")


class MemoryBackendError(QomError):
    """Allocating or completing a backend failed; ``cause`` is the OSError, if any."""

    def __init__(self, message: str, *, cause: OSError | None = None) -> None:
        super().__init__(message)
        self.cause = cause


def errno_message(message: str, err: OSError | int) -> MemoryBackendError:
    """QEMU's ``error_setg_errno``: ``<message>: <strerror>``."""
    code = err if isinstance(err, int) else (err.errno or errno.EIO)
    cause = err if isinstance(err, OSError) else host.os_error(err)
    return MemoryBackendError(f"{message}: {os.strerror(code)}", cause=cause)


# ---------------------------------------------------------------------------
# memory-region: the child "<name>[0]" a backend gets at complete()
# ---------------------------------------------------------------------------


@attrs.define(eq=False, repr=False)
class MemoryRegion(Object):
    """A read-only view of a backend's region (QEMU's ``memory-region`` object).

    pyqom has no memory API; the object exists so that ``qom-list`` of a
    backend shows ``mem1[0]`` as QEMU does, with QEMU's ``addr``, ``size``,
    ``priority`` and ``container`` properties.
    """

    region_size: int = 0


def _memory_region_class_init(klass: ObjectClass, data: Any) -> None:
    klass.add_property(link_property("container", TYPE_MEMORY_REGION,
                                     get_target=lambda obj: None, set_target=None))
    klass.add_property(Property(name="addr", type="uint64", kind=UINT64,
                                getter=lambda obj: 0))
    klass.add_property(Property(name="size", type="uint64", kind=UINT64,
                                getter=lambda obj: int(getattr(obj, "region_size", 0))))
    klass.add_property(Property(name="priority", type="uint32", kind=UINT32,
                                getter=lambda obj: 0))


def escape_region_name(name: str) -> str:
    """QEMU's ``memory_region_escape_name``: ``/ [ \\ ]`` become ``\\xNN``."""
    return "".join(f"\\x{ord(c):02x}" if c in "/[\\]" else c for c in name)


# ---------------------------------------------------------------------------
# memory-backend
# ---------------------------------------------------------------------------


@attrs.define(eq=False, repr=False)
class MemoryBackend(Object):
    """An abstract memory backend; concrete types override :meth:`alloc`.

    Attribute names follow the properties (``prealloc_threads`` is
    ``prealloc-threads``); set them through the property table so QEMU's
    rules apply.
    """

    size: int = 0
    merge: bool = True
    dump: bool = True
    prealloc: bool = False
    prealloc_threads: int = 1
    prealloc_context: Object | None = None
    share: bool = False
    reserve: bool = True
    host_nodes: frozenset[int] = frozenset()
    policy: str = "default"
    use_canonical_path: bool = False
    #: set by frontends (pc-dimm, the machine) while they use the memory
    mapped: bool = attrs.field(default=False, init=False)
    _mapping: HostMapping | None = attrs.field(default=None, init=False)
    _region: Object | None = attrs.field(default=None, init=False)
    #: the file or memfd behind the memory, -1 for anonymous memory
    _fd: int = attrs.field(default=-1, init=False)
    #: what :meth:`plan_complete` found, while a plan holds the backend
    _planned: HostMemory | None = attrs.field(default=None, init=False)

    # -- state -----------------------------------------------------------

    @property
    def inited(self) -> bool:
        """True once ``complete()`` allocated the memory (QEMU's ``mr_inited``)."""
        return self._mapping is not None

    @property
    def host_memory(self) -> HostMemory | None:
        """The host memory, or ``None`` before ``complete()`` / after release.

        While a plan (``x-plan-plug``) holds this backend, the planned
        :class:`~backends.host.HostMemory` :meth:`plan_complete` worked out
        (``planned`` true): what the memory would be, with no memory behind it.
        """
        if self._mapping is not None:
            return self._mapping.memory
        return self._planned

    def is_mapped(self) -> bool:
        """True while a frontend uses this backend (QEMU's ``host_memory_backend_is_mapped``)."""
        return self.mapped

    def set_mapped(self, mapped: bool) -> None:
        """Mark the backend used (``True``) or free (``False``) by a frontend."""
        self.mapped = mapped

    def can_be_deleted(self) -> bool:
        """user-creatable: ``object-del`` refuses while the backend is mapped."""
        return not self.mapped

    @property
    def region_name(self) -> str:
        """QEMU's ``host_memory_backend_get_name``: the id, or the canonical path."""
        if self.use_canonical_path:
            return self.canonical_path or ""
        return self.name_in_parent or ""

    # -- complete / alloc --------------------------------------------------

    def alloc(self) -> HostMapping:
        """Allocate the host memory; raise :class:`MemoryBackendError` with QEMU's message.

        Subclasses must clean up after themselves when they fail (close fds,
        unlink files they created), so a failed ``object-add`` leaves nothing.
        """
        # Only concrete backend types are instantiated, and each overrides this.
        raise TypeError(f"memory backend type '{self.type_name}' does not implement alloc()")

    def plan_alloc(self) -> HostMemory:
        """What :meth:`alloc` would give, by the same checks in the same order, without
        allocating or mapping anything; raise what :meth:`alloc` would raise.

        Backend types that cannot be planned (their allocation changes the host,
        such as creating a file) raise :class:`MemoryBackendError` saying so.
        """
        raise MemoryBackendError(f"x-plan-plug: {self.type_name} cannot be planned;"
                                 " add it with object-add, then plan the device")

    def plan_complete(self) -> HostMemory:
        """The dry run of :meth:`complete`: its checks, in its order, with nothing
        allocated, mapped, bound or populated.  Until :meth:`release_memory`,
        :attr:`host_memory` is the returned planned memory.

        Beyond the checks, what only the host can tell (an ``mmap`` or ``mbind``
        the kernel refuses) is not predicted.
        """
        planned = self.plan_alloc()
        self._check_numa_policy()
        if self.prealloc:
            self._check_prealloc_headroom(planned.size, planned.page_size)
        self._planned = planned
        return planned

    def complete(self) -> None:
        """user-creatable: allocate, then madvise, NUMA policy and prealloc (QEMU's order)."""
        if self._mapping is not None:
            return
        mapping = self.alloc()
        self._mapping = mapping
        try:
            self._add_region()
            if self.merge:
                mapping.madvise(host.MADV_MERGEABLE)
            if not self.dump:
                mapping.madvise(host.MADV_DONTDUMP)
            self._apply_numa(mapping)
            if self.prealloc:
                self._do_prealloc()
        except BaseException:
            self.release_memory()
            raise

    def _add_region(self) -> None:
        if self.tree is None or TYPE_MEMORY_REGION not in self.tree.registry:
            return
        region = self.tree.new(TYPE_MEMORY_REGION, region_size=self.size)
        self.add_child(f"{escape_region_name(self.region_name)}[*]", region)
        self._region = region

    def _check_numa_policy(self) -> None:
        nodes = self.host_nodes
        if nodes and self.policy == "default":
            raise MemoryBackendError(
                "host-nodes must be empty for policy default, or you should explicitly"
                " specify a policy other than default")
        if not nodes and self.policy != "default":
            raise MemoryBackendError(f"host-nodes must be set for policy {self.policy}")

    def _apply_numa(self, mapping: HostMapping) -> None:
        self._check_numa_policy()
        nodes = self.host_nodes
        if not nodes:
            return
        memory = mapping.memory
        try:
            host.mbind(memory.address, memory.size, MPOL_MODES[self.policy], nodes)
        except OSError as err:
            raise errno_message("cannot bind memory to host NUMA nodes", err) from err

    def charges_memory(self, page_size: int) -> bool:
        """Whether populating this backend (of ``page_size`` pages) takes memory its
        cgroup counts and the kernel cannot drop (anonymous or shared memory; not
        a shared file's page cache, not huge pages)."""
        return page_size == host.PAGE_SIZE

    def _check_prealloc_headroom(self, size: int, page_size: int) -> None:
        """Beyond QEMU 7.2, whose process the kernel OOM-kills when the cgroup's
        limit is reached half-way through: refuse up front."""
        if not self.charges_memory(page_size):
            return
        headroom = host.cgroup_memory_headroom()
        if headroom is not None and size > headroom[0]:
            raise MemoryBackendError(
                "qemu_prealloc_mem: preallocating memory failed: Cannot allocate memory"
                f" (the memory cgroup {headroom[1]} allows {headroom[0]} more bytes,"
                f" {size} asked)")

    def _do_prealloc(self) -> None:
        memory = self._mapping.memory if self._mapping is not None else None
        assert memory is not None
        self._check_prealloc_headroom(memory.size, memory.page_size)
        context = self.prealloc_context
        try:
            prealloc(memory.address, memory.size, memory.page_size,
                     threads=self.prealloc_threads, view=memory.view,
                     context=context if isinstance(context, ThreadStarter) else None)
        except OSError as err:
            raise errno_message("qemu_prealloc_mem: preallocating memory failed", err) from err

    def check_noreserve(self, *, page_size: int, shared: bool, readonly: bool) -> None:
        """QEMU's ``map_noreserve_effective``: refuse ``reserve=off`` where it cannot work."""
        if self.reserve or page_size != host.PAGE_SIZE or shared or readonly:
            return
        if host.overcommit_mode() == 2:
            raise MemoryBackendError(
                "Skipping reservation of swap space is not supported:"
                f' "{host.OVERCOMMIT_MEMORY_PATH}" is "2"')

    def release_memory(self) -> None:
        """Unmap and close everything this backend owns (idempotent); forget a plan."""
        self._planned = None
        region, self._region = self._region, None
        if region is not None and region.parent is self:
            region.unparent()
        mapping, self._mapping = self._mapping, None
        if mapping is not None:
            if not mapping.release():
                _log.warning("%s: memory still viewed by someone; unmapped when released",
                             self.region_name or self.type_name)
        self.close_backing()

    def close_backing(self) -> None:
        """Close the backing file descriptor, if any (after the unmap)."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    # -- property setters with QEMU's rules ---------------------------------

    def refuse_before_visit(self, name: str) -> str | None:
        """The message for properties whose setter refuses *before* reading the value.

        QEMU's size (and file ``align``, memfd ``hugetlbsize``) setters check
        "already allocated" first, so even a malformed value gets this message.
        """
        if name == "size" and self.inited:
            return f"cannot change property {name} of {self.type_name} "
        return None

    def check_property_set(self, prop: Property) -> None:
        message = self.refuse_before_visit(prop.name)
        if message is not None:
            raise InvalidPropertyValue(message)

    def _nonzero(self, name: str, value: int) -> None:
        if value == 0:
            raise InvalidPropertyValue(
                f"property '{name}' of {self.type_name} doesn't take value '0'")

    def set_size(self, value: int) -> None:
        """``size``: refused after complete (before the value is read) and when 0."""
        message = self.refuse_before_visit("size")
        if message is not None:
            raise InvalidPropertyValue(message)
        self._nonzero("size", value)
        self.size = value

    def set_merge(self, value: bool) -> None:
        """``merge``: after complete, ``madvise`` MERGEABLE/UNMERGEABLE at once."""
        if self._mapping is not None and value != self.merge:
            self._mapping.madvise(host.MADV_MERGEABLE if value else host.MADV_UNMERGEABLE)
        self.merge = value

    def set_dump(self, value: bool) -> None:
        """``dump``: after complete, ``madvise`` DODUMP/DONTDUMP at once."""
        if self._mapping is not None and value != self.dump:
            self._mapping.madvise(host.MADV_DODUMP if value else host.MADV_DONTDUMP)
        self.dump = value

    def set_prealloc(self, value: bool) -> None:
        """``prealloc``: incompatible with ``reserve=off``; after complete ``on`` populates now."""
        if not self.reserve and value:
            raise InvalidPropertyValue("'prealloc=on' and 'reserve=off' are incompatible")
        if self._mapping is None:
            self.prealloc = value
            return
        # After complete, "on" populates now; "off" changes nothing (as in QEMU).
        if value and not self.prealloc:
            self._do_prealloc()
            self.prealloc = True

    def set_prealloc_threads(self, value: int) -> None:
        """``prealloc-threads``: any time, but not 0."""
        self._nonzero("prealloc-threads", value)
        self.prealloc_threads = value

    def set_share(self, value: bool) -> None:
        """``share``: only before complete."""
        self._refuse_if_inited()
        self.share = value

    def set_reserve(self, value: bool) -> None:
        """``reserve``: only before complete, and not off while ``prealloc`` is on."""
        self._refuse_if_inited()
        if self.prealloc and not value:
            raise InvalidPropertyValue("'prealloc=on' and 'reserve=off' are incompatible")
        self.reserve = value

    def set_host_nodes(self, value: list[int]) -> None:
        """``host-nodes``: nodes below 128, added to those set before; applied at complete."""
        for node in value:
            if node >= host.MAX_NODES:
                raise InvalidPropertyValue(f"Invalid host-nodes value: {node}")
        # QEMU sets bits in the existing bitmap: nodes accumulate.
        self.host_nodes = self.host_nodes | frozenset(value)

    def _refuse_if_inited(self) -> None:
        if self.inited:
            raise InvalidPropertyValue("cannot change property value")


Setter = Callable[[Any, Any], None]


def backend_property(name: str, kind: Kind, type: str, attr: str, setter: Setter | None, *,
                     description: str | None = None, mandatory: bool = False,
                     getter: Callable[[Any], Any] | None = None) -> Property:
    """A class property over attribute ``attr`` with a QEMU-style setter."""
    return Property(
        name=name, type=type, kind=kind,
        getter=getter if getter is not None else (lambda obj: getattr(obj, attr)),
        setter=setter, description=description, mandatory=mandatory,
    )


def _set_attr(attr: str) -> Setter:
    def setter(obj: Any, value: Any) -> None:
        setattr(obj, attr, value)
    return setter


def _set_prealloc_context(obj: Any, target: Object | None) -> None:
    obj.prealloc_context = target


def _memory_backend_class_init(klass: ObjectClass, data: Any) -> None:
    # QAPI schema order of MemoryBackendProperties, so object-add checks
    # members in QEMU's order.
    add = klass.add_property
    add(backend_property("dump", BOOL, "bool", "dump", MemoryBackend.set_dump,
                         description="Set to 'off' to exclude from core dump"))
    add(backend_property("host-nodes", HOST_NODES, "int", "host_nodes",
                         MemoryBackend.set_host_nodes,
                         description="Binds memory to the list of NUMA host nodes",
                         getter=lambda obj: sorted(obj.host_nodes)))
    add(backend_property("merge", BOOL, "bool", "merge", MemoryBackend.set_merge,
                         description="Mark memory as mergeable"))
    add(backend_property("policy", HOST_MEM_POLICY, "HostMemPolicy", "policy",
                         _set_attr("policy"), description="Set the NUMA policy"))
    add(backend_property("prealloc", BOOL, "bool", "prealloc", MemoryBackend.set_prealloc,
                         description="Preallocate memory"))
    add(backend_property("prealloc-threads", UINT32, "int", "prealloc_threads",
                         MemoryBackend.set_prealloc_threads,
                         description="Number of CPU threads to use for prealloc"))
    add(link_property("prealloc-context", TYPE_THREAD_CONTEXT,
                      get_target=lambda obj: getattr(obj, "prealloc_context", None),
                      set_target=_set_prealloc_context,
                      description="Context to use for creating CPU threads for preallocation"))
    add(backend_property("share", BOOL, "bool", "share", MemoryBackend.set_share,
                         description="Mark the memory as private to QEMU or shared"))
    add(backend_property("reserve", BOOL, "bool", "reserve", MemoryBackend.set_reserve,
                         description="Reserve swap space (or huge pages) if applicable"))
    add(backend_property("size", SIZE, "int", "size", MemoryBackend.set_size,
                         description="Size of the memory region (ex: 500M)", mandatory=True))
    add(backend_property("x-use-canonical-path-for-ramblock-id", BOOL, "bool",
                         "use_canonical_path", _set_attr("use_canonical_path")))


def _machine_default(obj: Object, name: str) -> Any:
    """A property of ``/machine`` if there is a machine that has it, else ``None``."""
    machine = obj.tree.machine if obj.tree is not None else None
    if machine is None or machine.find_property(name) is None:
        return None
    try:
        return machine.get(name)
    except QomError:
        return None


def _memory_backend_instance_init(obj: Object) -> None:
    # QEMU takes these defaults from the machine (mem-merge, dump-guest-core,
    # smp.cpus); without a machine they are true, true and 1.
    assert isinstance(obj, MemoryBackend)
    merge = _machine_default(obj, "mem-merge")
    dump = _machine_default(obj, "dump-guest-core")
    smp = _machine_default(obj, "smp")
    if isinstance(merge, bool):
        obj.merge = merge
    if isinstance(dump, bool):
        obj.dump = dump
    cpus = getattr(smp, "cpus", None) if not isinstance(smp, dict) else smp.get("cpus")
    if isinstance(cpus, int) and cpus > 0:
        obj.prealloc_threads = cpus


def _memory_backend_instance_finalize(obj: Object) -> None:
    assert isinstance(obj, MemoryBackend)
    obj.release_memory()


MEMORY_BACKEND_INFO: Final = TypeInfo(
    name=TYPE_MEMORY_BACKEND, parent="object", impl=MemoryBackend, abstract=True,
    interfaces=(TYPE_USER_CREATABLE,), class_init=_memory_backend_class_init,
    instance_init=_memory_backend_instance_init,
    instance_finalize=_memory_backend_instance_finalize,
)
MEMORY_REGION_INFO: Final = TypeInfo(
    name=TYPE_MEMORY_REGION, parent="object", impl=MemoryRegion,
    class_init=_memory_region_class_init,
)


def register_base_types(registry: TypeRegistry) -> None:
    """Register ``memory-backend`` and ``memory-region`` unless already there.

    Every concrete backend plugin calls this from its ``qom_register_types``,
    so any one of them works alone (the others may be disabled).  Another
    plugin that needs ``memory-region`` (the machine's ``device-memory[0]``)
    should call it too rather than register its own.
    """
    for info in (MEMORY_REGION_INFO, MEMORY_BACKEND_INFO):
        if info.name not in registry:
            registry.register(info)


def _fd_region(backend: MemoryBackend, fd: int, *, align: int, readonly: bool,
               grow: bool) -> tuple[int, int, int]:
    """:func:`ram_alloc_from_fd`'s checks before the mapping: (page size, region
    alignment, length to map); ``grow`` truncates an empty file to the length."""
    size = host.round_up(backend.size, host.PAGE_SIZE) % (1 << 64)
    try:
        file_size = os.lseek(fd, 0, os.SEEK_END)
    except OSError:
        file_size = -1
    if 0 < file_size < size:
        raise MemoryBackendError(
            f"backing store size 0x{file_size:x} does not match 'size' option 0x{size:x}")
    page_size = host.fd_page_size(fd)
    if align % page_size:
        raise MemoryBackendError(
            f"alignment 0x{align:x} must be multiples of page size 0x{page_size:x}")
    if align and not host.is_power_of_2(align):
        raise MemoryBackendError(f"alignment 0x{align:x} must be a power of two")
    region_align = max(page_size, align)
    if size < page_size:
        raise MemoryBackendError(
            f"memory size 0x{size:x} must be equal to or larger than page size 0x{page_size:x}")
    length = host.round_up(size, page_size)
    if grow and file_size == 0:
        try:
            os.ftruncate(fd, length)
        except (OSError, OverflowError) as err:
            # QEMU only perror()s: mmap reports the real problem.
            _log.warning("ftruncate: %s", err)
    backend.check_noreserve(page_size=page_size, shared=backend.share, readonly=readonly)
    return page_size, region_align, length


def plan_from_fd(backend: MemoryBackend, fd: int, *, align: int = 0,
                 readonly: bool = False) -> HostMemory:
    """:func:`ram_alloc_from_fd`'s checks on ``fd`` (which it does not grow), and the
    memory it would map, unmapped (for :meth:`MemoryBackend.plan_alloc`)."""
    page_size, region_align, length = _fd_region(backend, fd, align=align,
                                                 readonly=readonly, grow=False)
    try:
        host.check_mappable(length, region_align)
    except OSError as err:
        raise errno_message("unable to map backing store for guest RAM", err) from err
    return host.planned_memory(size=backend.size, align=region_align, page_size=page_size,
                               map_length=length, shared=backend.share, readonly=readonly)


def ram_alloc_from_fd(backend: MemoryBackend, fd: int, *, align: int = 0,
                      readonly: bool = False, pmem: bool = False) -> HostMapping:
    """QEMU 7.2's ``qemu_ram_alloc_from_fd`` + ``file_ram_alloc``: map ``fd`` for ``backend``.

    Checks, in QEMU's order and with its messages: an existing non-empty file
    smaller than the page-rounded size; ``align`` against the file system's
    page size (``fstatfs``: the huge page size on hugetlbfs); a size below
    the page size.  Only an empty file is truncated (grown) to the size; a
    larger file is used as it is.  The caller owns ``fd`` and closes it (and
    unlinks a file it created) if this raises.
    """
    page_size, region_align, length = _fd_region(backend, fd, align=align,
                                                 readonly=readonly, grow=True)
    try:
        mapping = HostMapping(size=backend.size, align=region_align, fd=fd,
                              shared=backend.share, readonly=readonly,
                              noreserve=not backend.reserve, sync=pmem,
                              page_size=page_size, map_length=length)
    except OSError as err:
        raise errno_message("unable to map backing store for guest RAM", err) from err
    if mapping.sync_failed:
        _log.warning("requesting persistence across crashes for backend file %s failed."
                     " Proceeding without persistence, data might become corrupted in"
                     " case of host crash.", os.readlink(f"/proc/self/fd/{fd}"))
        _log.warning("Using non DAX backing file with 'pmem=on' option is deprecated")
    mapping.madvise(host.MADV_HUGEPAGE)
    return mapping


def memdev_info(backend: MemoryBackend) -> dict[str, Any]:
    """One ``query-memdev`` entry (QEMU's ``query_memdev``), with its nine keys.

    ``reserve`` is there because pyqom runs on Linux; ``host-nodes`` is ascending.
    """
    return {
        "id": backend.name_in_parent or "",
        "size": backend.size,
        "merge": backend.merge,
        "dump": backend.dump,
        "prealloc": backend.prealloc,
        "share": backend.share,
        "reserve": backend.reserve,
        "host-nodes": sorted(backend.host_nodes),
        "policy": backend.policy,
    }


def query_memdev(tree: ObjectTree) -> list[dict[str, Any]]:
    """``query-memdev``: every memory backend that is a direct child of ``/objects``.

    QEMU walks ``/objects`` in hash order and prepends, so its order carries
    no meaning; pyqom gives the newest backend first.
    """
    backends = [child for _, child in tree.objects.children()
                if isinstance(child, MemoryBackend)]
    return [memdev_info(backend) for backend in reversed(backends)]
