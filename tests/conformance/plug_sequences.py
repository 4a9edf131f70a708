"""Random plug sequences for the regeneration round trips (hypothesis).

A sequence is a list of steps applied to a live VM after start-up: create a
backend (``memory-backend-ram`` or ``-memfd``, 128 or 256 MiB, shared or
not), hot-plug a ``pc-dimm`` on the n-th backend made so far (with or
without an id, in the first free slot or a chosen one), or ``object-del`` the n-th backend.  Steps QEMU would refuse
(plugging a busy backend, deleting one in use, a full slot table) are
refused by pyqom too and leave the machine as it was; the sequence goes on.
An unplug is ``device_del`` of the n-th plugged DIMM, then guest code run on
the machine's CPU (``VM.run``) ejects it through the memory-hotplug register
block, as an OS does (select the slot at 0x0A00, the eject bit at 0x0A14):
without a guest, ``device_del`` would leave the DIMM in place, as in QEMU 7.2.
"""

from __future__ import annotations

import struct
from typing import Any

from hypothesis import strategies as st

import qom
from pyqom.vm import VM

#: the machine every sequence starts from (4 slots, room for 4 x 256 MiB)
MEMORY = "1G,slots=4,maxmem=4G"

add_backend = st.tuples(st.just("add"),
                        st.sampled_from(["memory-backend-ram", "memory-backend-memfd"]),
                        st.sampled_from([128, 256]), st.booleans())
plug = st.tuples(st.just("plug"), st.integers(0, 5), st.booleans(),
                 st.one_of(st.none(), st.integers(0, 3)))
delete = st.tuples(st.just("del"), st.integers(0, 5))
unplug = st.tuples(st.just("unplug"), st.integers(0, 3))
#: a sequence that fills slots out of order, unplugs and plugs again, with deletions
#: and backends left unplugged
FULL = [("add", "memory-backend-ram", 256, False), ("add", "memory-backend-memfd", 128, True),
        ("plug", 1, True, 3), ("add", "memory-backend-ram", 128, True), ("del", 0),
        ("plug", 2, False, None), ("add", "memory-backend-memfd", 256, False),
        ("plug", 3, True, 0), ("add", "memory-backend-ram", 256, False), ("plug", 4, True, None),
        ("add", "memory-backend-ram", 128, False), ("unplug", 0), ("plug", 5, True, None),
        ("unplug", 1), ("del", 2)]
sequences = st.lists(st.one_of(add_backend, add_backend, plug, plug, delete, unplug),
                     max_size=12)


def eject_code(slot: int) -> bytes:
    """x86-64: ``mov dx, 0xa00; mov eax, slot; out dx, eax; mov dx, 0xa14;
    mov al, 8; out dx, al; hlt`` (MSEL, then MEMORY_SLOT_EJECT)."""
    return (b"\x66\xba\x00\x0a" + b"\xb8" + struct.pack("<I", slot) + b"\xef"
            + b"\x66\xba\x14\x0a" + b"\xb0\x08" + b"\xee" + b"\xf4")


def _unplug(vm: VM, index: int) -> str | None:
    plugged = vm.machine.memory_devices()
    if not plugged:
        return None
    device = plugged[index % len(plugged)]
    path, slot = device.canonical_path, device.get_slot()
    assert isinstance(path, str) and slot is not None
    vm.device_del(path)
    vm.run(eject_code(slot), load_at=0x1000)
    assert device not in vm.machine.memory_devices(), "the guest's eject did not unplug"
    return f"device_del {path} (ejected)"


def apply(vm: VM, steps: list[tuple[Any, ...]]) -> list[str]:
    """Run ``steps`` on ``vm``; returns what was done (refused steps left out)."""
    made: list[str] = []
    done: list[str] = []
    for step in steps:
        try:
            if step[0] == "add":
                _, kind, mib, share = step
                name = f"mem{len(made)}"
                vm.object_add(kind, name, size=mib << 20, share=share)
                made.append(name)
                done.append(f"object-add {kind} {name}")
            elif step[0] == "plug" and made:
                _, index, named, slot = step
                backend = made[index % len(made)]
                pinned = {} if slot is None else {"slot": slot}
                device = vm.device_add("pc-dimm", f"dimm-{backend}" if named else None,
                                       memdev=backend, **pinned)
                done.append(f"device_add {device.type_name} memdev={backend}")
            elif step[0] == "unplug":
                if (what := _unplug(vm, step[1])) is not None:
                    done.append(what)
            elif step[0] == "del" and made:
                backend = made[step[1] % len(made)]
                vm.object_del(backend)
                done.append(f"object-del {backend}")
        except qom.QomError:
            continue
    return done


#: a NUMA machine: two memdev nodes, CPUs placed by socket, distances, HMAT,
#: and a DIMM on node 1
NUMA_LINE = [
    "-machine", "pc,hmat=on", "-m", "2G,slots=2,maxmem=4G", "-smp", "4,sockets=2,cores=2",
    "-object", "memory-backend-ram,id=m0,size=1G", "-object", "memory-backend-ram,id=m1,size=1G",
    "-object", "memory-backend-ram,id=d1mem,size=512M",
    "-numa", "node,nodeid=0,memdev=m0", "-numa", "node,nodeid=1,memdev=m1",
    "-numa", "cpu,node-id=0,socket-id=0", "-numa", "cpu,node-id=1,socket-id=1",
    "-numa", "dist,src=0,dst=1,val=21",
    "-numa", "hmat-lb,initiator=0,target=0,hierarchy=memory,data-type=access-latency,latency=5",
    "-numa", "hmat-lb,initiator=1,target=1,hierarchy=memory,data-type=access-latency,latency=5",
    "-numa", "hmat-lb,initiator=0,target=1,hierarchy=memory,data-type=access-latency,latency=10",
    "-numa", "hmat-lb,initiator=1,target=0,hierarchy=memory,data-type=access-latency,latency=10",
    "-device", "pc-dimm,id=d1,memdev=d1mem,node=1",
]
