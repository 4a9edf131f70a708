"""Benchmark memory backends: create+delete of a 1 GiB backend, and prealloc throughput.

Run from the repository root::

    PYTHONPATH=. python bench/bench_backends.py [--size-gib 1] [--repeat 3]

It prints one table:

* create+delete of a ``memory-backend-ram`` with and without ``prealloc``
  (the ``prealloc`` rows are dominated by faulting every page in; ram
  backends use THP, so compare them with the THP rows);
* prealloc throughput in GiB/s through ``backends.prealloc.prealloc`` with 1
  and several threads, with QEMU's thread cap turned off so the thread count
  is the one asked for, on 4 KiB pages and with transparent huge pages
  (``MADV_HUGEPAGE``, which ram backends ask for, as QEMU does);
* beside them, the machine's own page-touch rate: a fresh private anonymous
  mapping filled by one ``memset`` (every page faulted and zeroed by the
  kernel, then written), which is the ceiling a page-touching prealloc can reach.

Times are the best of ``--repeat`` runs.  Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import ctypes
import mmap
import os
import time
from collections.abc import Callable

from backends.host import MADV_HUGEPAGE, PAGE_SIZE, HostMapping, resident_pages
from backends.prealloc import prealloc
from pyqom.manager import make_plugin_manager, make_tree
from qom import ObjectTree, object_add, object_del

GiB = 1024 * 1024 * 1024


def best_of(repeat: int, fn: Callable[[], float]) -> float:
    """The smallest of ``repeat`` timings returned by ``fn``."""
    return min(fn() for _ in range(repeat))


def create_delete(tree: ObjectTree, size: int, prealloc_on: bool, threads: int) -> float:
    """Seconds to object-add and object-del one ram backend."""
    start = time.perf_counter()
    object_add(tree, {"qom-type": "memory-backend-ram", "id": "bench", "size": size,
                      "prealloc": prealloc_on, "prealloc-threads": threads})
    object_del(tree, "bench")
    return time.perf_counter() - start


def prealloc_rate(size: int, threads: int, thp: bool) -> float:
    """Seconds to preallocate a fresh private anonymous mapping with ``threads`` threads."""
    mapping = HostMapping(size=size, align=2 * 1024 * 1024)
    try:
        if thp:
            mapping.madvise(MADV_HUGEPAGE)
        memory = mapping.memory
        start = time.perf_counter()
        prealloc(memory.address, memory.size, PAGE_SIZE, threads=threads, cap_threads=False)
        elapsed = time.perf_counter() - start
        assert resident_pages(memory.address, memory.size) == size // PAGE_SIZE
        return elapsed
    finally:
        mapping.release()


def touch_rate(size: int, thp: bool) -> float:
    """Seconds for one memset over a fresh private anonymous mapping (one thread)."""
    mm = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE)
    try:
        address = ctypes.addressof(ctypes.c_char.from_buffer(mm))
        if thp:
            mm.madvise(MADV_HUGEPAGE)
        start = time.perf_counter()
        ctypes.memset(address, 1, size)
        return time.perf_counter() - start
    finally:
        mm.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gib", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="*", default=None,
                        help="prealloc thread counts (default: 1, 2, 4 and the CPU count)")
    args = parser.parse_args()
    size = int(args.size_gib * GiB)
    cpus = os.cpu_count() or 1
    threads = args.threads or sorted({1, 2, 4, cpus})
    tree = make_tree(make_plugin_manager(autoload=False))

    rows: list[tuple[str, float, float]] = []
    seconds = best_of(args.repeat, lambda: create_delete(tree, size, False, 1))
    rows.append(("create+delete, no prealloc", seconds, size / GiB / seconds))
    for count in (1, cpus):
        seconds = best_of(args.repeat, lambda c=count: create_delete(tree, size, True, c))
        rows.append((f"create+delete, prealloc, prealloc-threads={count}", seconds,
                     size / GiB / seconds))
    for thp, pages in ((False, "4K pages"), (True, "THP")):
        for count in threads:
            seconds = best_of(args.repeat, lambda c=count, t=thp: prealloc_rate(size, c, t))
            rows.append((f"prealloc, {pages}, {count} thread(s)", seconds,
                         size / GiB / seconds))
        seconds = best_of(args.repeat, lambda t=thp: touch_rate(size, t))
        rows.append((f"page-touch rate (memset), {pages}, 1 thread", seconds,
                     size / GiB / seconds))
    tree.root.finalize()

    print(f"memory backends, {size / GiB:g} GiB, best of {args.repeat}, {cpus} CPU(s)")
    width = max(len(name) for name, _, _ in rows)
    print(f"{'case':<{width}}  {'ms':>9}  {'GiB/s':>7}")
    print(f"{'-' * width}  {'-' * 9}  {'-' * 7}")
    for name, secs, rate in rows:
        print(f"{name:<{width}}  {secs * 1000:9.1f}  {rate:7.2f}")


if __name__ == "__main__":
    main()
