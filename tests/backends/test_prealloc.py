"""Preallocation: real population, threads, the touch fallback, progress."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from backend_helpers import error_of

from backends import host, prealloc
from backends.host import HostMapping
from qom import object_add

MiB = 1024 * 1024


@pytest.fixture
def mapping():
    mapping = HostMapping(size=64 * MiB, align=2 * MiB)
    yield mapping
    mapping.release()


def test_thread_cap_is_qemus():
    # at most the CPU count and 16, never more threads than pages, >= 64 MiB each
    assert prealloc.memset_num_threads(4096, 16384, 8) == 1  # 64 MiB
    assert prealloc.memset_num_threads(4096, 1 << 20, 1) == 1
    cpus = min(prealloc.MAX_PREALLOC_THREADS, os.cpu_count())
    assert prealloc.memset_num_threads(4096, 1 << 20, 64) == cpus  # 4 GiB
    assert prealloc.memset_num_threads(1 << 30, 2, 64) == min(cpus, 2)


@pytest.mark.parametrize("threads", [1, 3])
def test_touch_fallback_populates_and_keeps_data(mapping, monkeypatch, threads):
    monkeypatch.setattr(prealloc, "_populate_supported", lambda *args: False)
    memory = mapping.memory
    memory.view[4096 * 7] = 0x42
    names = set()
    original = prealloc._touch

    def spy(*args):
        names.add(threading.current_thread().name)
        original(*args)

    monkeypatch.setattr(prealloc, "_touch", spy)
    prealloc.prealloc(memory.address, memory.size, 4096, threads=threads, view=memory.view,
                      cap_threads=False)
    assert host.resident_pages(memory.address, memory.size) == memory.size // 4096
    assert memory.view[4096 * 7] == 0x42
    assert len(names) == threads


def test_real_threads_with_madvise(mapping):
    memory = mapping.memory
    seen = []
    prealloc.prealloc(memory.address, memory.size, 4096, threads=4, cap_threads=False,
                      progress=lambda done, total: seen.append((done, total,
                                                                threading.current_thread().name)))
    assert max(done for done, _, _ in seen) == memory.size
    assert {total for _, total, _ in seen} == {memory.size}
    assert len({name for _, _, name in seen}) == 4
    assert host.resident_pages(memory.address, memory.size) == memory.size // 4096


def test_large_backend_logs_progress(tree, caplog):
    caplog.set_level(logging.INFO, logger="backends.prealloc")
    object_add(tree, {"qom-type": "memory-backend-ram", "id": "big", "size": 1 << 30,
                      "prealloc": True, "prealloc-threads": 2})
    assert "prealloc: 100% of 1024 MiB" in caplog.text


def test_readonly_file_prealloc_populates_for_reading(tree, tmp_path):
    path = tmp_path / "ro"
    path.write_bytes(b"r" * 8 * MiB)
    memory = object_add(tree, {"qom-type": "memory-backend-file", "id": "ro", "size": 8 * MiB,
                               "mem-path": str(path), "readonly": True,
                               "prealloc": True}).host_memory
    assert host.resident_pages(memory.address, memory.size) == 8 * MiB // 4096


def test_prealloc_failure_message(tree, monkeypatch):
    def fail(*args, **kwargs):
        raise host.os_error(errno.EFAULT)

    monkeypatch.setattr("backends.base.prealloc", fail)
    assert error_of(object_add, tree, {"qom-type": "memory-backend-ram", "id": "x",
                                       "size": MiB, "prealloc": True}) == \
        "qemu_prealloc_mem: preallocating memory failed: Bad address"


def _child_memory_cgroup(limit: int) -> tuple[str, str] | None:
    """A new memory cgroup below this process's own, limited to ``limit`` bytes
    (cgroup v1 or v2): (its directory, the file a process joins it through)."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        hierarchy, controllers, path = line.split(":", 2)
        if hierarchy == "0" and controllers == "":
            base, limit_file = Path(host.CGROUP_ROOT), "memory.max"
        elif "memory" in controllers.split(","):
            base, limit_file = Path(host.CGROUP_ROOT) / "memory", "memory.limit_in_bytes"
        else:
            continue
        group = base / path.lstrip("/") / f"pyqom-test-{os.getpid()}"
        try:
            group.mkdir()
            (group / limit_file).write_text(str(limit))
        except OSError:
            with contextlib.suppress(OSError):
                group.rmdir()
            return None
        return str(group), str(group / "cgroup.procs")
    return None


def test_prealloc_beyond_the_memory_cgroup_is_refused_not_oom_killed(tmp_path):
    """Beyond QEMU 7.2 (the kernel OOM-kills it): a clear error, the process lives."""
    cgroup = _child_memory_cgroup(256 << 20)
    if cgroup is None:
        pytest.skip("cannot create a memory cgroup here (needs root and a writable "
                    "cgroup hierarchy)")
    directory, procs = cgroup
    script = (
        "import os, sys\n"
        f"open({procs!r}, 'w').write(str(os.getpid()))\n"
        "from pyqom.vm import VM\n"
        "import qom\n"
        "vm = VM('128M', autoload=False)\n"
        "try:\n"
        "    vm.object_add('memory-backend-ram', 'big', size=1 << 30, prealloc=True)\n"
        "except qom.QomError as err:\n"
        "    print(err)\n"
        "vm.object_add('memory-backend-ram', 'small', size=16 << 20, prealloc=True)\n"
        "print([e['name'] for e in qom.qom_list(vm.tree, '/objects')])\n"
        "vm.close()\n")
    env = dict(os.environ, PYQOM_DISABLE_PLUGIN_AUTOLOAD="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(Path(__file__).resolve()
                                                              .parents[2]),
                                                         os.environ.get("PYTHONPATH")])))
    try:
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              timeout=120, env=env)
    finally:
        with contextlib.suppress(OSError):
            os.rmdir(directory)
    assert done.returncode == 0, done.stderr
    first, listing = done.stdout.splitlines()
    assert first.startswith("qemu_prealloc_mem: preallocating memory failed: Cannot allocate "
                            "memory (the memory cgroup /")
    assert first.endswith(f"more bytes, {1 << 30} asked)")
    assert "'small'" in listing and "'big'" not in listing
