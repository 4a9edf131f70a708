"""thread-context: a real thread whose real CPU affinity the kernel reports, and
preallocation threads started in it.

Affinities are read back from the kernel (``/proc/self/task/<tid>/status``,
``sched_getaffinity``), never from pyqom's own state.  On a one-CPU host an
affinity cannot differ from the default, so the tests that need two CPUs
skip there; on a one-node host ``node-affinity`` can only name node 0 (and
nodes that select no CPUs), and the two-node layout is checked through a
sysfs directory of the same shape.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from backend_helpers import error_of

from backends import prealloc
from backends.host import HostMapping
from backends.thread_context import ThreadContext, node_cpus, parse_cpu_list
from qom import object_add, object_del, qom_get, qom_set

MiB = 1 << 20
HOST_CPUS = sorted(os.sched_getaffinity(0))
needs_two_cpus = pytest.mark.skipif(len(HOST_CPUS) < 2,
                                    reason="one CPU: an affinity cannot differ from the default")


def task_status(tid: int, key: str) -> str:
    """One field of ``/proc/self/task/<tid>/status``."""
    for line in Path(f"/proc/self/task/{tid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name == key:
            return value.strip()
    raise KeyError(key)


def allowed_cpus(tid: int) -> set[int]:
    return parse_cpu_list(task_status(tid, "Cpus_allowed_list"))


def context(tree, object_id="tc1", **props) -> ThreadContext:
    obj = object_add(tree, {"qom-type": "thread-context", "id": object_id, **props})
    assert isinstance(obj, ThreadContext)
    return obj


def test_complete_starts_a_thread_named_after_the_id(tree):
    tc = context(tree)
    tid = qom_get(tree, "/objects/tc1", "thread-id")
    assert tid == tc.thread_id and tid != threading.get_native_id()
    assert Path(f"/proc/self/task/{tid}").is_dir()
    assert any(thread.name == "TC tc1" and thread.native_id == tid
               for thread in threading.enumerate())
    assert Path(f"/proc/self/task/{tid}/comm").read_text() == "TC tc1\n"
    # no affinity given: the main thread's
    assert qom_get(tree, "/objects/tc1", "cpu-affinity") == HOST_CPUS
    assert allowed_cpus(tid) == set(HOST_CPUS)


@needs_two_cpus
def test_cpu_affinity_is_the_threads_real_affinity(tree):
    last = HOST_CPUS[-1]
    tc = context(tree, **{"cpu-affinity": [last]})
    assert allowed_cpus(tc.thread_id) == {last}
    assert qom_get(tree, "/objects/tc1", "cpu-affinity") == [last]
    qom_set(tree, "/objects/tc1", "cpu-affinity", HOST_CPUS[:1])
    assert allowed_cpus(tc.thread_id) == {HOST_CPUS[0]}
    # the main thread is untouched
    assert os.sched_getaffinity(0) == set(HOST_CPUS)


@needs_two_cpus
def test_threads_started_in_the_context_inherit_its_affinity(tree):
    last = HOST_CPUS[-1]
    tc = context(tree, **{"cpu-affinity": [last]})
    seen: dict[int, tuple[set[int], set[int]]] = {}
    release = threading.Event()

    def body() -> None:
        tid = threading.get_native_id()
        seen[tid] = (os.sched_getaffinity(0), allowed_cpus(tid))
        release.wait(10)

    early = tc.start_thread(body)
    # changing the context later leaves threads it already started alone (as in QEMU)
    qom_set(tree, "/objects/tc1", "cpu-affinity", HOST_CPUS[:1])
    late = tc.start_thread(body)
    while len(seen) < 2:
        time.sleep(0.001)
    assert early.native_id is not None
    assert allowed_cpus(early.native_id) == {last}
    release.set()
    early.join()
    late.join()
    assert seen == {early.native_id: ({last}, {last}),
                    late.native_id: ({HOST_CPUS[0]}, {HOST_CPUS[0]})}


def test_node_affinity_is_the_nodes_cpus(tree):
    tc = context(tree, **{"node-affinity": [0]})
    expected = node_cpus(0)
    assert expected
    allowed = allowed_cpus(tc.thread_id)
    assert allowed and allowed <= expected
    assert qom_get(tree, "/objects/tc1", "cpu-affinity") == sorted(allowed)
    qom_set(tree, "/objects/tc1", "node-affinity", [0, 127])   # unknown nodes are ignored
    assert error_of(qom_set, tree, "/objects/tc1", "node-affinity", [127]) \
        == "The nodes select no CPUs"
    assert error_of(qom_get, tree, "/objects/tc1", "node-affinity") \
        == "Property 'thread-context.node-affinity' is not readable"


def test_node_cpus_reads_the_sysfs_layout(tmp_path):
    for node, cpus in ((0, "0-3,8"), (1, "4-7\n")):
        (tmp_path / f"node{node}").mkdir()
        (tmp_path / f"node{node}" / "cpulist").write_text(cpus)
    assert node_cpus(0, tmp_path) == {0, 1, 2, 3, 8}
    assert node_cpus(1, tmp_path) == {4, 5, 6, 7}
    assert node_cpus(2, tmp_path) is None
    # a kernel without NUMA: node 0 has every CPU
    assert node_cpus(0, tmp_path / "absent") == set(range(os.cpu_count() or 1))
    assert node_cpus(1, tmp_path / "absent") is None


def test_errors_are_qemus_and_leave_nothing(tree):
    before = {thread.ident for thread in threading.enumerate()}
    cases = [
        ({"cpu-affinity": [65535]}, "Setting CPU affinity failed: Invalid argument"),
        ({"cpu-affinity": []}, "CPU list is empty"),
        ({"node-affinity": []}, "Node list is empty"),
        ({"node-affinity": [300]}, "The nodes select no CPUs"),
        ({"cpu-affinity": [0], "node-affinity": [0]},
         "Mixing CPU and node affinity not supported"),
        ({"thread-id": 3}, "Parameter 'thread-id' is unexpected"),
        ({"cpu-affinity": [-1]}, "Parameter 'null' expects uint16_t"),
    ]
    for props, message in cases:
        assert error_of(context, tree, "tc9", **props) == message
    assert tree.objects.child("tc9") is None
    assert {thread.ident for thread in threading.enumerate()} == before


def test_object_del_ends_the_thread(tree):
    tc = context(tree)
    tid = tc.thread_id
    object_del(tree, "tc1")
    assert not tc.running
    # join() returns as Python lets go of the thread; the kernel ends it a moment later
    deadline = time.monotonic() + 10
    while Path(f"/proc/self/task/{tid}").exists() and time.monotonic() < deadline:
        time.sleep(0.001)
    assert not Path(f"/proc/self/task/{tid}").exists()


def test_uninitialized_context_says_so(tree):
    tc = tree.new("thread-context")
    assert isinstance(tc, ThreadContext)
    assert error_of(tc.get_cpu_affinity) == "Object not initialized yet"
    assert tc.get_json("thread-id") == (1 << 64) - 1     # -1 as QEMU's uint64 visit
    tc.set_value("cpu-affinity", [0])                   # kept for complete()
    assert error_of(tc.set_value, "node-affinity", [0]) \
        == "Mixing CPU and node affinity not supported"
    tc.finalize()


# ---------------------------------------------------------------------------
# Preallocation in a context
# ---------------------------------------------------------------------------


@needs_two_cpus
def test_prealloc_workers_run_with_the_contexts_affinity(tree):
    """prealloc() itself: every worker reports, from inside, its name and affinity."""
    last = HOST_CPUS[-1]
    tc = context(tree, **{"cpu-affinity": [last]})
    mapping = HostMapping(size=256 * MiB, align=2 * MiB)
    seen: dict[int, tuple[str, set[int]]] = {}

    def progress(done: int, total: int) -> None:
        tid = threading.get_native_id()
        comm = Path(f"/proc/self/task/{tid}/comm").read_text().strip()
        seen[tid] = (comm, allowed_cpus(tid))

    try:
        memory = mapping.memory
        prealloc.prealloc(memory.address, memory.size, memory.page_size, threads=2,
                          view=memory.view, progress=progress, context=tc)
    finally:
        mapping.release()
    assert len(seen) == 2 and threading.get_native_id() not in seen
    assert all(value == ("touch_pages", {last}) for value in seen.values()), seen


def test_one_madvise_thread_runs_in_the_caller_as_in_qemu(tree):
    tc = context(tree)
    mapping = HostMapping(size=4 * MiB, align=2 * MiB)
    threads: set[int] = set()
    try:
        memory = mapping.memory
        prealloc.prealloc(memory.address, memory.size, memory.page_size, threads=1,
                          view=memory.view, context=tc,
                          progress=lambda done, total: threads.add(threading.get_native_id()))
    finally:
        mapping.release()
    assert threads == {threading.get_native_id()}


@needs_two_cpus
def test_backend_prealloc_threads_seen_by_the_kernel(tree):
    """object-add with prealloc-context: the kernel lists touch_pages threads on that CPU.

    A sampler reads ``/proc/self/task/*`` while the populate runs (the workers
    drop the GIL in madvise); a populate too quick to be seen is tried again.
    """
    last = HOST_CPUS[-1]
    context(tree, **{"cpu-affinity": [last]})
    seen: dict[int, set[int]] = {}
    for attempt in range(5):
        stop = threading.Event()

        def sample(stop: threading.Event = stop) -> None:
            while not stop.is_set():
                for task in Path("/proc/self/task").iterdir():
                    try:
                        if (task / "comm").read_text().strip() == "touch_pages":
                            seen[int(task.name)] = allowed_cpus(int(task.name))
                    except (OSError, KeyError):
                        pass  # the thread ended meanwhile

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            object_add(tree, {"qom-type": "memory-backend-ram", "id": f"m{attempt}",
                              "size": 512 * MiB, "prealloc": True, "prealloc-threads": 2,
                              "prealloc-context": "tc1"})
        finally:
            stop.set()
            sampler.join()
        object_del(tree, f"m{attempt}")
        if seen:
            break
    assert seen, "no touch_pages thread was seen in five populates"
    assert all(cpus == {last} for cpus in seen.values()), seen


@needs_two_cpus
def test_a_deleted_context_still_places_the_threads(tree):
    last = HOST_CPUS[-1]
    tc = context(tree, **{"cpu-affinity": [last]})
    object_del(tree, "tc1")
    assert not tc.running
    seen: list[set[int]] = []
    thread = tc.start_thread(lambda: seen.append(os.sched_getaffinity(0)))
    thread.join()
    assert seen == [{last}]
