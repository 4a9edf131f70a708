"""Planning a plug (``devices.plan``): the plan is what the real plug then does, and
the machine is exactly as it was after a plan."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import qom
from devices.plan import memory_capacity, plan_plug, requests_from_qmp
from plugins import hookimpl
from plugins.memdev import TYPE_MEMORY_BACKEND, as_memdev
from plugins.services import ACPI, GUEST_MEMORY, PORT_IO, services_of
from pyqom.vm import VM

M, G = 1 << 20, 1 << 30


# -- the machine's whole state -----------------------------------------------

def _objects(tree: qom.ObjectTree, path: str) -> Iterator[str]:
    yield path
    for entry in qom.qom_list(tree, path):
        if entry["type"].startswith("child<"):
            yield from _objects(tree, f"{path.rstrip('/')}/{entry['name']}")


def machine_state(vm: VM) -> dict[str, Any]:
    """Everything a plan could change: every object and the value of every property,
    the plugged memory devices, the guest's mappings and claimed ports, the ACPI
    tables and OSPM slots, the tree's device counters, the backends' busy flags, the open file
    descriptors and the host's large mappings."""
    tree = vm.tree
    properties = {}
    for path in _objects(tree, "/"):
        for entry in qom.qom_list(tree, path):
            try:
                value: Any = qom.qom_get(tree, path, entry["name"])
            except qom.QomError as err:
                value = f"error: {err}"
            properties[f"{path}.{entry['name']}"] = repr(value)
    services = services_of(vm.machine)
    space = services.get(GUEST_MEMORY)
    acpi = services.get(ACPI)
    backends = [(name, getattr(obj, "mapped", None), getattr(obj, "host_memory", None))
                for name, obj in tree.objects.children()]
    return {
        "properties": properties,
        "plugged": [(getattr(dev, "id", None), dev.get_addr(), dev.get_slot())
                    for dev in vm.machine.memory_devices()],
        "mappings": [(m.name, m.gpa, m.size, m.offset, m.readonly) for m in space.mappings()],
        "ports": [(r.name, r.base, r.length) for r in services.get(PORT_IO).port_ranges()],
        "acpi": acpi.tables(),
        "ospm": acpi.ospm_status(),
        "counters": (tree.anon_device_count, tree.unattached_count),
        "backends": [(name, mapped, memory is not None and memory.address)
                     for name, mapped, memory in backends],
        "fds": sorted(os.listdir("/proc/self/fd")),
        "large-mappings": _large_mappings(),
    }


def _large_mappings() -> list[str]:
    """Host mappings of 64 MiB or more (Python's own allocator makes and drops
    smaller ones at any time)."""
    large = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            start, end = (int(part, 16) for part in line.split()[0].split("-"))
            if end - start >= 64 * M:
                large.append(line.split()[0])
    return large


