"""The CPU thread (plugins.address_space.vcpu): the guest runs on it while other
threads change the engine through it, under the machine lock.

Guest code is hand-assembled x86-64; each byte string carries its assembly.
"""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Iterator

import pytest

from plugins.address_space.engine import GuestAddressSpace
from plugins.address_space.vcpu import Vcpu
from plugins.services import GuestExit
from pyqom.manager import make_plugin_manager, make_tree
from qom import ObjectTree, object_add

MiB = 1 << 20
CODE = 0x1000
COUNTER = 0x3000

#: inc qword [COUNTER]; jmp back: a guest that never stops, counting its loops
COUNT_FOREVER = (b"\x48\xff\x04\x25" + struct.pack("<i", COUNTER)   # inc qword [COUNTER]
                 + b"\xeb\xf6")                                     # jmp -10
#: in al, 0x80 (a port read), then count, forever
POLL_PORT_FOREVER = (b"\xe4\x80"                                    # in al, 0x80
                     + b"\x48\xff\x04\x25" + struct.pack("<i", COUNTER)
                     + b"\xeb\xf4")                                 # jmp -12


def ram(tree: ObjectTree, name: str, size: int = 2 * MiB):
    object_add(tree, {"qom-type": "memory-backend-ram", "id": name, "size": size})
    return tree.objects.child(name).host_memory


@pytest.fixture
def tree() -> Iterator[ObjectTree]:
    objtree = make_tree(make_plugin_manager(autoload=False))
    yield objtree
    objtree.root.finalize()


@pytest.fixture
def space(tree: ObjectTree) -> Iterator[GuestAddressSpace]:
    guest = GuestAddressSpace()
    guest.map_ram("low", 0, ram(tree, "low"))
    yield guest
    guest.close()


class Events:
    def __init__(self) -> None:
        self.seen: list[tuple[str, object]] = []
        self.arrived = threading.Event()

    def __call__(self, kind: str, detail: object) -> None:
        self.seen.append((kind, detail))
        self.arrived.set()


def counter(space: GuestAddressSpace) -> int:
    return struct.unpack("<Q", space.read(COUNTER, 8))[0]


def wait_until(predicate, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def start(space: GuestAddressSpace, tree: ObjectTree, code: bytes,
          events: Events | None = None) -> Vcpu:
    space.write(CODE, code)
    vcpu = Vcpu(space, tree.lock, events or Events())
    vcpu.boot(CODE)
    vcpu.resume()
    return vcpu


def test_the_guest_runs_until_paused_and_goes_on_when_resumed(space, tree) -> None:
    vcpu = start(space, tree, COUNT_FOREVER)
    try:
        assert wait_until(lambda: counter(space) > 1000)
        vcpu.pause()
        stopped_at = counter(space)
        time.sleep(0.05)
        assert counter(space) == stopped_at          # no guest code runs while paused
        vcpu.resume()
        assert wait_until(lambda: counter(space) > stopped_at + 1000)
    finally:
        vcpu.close()


def test_engine_changes_from_another_thread_happen_on_the_cpu_thread(space, tree) -> None:
    vcpu = start(space, tree, COUNT_FOREVER)
    try:
        assert wait_until(lambda: counter(space) > 0)
        assert vcpu.run_on_cpu(lambda: threading.current_thread().name) == "pyqom-vcpu"
        # Mapping and unmapping RAM while the guest runs (the crash the CPU thread avoids).
        for round_ in range(20):
            extra = space.map_ram(f"extra{round_}", 64 * MiB, ram(tree, f"extra{round_}"))
            space.write(64 * MiB, b"seen")
            assert space.read(64 * MiB, 4) == b"seen"
            space.unmap(extra)
        before = counter(space)
        assert wait_until(lambda: counter(space) > before + 1000)   # still running
        with pytest.raises(ZeroDivisionError):
            vcpu.run_on_cpu(lambda: 1 // 0)           # the error comes back to the caller
    finally:
        vcpu.close()


def test_a_guest_blocked_on_the_machine_lock_does_not_deadlock_run_on_cpu(space, tree) -> None:
    """The command thread holds the machine lock and waits for the CPU thread; the
    CPU thread waits for the lock in a port handler: run_on_cpu lets the lock go."""
    reads = []
    space.register_ports(0x80, 1, lambda offset, size: reads.append(1) or 0,
                         lambda offset, size, value: None, "probe")
    vcpu = start(space, tree, POLL_PORT_FOREVER)
    try:
        assert wait_until(lambda: len(reads) > 10)
        done = threading.Event()

        def command() -> None:
            with tree.lock:
                time.sleep(0.05)          # the guest reaches its port read meanwhile
                vcpu.run_on_cpu(lambda: None)
                done.set()

        worker = threading.Thread(target=command)
        worker.start()
        worker.join(10)
        assert done.is_set()
        paused = threading.Event()

        def stop_command() -> None:       # ``stop`` under the lock, the guest polling
            with tree.lock:
                time.sleep(0.05)
                vcpu.pause()
                paused.set()

        worker = threading.Thread(target=stop_command)
        worker.start()
        worker.join(10)
        assert paused.is_set()
    finally:
        vcpu.close()


def test_hlt_halts_and_a_debug_exit_is_reported(space, tree) -> None:
    events = Events()
    vcpu = start(space, tree, b"\xf4", events)      # hlt
    try:
        assert wait_until(lambda: vcpu.halted)
        assert events.seen == []
    finally:
        vcpu.close()

    def exit_port(offset: int, size: int, value: int) -> None:
        raise GuestExit((value << 1) | 1)

    space.register_ports(0x501, 2, lambda offset, size: 0, exit_port, "exit")
    events = Events()
    # mov al, 0x10; out 0x01 (to 0x501 via dx); jmp $
    code = b"\xb0\x10\x66\xba\x01\x05\xee\xeb\xfe"
    vcpu = start(space, tree, code, events)
    try:
        assert events.arrived.wait(10)
        assert events.seen == [("exit", 0x21)]
        assert not vcpu.running
    finally:
        vcpu.close()


def test_a_fault_pauses_the_cpu_and_is_reported(space, tree) -> None:
    events = Events()
    # mov rax, [0x40000000] (unmapped)
    vcpu = start(space, tree, b"\x48\x8b\x04\x25" + struct.pack("<i", 0x40000000), events)
    try:
        assert events.arrived.wait(10)
        kind, detail = events.seen[0]
        assert kind == "error" and "0x40000000" in str(detail)
        assert not vcpu.running
    finally:
        vcpu.close()


def test_close_ends_the_thread_and_work_is_done_in_place_after(space, tree) -> None:
    vcpu = start(space, tree, COUNT_FOREVER)
    vcpu.close()
    assert all(thread.name != "pyqom-vcpu" for thread in threading.enumerate())
    assert vcpu.run_on_cpu(lambda: threading.current_thread().name) == \
        threading.current_thread().name
