"""Preallocation: populate every page of a mapping, with threads (QEMU's ``qemu_prealloc_mem``).

Each thread gets one contiguous slice, as in QEMU's ``touch_all_pages``.  The
fast path is ``madvise(MADV_POPULATE_WRITE)`` (Linux 5.14+), called through
ctypes, which drops the GIL, so the threads fault pages in parallel.  Where
the kernel lacks it (``EINVAL`` on a probe), every page is read and written
back in Python instead: correct, but the GIL serialises those threads.

With a thread context (a backend's ``prealloc-context``), the threads are
started by the context's thread and so inherit its CPU affinity, as QEMU's
``thread_context_create_thread``; as in QEMU, a populate that one
``madvise`` thread does runs in the caller's thread, context or not.
Threads are named ``touch_pages`` (QEMU's name) for the kernel too, so
``top -H`` and ``/proc/<pid>/task/*/comm`` show them.

Progress: large backends (>= :data:`PROGRESS_MIN_SIZE`) log a line per 10 %
on the ``backends.prealloc`` logger, and any caller may pass ``progress``.
"""

from __future__ import annotations

import ctypes
import errno
import os
import threading
from collections.abc import Callable
from typing import Any, Final, Protocol, runtime_checkable

from backends.host import MADV_POPULATE_READ, MADV_POPULATE_WRITE, libc, os_error
from qom.logs import LazyLogger

#: QEMU's MAX_MEM_PREALLOC_THREAD_COUNT.
MAX_PREALLOC_THREADS: Final = 16
#: Below 64 MiB per thread QEMU does not start more threads.
_MIN_BYTES_PER_THREAD: Final = 64 * 1024 * 1024
#: Work is done (and progress reported) in pieces of this size.
_CHUNK: Final = 128 * 1024 * 1024
PROGRESS_MIN_SIZE: Final = 1024 * 1024 * 1024

Progress = Callable[[int, int], None]
#: The kernel's PR_SET_NAME (prctl): names the calling thread (15 bytes at most).
_PR_SET_NAME: Final = 15
THREAD_NAME: Final = "touch_pages"


@runtime_checkable
class ThreadStarter(Protocol):
    """What prealloc needs of a thread context: start a thread in it."""

    def start_thread(self, target: Callable[..., Any], *, args: tuple[Any, ...] = (),
                     name: str | None = None) -> threading.Thread:
        """Start ``target(*args)`` in a new thread; return it once it runs."""
        ...


def _start_thread(target: Callable[..., Any], *, args: tuple[Any, ...] = (),
                  name: str | None = None) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, name=name, daemon=True)
    thread.start()
    return thread


def name_this_thread(name: str) -> None:
    """Give the calling thread ``name`` (its first 15 bytes) in the kernel's
    ``comm``, as QEMU's ``-name debug-threads=on`` names its threads."""
    ctypes.CDLL(None).prctl(_PR_SET_NAME, name.encode()[:15], 0, 0, 0)

_log = LazyLogger("backends.prealloc")


def memset_num_threads(page_size: int, num_pages: int, max_threads: int) -> int:
    """QEMU 7.2's ``get_memset_num_threads``: how many threads to really use."""
    host_procs = os.cpu_count() or 0
    threads = 1
    if host_procs > 0:
        threads = min(host_procs, MAX_PREALLOC_THREADS, max_threads)
    threads = min(threads, num_pages)
    return max(1, min(threads, max(1, page_size * num_pages // _MIN_BYTES_PER_THREAD)))


def _populate_supported(address: int, page_size: int, advice: int) -> bool:
    """QEMU's ``madv_populate_write_possible()``: any answer but EINVAL means "yes".

    Probed with length 0, as QEMU does: it touches no page.  (A one-page probe
    populated the first page, and on this kernel the populate that followed it
    ran ~14 times slower: 1 GiB in 2.25 s instead of QEMU's 0.16 s.)
    """
    if libc().madvise(address, 0, advice) == 0:
        return True
    return ctypes.get_errno() != errno.EINVAL


def _touch(view: memoryview, start: int, end: int, page_size: int) -> None:
    # Read (and, if writable, write back) one byte per page: faults the page
    # in and keeps the data.
    if view.readonly:
        for offset in range(start, end, page_size):
            _ = view[offset]  # the read faults the page in
        return
    for offset in range(start, end, page_size):
        view[offset] = view[offset]


def prealloc(address: int, length: int, page_size: int, *, threads: int,
             view: memoryview | None = None, progress: Progress | None = None,
             cap_threads: bool = True, context: ThreadStarter | None = None) -> None:
    """Populate ``[address, address + length)`` page by page.

    :param threads: the backend's ``prealloc-threads``.
    :param view: a view of the range, needed only for the touch fallback.  A
        read-only view (a ``readonly=on`` file) is populated for reading
        (``MADV_POPULATE_READ``): QEMU 7.2 dies on ``readonly=on,prealloc=on``.
    :param progress: ``progress(done_bytes, total_bytes)``, called from worker threads.
    :param cap_threads: apply QEMU's thread cap (CPUs, 16, 64 MiB per thread);
        the benchmark turns it off to measure a given thread count.
    :param context: a thread context (``thread-context``) to start the threads in.
    :raises OSError: the errno of the failing ``madvise``.
    """
    num_pages = -(-length // page_size)
    if num_pages == 0:
        return
    length = num_pages * page_size
    count = memset_num_threads(page_size, num_pages, threads) if cap_threads else threads
    count = max(1, min(count, num_pages))
    advice = MADV_POPULATE_READ if view is not None and view.readonly else MADV_POPULATE_WRITE
    use_madvise = _populate_supported(address, page_size, advice)
    if not use_madvise and view is None:
        raise os_error(errno.EINVAL)

    lock = threading.Lock()
    done = 0
    last_decile = 0
    errors: list[int] = []
    report = length >= PROGRESS_MIN_SIZE

    def advance(nbytes: int) -> None:
        nonlocal done, last_decile
        with lock:
            done += nbytes
            current = done
            decile = current * 10 // length
            log_now = report and decile > last_decile
            if log_now:
                last_decile = decile
        if log_now:
            _log.info("prealloc: %d%% of %d MiB", decile * 10, length >> 20)
        if progress is not None:
            progress(current, length)

    per_thread = -(-num_pages // count) * page_size
    lib = libc()

    def worker(start: int, end: int) -> None:
        offset = start
        while offset < end and not errors:
            piece = min(_CHUNK, end - offset)
            if use_madvise:
                if lib.madvise(address + offset, piece, advice) != 0:
                    errors.append(ctypes.get_errno())
                    return
            else:
                assert view is not None
                _touch(view, offset, min(offset + piece, len(view)), page_size)
            advance(piece)
            offset += piece

    slices = [(start, min(start + per_thread, length))
              for start in range(0, length, per_thread)]
    if len(slices) == 1 and (use_madvise or context is None):
        worker(*slices[0])
    else:
        def named_worker(start: int, end: int) -> None:
            name_this_thread(THREAD_NAME)
            worker(start, end)

        start_thread = context.start_thread if context is not None else _start_thread
        workers = [start_thread(named_worker, args=s, name=f"{THREAD_NAME}-{i}")
                   for i, s in enumerate(slices)]
        for thread in workers:
            thread.join()
    if errors:
        raise os_error(errors[0])