def vm_peak() -> int:
    """The process's peak virtual size in bytes (it only grows)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmPeak:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmPeak")


# -- running the real requests ------------------------------------------------

def run_real(vm: VM, requests: list[dict[str, Any]]) -> tuple[list[qom.Object], Any]:
    """Run ``requests`` as QMP would, up to the first failure.

    :returns: the objects and devices made, and (index, class, desc) of the
        failure or ``None``.
    """
    made: list[qom.Object] = []
    for index, request in enumerate(requests):
        try:
            if request["execute"] == "object-add":
                made.append(qom.object_add(vm.tree, request["arguments"]))
            else:
                made.append(qom.device_add(vm.tree,
                                           qom.qemu_opts_from_qdict(request["arguments"])))
        except qom.QomError as err:
            return made, (index, err.error_class, str(err))
    return made, None


def ram(name: str, size: int, kind: str = "memory-backend-ram") -> dict[str, Any]:
    return {"execute": "object-add", "arguments": {"qom-type": kind, "id": name, "size": size}}


def dimm(memdev: str | None, name: str | None = None, **props: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {"driver": "pc-dimm"}
    if name is not None:
        arguments["id"] = name
    if memdev is not None:
        arguments["memdev"] = memdev
    return {"execute": "device_add", "arguments": {**arguments, **props}}


def check_plan_matches(vm: VM, requests: list[dict[str, Any]]) -> dict[str, Any]:
    """Plan, check the machine did not change, run for real, check both agree."""
    before = machine_state(vm)
    plan = vm.plan_plug(*requests)
    assert machine_state(vm) == before
    made, failure = run_real(vm, requests)
    if failure is None:
        assert plan["fits"] is True
    else:
        assert plan["fits"] is False
        assert (plan["failed"], plan["error"]["class"], plan["error"]["desc"]) == failure
    real_devices = [obj for obj in made if isinstance(obj, qom.Device)]
    assert len(real_devices) == len(plan["devices"])
    for device, planned in zip(real_devices, plan["devices"], strict=True):
        info = device.fill_device_info()["data"]  # type: ignore[attr-defined]
        assert (planned["slot"], planned["addr"], planned["size"]) == (
            info["slot"], info["addr"], info["size"])
        assert planned.get("id") == info.get("id")
    real_objects = [obj for obj in made if not isinstance(obj, qom.Device)]
    assert [o["id"] for o in plan["objects"]] == [o.name_in_parent for o in real_objects]
    for obj, planned in zip(real_objects, plan["objects"], strict=True):
        assert planned["align"] == obj.host_memory.align  # type: ignore[attr-defined]
    left = vm.memory_capacity()
    assert plan["slots-left"] == left["free-slots"]
    assert plan["maxmem-left"] == left["maxmem-free"]
    assert plan.get("highest-address") == left.get("highest-address")
    return plan


# -- examples -------------------------------------------------------------------

def test_a_plan_says_where_and_the_plug_goes_there() -> None:
    with VM("1G,slots=3,maxmem=4G") as vm:
        plan = check_plan_matches(vm, [ram("m1", G), dimm("m1", "d1"),
                                       ram("m2", 512 * M), dimm("m2", "d2", slot="2")])
        assert plan["fits"] is True
        assert [(d["slot"], d["addr"], d["padding"]) for d in plan["devices"]] == [
            (0, 4 * G, 0), (2, 5 * G, 0)]
        assert (plan["slots-left"], plan["maxmem-left"]) == (1, 3 * G - G - 512 * M)
        assert plan["highest-address"] == 5 * G + 512 * M - 1
        assert plan["phys-bits-limit"] == (1 << 40) - 1


def test_a_refusal_is_the_real_error() -> None:
    with VM("1G,slots=3,maxmem=4G") as vm:
        plan = check_plan_matches(vm, [ram("m1", 3 * G), dimm("m1", "d1"),
                                       ram("m2", G), dimm("m2", "d2")])
        assert plan["failed"] == 3
        assert plan["error"] == {
            "class": "GenericError",
            "desc": "not enough space, currently 0xc0000000 in use of total space for "
                    "memory devices 0xc0000000"}
        # what fitted is reported, and the room it would leave
        assert [d["id"] for d in plan["devices"]] == ["d1"]
        assert plan["maxmem-left"] == 0


@pytest.mark.parametrize("requests", [
    [ram("m1", G), dimm("m1", "d1"), dimm("m1", "d2")],           # busy memdev
    [ram("m1", G), ram("m1", G)],                                  # duplicate object id
    [ram("m1", G), dimm("m1", "d1"), ram("m2", G), dimm("m2", "d1")],  # duplicate device id
    [ram("m1", 0)],                                                # size 0
    [dimm("nosuch", "d1")],                                        # no such memdev
    [ram("m1", G), dimm("m1", "d1", slot="3")],                    # slot out of range
    [ram("m1", G), dimm("m1", "d1", addr=str(4 * G + M))],         # unaligned address
    [ram("m1", G), dimm("m1", "d1", node="1")],                    # NUMA node
    [ram("m1", 3 * M)],                                            # not 2 MiB sized...
    [ram("m1", 3 * M), dimm("m1")],                                # ...then refused
    [ram("m1", G, "memory-backend-memfd"), dimm("m1", "d1")],      # memfd: page aligned
    [{"execute": "object-add", "arguments": {"qom-type": "memory-backend-ram", "id": "m",
                                             "size": "1G"}}],      # QMP type error
    [{"execute": "device_add", "arguments": {"driver": "nosuch"}}],
])
def test_plan_equals_the_real_plug(requests: list[dict[str, Any]]) -> None:
    with VM("1G,slots=3,maxmem=4G") as vm:
        check_plan_matches(vm, requests)


def test_a_plan_fills_holes_as_first_fit_does() -> None:
    with VM("1G,slots=4,maxmem=8G") as vm:
        for name in ("a", "b", "c"):
            vm.object_add("memory-backend-ram", name, size=G)
            vm.device_add("pc-dimm", f"d{name}", memdev=name)
        vm.machine.unplug(vm.tree.resolve("/machine/peripheral/db")[0])  # type: ignore[arg-type]
        vm.tree.resolve("/machine/peripheral/db")[0].unparent()  # type: ignore[union-attr]
        plan = check_plan_matches(vm, [ram("m1", 512 * M), dimm("m1", "x"),
                                       ram("m2", 2 * G), dimm("m2", "y")])
        assert [(d["addr"], d["padding"]) for d in plan["devices"]] == [
            (5 * G, 0), (7 * G, 0)]


def test_a_plan_of_64_gib_maps_nothing() -> None:
    with VM("1G,slots=2,maxmem=129G") as vm:
        peak = vm_peak()
        before = machine_state(vm)
        plan = vm.plan_plug(ram("big", 64 * G), dimm("big", "d1"),
                            ram("huge", 64 * G, "memory-backend-memfd"), dimm("huge", "d2"))
        assert plan["fits"] is True
        assert [d["addr"] for d in plan["devices"]] == [4 * G, 68 * G]
        assert vm_peak() - peak < G        # no 64 GiB mapping, not even for a moment
        assert machine_state(vm) == before


def test_prealloc_is_planned_without_populating() -> None:
    with VM("1G,slots=2,maxmem=8G") as vm:
        request = ram("m1", G)
        request["arguments"]["prealloc"] = True
        peak = vm_peak()
        assert vm.plan_plug(request, dimm("m1"))["fits"] is True
        assert vm_peak() - peak < G


def file_backend(name: str, size: int, path: str, **extra: Any) -> dict[str, Any]:
    return {"execute": "object-add", "arguments": {
        "qom-type": "memory-backend-file", "id": name, "size": size, "mem-path": path,
        **extra}}


@pytest.mark.parametrize("where", ["new", "directory", "empty", "small", "large", "missing"])
def test_file_backends_are_planned_on_the_real_file(where: str, tmp_path: Any) -> None:
    path = tmp_path / "mem"
    if where == "directory":
        path = tmp_path
    elif where in ("empty", "small", "large"):
        path.write_bytes(b"x" * {"empty": 0, "small": 4096, "large": 4 << 20}[where])
    elif where == "missing":
        path = tmp_path / "no" / "such"
    before = sorted(p.name for p in tmp_path.iterdir()), path.exists() and path.is_file() \
        and path.stat().st_size
    with VM("1G,slots=2,maxmem=4G") as vm:
        requests = [file_backend("f", 2 << 20, str(path), share=True), dimm("f", "d1")]
        plan = vm.plan_plug(*requests)
        # the plan left the directory and the file as they were...
        assert (sorted(p.name for p in tmp_path.iterdir()), path.exists() and path.is_file()
                and path.stat().st_size) == before
        # ...and is what the real commands do
        check_plan_matches(vm, requests)
    if where == "missing":
        assert plan["error"]["desc"] == (f"can't open backing store {path} for guest RAM: "
                                         "No such file or directory")
    elif where == "small":
        assert plan["error"]["desc"] == (
            "backing store size 0x1000 does not match 'size' option 0x200000")
    else:
        assert plan["fits"] is True
        assert plan["objects"][0]["align"] == 4096


def test_a_planned_file_backend_with_discard_data_keeps_the_data(tmp_path: Any) -> None:
    path = tmp_path / "mem"
    path.write_bytes(b"keep" * (1 << 19))
    with VM("1G,slots=2,maxmem=4G") as vm:
        plan = vm.plan_plug(file_backend("f", 2 << 20, str(path), share=True,
                                         **{"discard-data": True}), dimm("f"))
        assert plan["fits"] is True
    assert path.read_bytes() == b"keep" * (1 << 19)


def test_only_object_add_and_device_add_are_planned() -> None:
    with VM("1G,slots=2,maxmem=8G") as vm:
        with pytest.raises(qom.QomError, match="only object-add and device_add"):
            vm.plan_plug({"execute": "object-del", "arguments": {"id": "f"}})
        plan = vm.plan_plug({"execute": "object-add", "arguments": {
            "qom-type": "authz-simple", "id": "a"}})
        assert plan["error"]["desc"] == "Parameter 'qom-type' does not accept value " \
            "'authz-simple'"


def test_bad_requests_are_one_line_errors() -> None:
    with pytest.raises(qom.QomError, match=r"^Parameter 'requests\[0\].execute' is missing$"):
        requests_from_qmp([{"arguments": {}}])
    with pytest.raises(qom.QomError, match=r"expected: object$"):
        requests_from_qmp([3])


# -- the capacity query -------------------------------------------------------

@pytest.mark.parametrize("align", [4096, 2 * M, G])
def test_the_largest_dimm_fits_and_one_step_more_does_not(align: int) -> None:
    # region [4G, 4G + (6G - 1G) + 4 x 1G): a DIMM at 6G leaves 2G below it, 6G above
    with VM("1G,slots=4,maxmem=6G") as vm:
        vm.object_add("memory-backend-ram", "a", size=G)
        vm.device_add("pc-dimm", "da", memdev="a", addr=str(6 * G))
        capacity = memory_capacity(vm.machine, (align,))
        assert capacity["free-ranges"] == [{"addr": 4 * G, "size": 2 * G},
                                           {"addr": 7 * G, "size": 6 * G}]
        assert capacity["fragmentation"] == 25
        assert capacity["maxmem-free"] == 4 * G
        largest = capacity["largest-dimm"][0]["size"]
        assert largest == 4 * G                 # maxmem, not the 6G range, is the limit
        kind = "memory-backend-memfd" if align == 4096 else "memory-backend-ram"
        assert vm.plan_plug(ram("x", largest, kind), dimm("x"))["fits"] is True
        too_big = vm.plan_plug(ram("x", largest + 2 * M, kind), dimm("x"))
        assert too_big["error"]["desc"].startswith("not enough space")


def test_the_largest_dimm_is_bounded_by_the_free_ranges() -> None:
    # region [4G, 4G + 7G + 4 x 1G): DIMMs at 5G, 8G and 11G (2G) leave 1G, 2G, 2G and 2G
    with VM("1G,slots=4,maxmem=8G") as vm:
        for name, addr, size in (("a", 5 * G, G), ("b", 8 * G, G), ("c", 11 * G, 2 * G)):
            vm.object_add("memory-backend-ram", name, size=size)
            vm.device_add("pc-dimm", f"d{name}", memdev=name, addr=str(addr))
        capacity = vm.memory_capacity()
        assert [(r["addr"], r["size"]) for r in capacity["free-ranges"]] == [
            (4 * G, G), (6 * G, 2 * G), (9 * G, 2 * G), (13 * G, 2 * G)]
        assert capacity["maxmem-free"] == 3 * G
        assert capacity["fragmentation"] == 72        # 2G of 7G free in one range
        assert [entry["size"] for entry in capacity["largest-dimm"]] == [2 * G] * 3
        plan = vm.plan_plug(ram("x", 2 * G), dimm("x"))
        assert (plan["fits"], plan["devices"][0]["addr"]) == (True, 6 * G)
        assert vm.plan_plug(ram("x", 2 * G + 2 * M), dimm("x"))["error"]["desc"] == (
            "could not find position in guest address space for memory device - "
            "memory fragmented due to alignments")


def test_no_free_slot_no_dimm() -> None:
    with VM("1G,slots=1,maxmem=6G") as vm:
        vm.object_add("memory-backend-ram", "a", size=G)
        vm.device_add("pc-dimm", "da", memdev="a")
        capacity = vm.memory_capacity()
        assert capacity["free-slots"] == 0
        assert [entry["size"] for entry in capacity["largest-dimm"]] == [0, 0, 0]
        assert vm.plan_plug(ram("b", G), dimm("b"))["error"]["desc"] == (
            "no free slots available")


# -- property: plan == real plug, machine unchanged ---------------------------

SIZES = st.sampled_from([2 * M, 128 * M, 512 * M, G, G, 2 * G, 3 * G, 0, 3 * M])
ADDRESSES = st.sampled_from([4 * G, 5 * G, 6 * G, 4 * G + 2 * M, 4 * G + 4096, 9 * G, 3 * G])


@st.composite
def requests_strategy(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Mostly a backend and a DIMM using it, pair after pair, with every kind of
    mistake now and then (reused ids, missing or unknown memdev, slots and
    addresses taken or out of range, a NUMA node that does not exist)."""
    requests = []
    for index in range(draw(st.integers(1, 4))):
        name = f"m{index}" if draw(st.integers(0, 9)) else "m0"
        kind = draw(st.sampled_from(["memory-backend-ram"] * 3 + ["memory-backend-memfd"]))
        requests.append(ram(name, draw(SIZES), kind))
        props: dict[str, Any] = {}
        if draw(st.integers(0, 3)) == 0:
            props["slot"] = str(draw(st.integers(-1, 8)))
        if draw(st.integers(0, 4)) == 0:
            props["addr"] = str(draw(ADDRESSES))
        if draw(st.integers(0, 9)) == 0:
            props["node"] = "1"
        memdev = draw(st.sampled_from([name] * 8 + [None, "nosuch"]))
        device_id = f"d{index}" if draw(st.integers(0, 9)) else "d0"
        requests.append(dimm(memdev, device_id if draw(st.integers(0, 4)) else None, **props))
    return requests


@st.composite
def machines(draw: st.DrawFn) -> tuple[str, list[dict[str, Any]]]:
    ram_size = draw(st.sampled_from(["128M", "1G", "3584M", "4G"]))
    slots = draw(st.integers(1, 8))
    maxmem = draw(st.sampled_from(["5G", "8G", "9G", "12G", "7170M"]))
    setup = [ram(f"p{i}", draw(st.sampled_from([512 * M, G, 2 * G]))) for i in range(3)]
    plugs = [dimm(f"p{i}", f"pd{i}", **({"addr": str(draw(ADDRESSES))}
                                        if draw(st.booleans()) else {}))
             for i in range(draw(st.integers(0, 3)))]
    return f"{ram_size},slots={slots},maxmem={maxmem}", setup + plugs


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(machine=machines(), requests=requests_strategy(), hot=st.booleans())
def test_property_plan_is_the_real_plug(machine: tuple[str, list[dict[str, Any]]],
                                        requests: list[dict[str, Any]], hot: bool) -> None:
    memory, setup = machine
    with VM(memory) as vm:
        run_real(vm, setup)          # some of the set-up may be refused: that is a state too
        if not hot:
            vm.tree.machine_ready = False   # cold plug (-device) is planned the same way
        plan = check_plan_matches(vm, requests)
        event("fits" if plan["fits"] else plan["error"]["desc"].split(",")[0][:40])
        event(f"{len(plan['devices'])} devices placed")


def test_plan_plug_before_a_machine_is_a_clean_error() -> None:
    vm = VM.empty()
    try:
        with pytest.raises(qom.QomError, match=r"^there is no machine yet$"):
            plan_plug(vm.tree, [])
    finally:
        vm.close()


# -- a memory device of a plugin's own, without a slot -------------------------

@attrs.define(eq=False, repr=False)
class SlotlessMemdev(qom.Device, qom.MemoryDevice):
    """A memory device as a plugin writes one (CONTRIBUTING.md's example): no slot."""

    memdev = qom.qom_link("memdev", TYPE_MEMORY_BACKEND, check=qom.link_check_before_realize)
    addr: int = qom.device_property("addr", qom.UINT64, type="uint64", default=0)

    def get_addr(self) -> int:
        return self.addr

    def set_addr(self, addr: int) -> None:
        self.addr = addr

    def get_region_size(self) -> int:
        return int(as_memdev(self.memdev).size)

    def get_min_alignment(self) -> int:
        return self.get_host_region().align

    def get_host_region(self) -> qom.HostRegion:
        memory = as_memdev(self.memdev).host_memory
        assert memory is not None
        return memory

    def get_memdev(self) -> qom.Object | None:
        return self.memdev

    def fill_device_info(self) -> dict[str, Any]:
        return {"type": "slotless", "data": {"id": self.id, "addr": self.addr,
                                             "size": self.get_region_size()}}


class SlotlessPlugin:
    @hookimpl
    def qom_register_types(self, registry: qom.TypeRegistry) -> None:
        registry.register(qom.TypeInfo(name="slotless", parent=qom.TYPE_DEVICE,
                                       impl=SlotlessMemdev,
                                       interfaces=(qom.TYPE_MEMORY_DEVICE,)))


def test_a_plugin_memory_device_is_planned_like_a_dimm() -> None:
    with VM("1G,slots=2,maxmem=8G", plugins=[SlotlessPlugin()], autoload=False) as vm:
        requests = [ram("m1", G), {"execute": "device_add", "arguments": {
                        "driver": "slotless", "id": "s1", "memdev": "m1"}},
                    ram("m2", G), dimm("m2", "d2")]
        before = machine_state(vm)
        plan = vm.plan_plug(*requests)
        assert machine_state(vm) == before
        assert [(d["id"], d.get("slot"), d["addr"]) for d in plan["devices"]] == [
            ("s1", None, 4 * G), ("d2", 0, 5 * G)]
        made, failure = run_real(vm, requests)
        assert failure is None
        assert [(dev.id, dev.get_addr()) for dev in made  # type: ignore[attr-defined]
                if isinstance(dev, qom.Device)] == [("s1", 4 * G), ("d2", 5 * G)]
