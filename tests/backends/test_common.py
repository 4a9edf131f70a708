"""The common memory-backend properties, on memory-backend-ram."""

from __future__ import annotations

import ctypes

import pytest
from backend_helpers import error_of, keyval, numa_policy, open_fds, opts, vm_flags

from backends import host
from backends.base import MemoryBackend
from qom import (
    QomError,
    object_add,
    object_del,
    qom_get,
    qom_list,
    qom_list_properties,
    qom_list_types,
    qom_set,
)

MiB = 1024 * 1024


def ram(tree, id="m1", size=MiB, **props):
    return object_add(tree, {"qom-type": "memory-backend-ram", "id": id, "size": size, **props})


def objects(tree):
    return [entry["name"] for entry in qom_list(tree, "/objects")]


# -- types and properties --------------------------------------------------


def test_types(tree):
    names = [t["name"] for t in qom_list_types(tree.registry, "memory-backend", abstract=True)]
    assert set(names) == {"memory-backend", "memory-backend-ram", "memory-backend-file",
                          "memory-backend-memfd"}
    assert {"name": "memory-backend", "abstract": True, "parent": "object"} in \
        qom_list_types(tree.registry, "memory-backend", abstract=True)
    assert "memory-backend" in [t["name"] for t in
                                qom_list_types(tree.registry, "user-creatable", abstract=True)]


EXPECTED_PROPERTIES = [
    {"name": "type", "type": "string"},
    {"name": "share", "description": "Mark the memory as private to QEMU or shared",
     "type": "bool"},
    {"name": "size", "description": "Size of the memory region (ex: 500M)", "type": "int"},
    {"name": "dump", "description": "Set to 'off' to exclude from core dump", "type": "bool"},
    {"name": "prealloc-threads", "description": "Number of CPU threads to use for prealloc",
     "type": "int"},
    {"name": "x-use-canonical-path-for-ramblock-id", "type": "bool"},
    {"name": "policy", "description": "Set the NUMA policy", "type": "HostMemPolicy"},
    {"name": "prealloc-context",
     "description": "Context to use for creating CPU threads for preallocation",
     "type": "link<thread-context>"},
    {"name": "prealloc", "description": "Preallocate memory", "type": "bool"},
    {"name": "reserve", "description": "Reserve swap space (or huge pages) if applicable",
     "type": "bool"},
    {"name": "host-nodes", "description": "Binds memory to the list of NUMA host nodes",
     "type": "int"},
    {"name": "merge", "description": "Mark memory as mergeable", "type": "bool"},
]


def _key(entry):
    return entry["name"]


@pytest.mark.parametrize("typename", ["memory-backend", "memory-backend-ram"])
def test_qom_list_properties_as_qemu(tree, typename):
    # Order is GLib hash order in QEMU and carries no meaning: compare as sets.
    assert sorted(qom_list_properties(tree, typename), key=_key) == \
        sorted(EXPECTED_PROPERTIES, key=_key)


def test_qom_list_properties_file_and_memfd(tree):
    extra_file = [{"name": "readonly", "type": "bool"}, {"name": "align", "type": "int"},
                  {"name": "pmem", "type": "bool"}, {"name": "mem-path", "type": "string"},
                  {"name": "discard-data", "type": "bool"}]
    assert sorted(qom_list_properties(tree, "memory-backend-file"), key=_key) == \
        sorted(EXPECTED_PROPERTIES + extra_file, key=_key)
    # As real QEMU 7.2 describes them (checked with its qom-list-properties).
    extra_memfd = [{"name": "hugetlb", "type": "bool", "description": "Use huge pages"},
                   {"name": "seal", "type": "bool", "description": "Seal growing & shrinking"},
                   {"name": "hugetlbsize", "type": "int",
                    "description": "Huge pages size (ex: 2M, 1G)"}]
    assert sorted(qom_list_properties(tree, "memory-backend-memfd"), key=_key) == \
        sorted(EXPECTED_PROPERTIES + extra_memfd, key=_key)


def test_qom_list_of_a_backend_has_its_region(tree):
    ram(tree, "mem1")
    listing = {e["name"]: e["type"] for e in qom_list(tree, "/objects/mem1")}
    assert listing == {e["name"]: e["type"] for e in EXPECTED_PROPERTIES} | {
        "mem1[0]": "child<memory-region>"}
    assert qom_get(tree, "/objects/mem1", "mem1[0]") == "/objects/mem1/mem1[0]"
    assert qom_get(tree, "/objects/mem1/mem1[0]", "size") == MiB
    assert qom_get(tree, "/objects/mem1/mem1[0]", "type") == "memory-region"


def test_canonical_path_region_name(tree):
    ram(tree, "m1", **{"x-use-canonical-path-for-ramblock-id": True})
    names = [e["name"] for e in qom_list(tree, "/objects/m1")]
    assert "\\x2fobjects\\x2fm1[0]" in names


def test_defaults_as_qemu(tree):
    # probes section 6, for /objects/m2
    ram(tree, "m2", 134217728)
    expected = {"size": 134217728, "type": "memory-backend-ram", "merge": True, "dump": True,
                "share": False, "prealloc": False, "prealloc-threads": 1, "policy": "default",
                "host-nodes": [], "reserve": True, "prealloc-context": "",
                "x-use-canonical-path-for-ramblock-id": False}
    for name, value in expected.items():
        assert qom_get(tree, "m2", name) == value, name


@pytest.mark.parametrize("size", [1, 4097, 2 * MiB])
def test_odd_sizes_accepted_as_is(tree, size):
    backend = ram(tree, "x", size)
    assert qom_get(tree, "/objects/x", "size") == size
    assert backend.host_memory.size == size
    assert backend.host_memory.mapped_size == host.round_up(size, 4096)


# -- object-add errors (rows 21-23, probes 4) --------------------------------------


def test_size_zero_every_input(tree):
    msg = "property 'size' of memory-backend-ram doesn't take value '0'"
    assert error_of(ram, tree, "x", 0) == msg
    assert error_of(keyval, tree, "memory-backend-ram,id=x,size=0") == msg
    assert error_of(opts, tree, "memory-backend-ram,id=x,size=0") == msg
    assert objects(tree) == ["type"]


def test_size_missing(tree):
    assert error_of(object_add, tree, {"qom-type": "memory-backend-ram", "id": "x"}) == \
        "Parameter 'size' is missing"
    assert error_of(keyval, tree, "memory-backend-ram,id=x") == "Parameter 'size' is missing"
    assert error_of(opts, tree, "memory-backend-ram,id=x,foo=1") == \
        "Parameter 'size' is missing"


def test_abstract_type_refused(tree):
    assert error_of(object_add, tree,
                    {"qom-type": "memory-backend", "id": "x", "size": MiB}) == \
        "Parameter 'qom-type' does not accept value 'memory-backend'"
    assert error_of(keyval, tree, "memory-backend,id=x,size=1M") == \
        "Parameter 'qom-type' does not accept value 'memory-backend'"


@pytest.mark.parametrize(("props", "message"), [
    ({"size": "1G"}, "Parameter 'size' expects uint64"),
    ({"size": 1.5}, "Parameter 'size' expects uint64"),
    ({"size": 1 << 64}, "Parameter 'size' expects uint64"),
    ({"dump": "yes"}, "Invalid parameter type for 'dump', expected: boolean"),
    ({"dump": 1}, "Invalid parameter type for 'dump', expected: boolean"),
    ({"share": "on"}, "Invalid parameter type for 'share', expected: boolean"),
    ({"share": "on", "dump": "yes"}, "Invalid parameter type for 'dump', expected: boolean"),
    ({"prealloc-threads": 0},
     "property 'prealloc-threads' of memory-backend-ram doesn't take value '0'"),
    ({"prealloc-threads": -1}, "Parameter 'prealloc-threads' expects uint32_t"),
    ({"prealloc-threads": "2"}, "Parameter 'prealloc-threads' expects uint64"),
    ({"policy": "nosuch"}, "Parameter 'policy' does not accept value 'nosuch'"),
    ({"policy": 1}, "Invalid parameter type for 'policy', expected: string"),
    ({"policy": "bind"}, "host-nodes must be set for policy bind"),
    ({"policy": "preferred"}, "host-nodes must be set for policy preferred"),
    ({"policy": "interleave", "host-nodes": []}, "host-nodes must be set for policy interleave"),
    ({"host-nodes": 0}, "Invalid parameter type for 'host-nodes', expected: array"),
    ({"host-nodes": [200]}, "Invalid host-nodes value: 200"),
    ({"host-nodes": [200], "policy": "bind"}, "Invalid host-nodes value: 200"),
    ({"host-nodes": ["a"]}, "Parameter 'host-nodes[0]' expects uint64"),
    ({"host-nodes": [0]}, "host-nodes must be empty for policy default, or you should "
                          "explicitly specify a policy other than default"),
    ({"host-nodes": [1], "policy": "bind"},
     "cannot bind memory to host NUMA nodes: Invalid argument"),
    ({"foo": 1}, "Parameter 'foo' is unexpected"),
    ({"size": 0, "policy": "bind"},
     "property 'size' of memory-backend-ram doesn't take value '0'"),
    ({"policy": "bind", "prealloc-threads": 0},
     "property 'prealloc-threads' of memory-backend-ram doesn't take value '0'"),
    ({"prealloc": True, "reserve": False}, "'prealloc=on' and 'reserve=off' are incompatible"),
    ({"reserve": False, "prealloc": True}, "'prealloc=on' and 'reserve=off' are incompatible"),
])
def test_object_add_errors_json(tree, props, message):
    fds = open_fds()
    args = {"qom-type": "memory-backend-ram", "id": "x", "size": MiB} | props
    assert error_of(object_add, tree, args) == message
    assert objects(tree) == ["type"]
    assert open_fds() == fds


@pytest.mark.parametrize("size", [-1, (1 << 64) - 1, 1 << 63])
def test_huge_sizes_are_a_clean_error(tree, size):
    # QEMU 7.2 aborts on -1 / 2^64-1 (find_ram_offset assertion); 2^63 is its message.
    assert error_of(ram, tree, "x", size) == \
        "cannot set up guest memory 'x': Cannot allocate memory"
    assert objects(tree) == ["type"]


@pytest.mark.parametrize(("text", "message"), [
    # rows 51, 52 and probes section 10
    ("memory-backend-ram,id=h,size=64M,prealloc=on,reserve=off",
     "'prealloc=on' and 'reserve=off' are incompatible"),
    ("memory-backend-ram,id=h,size=64M,reserve=off,prealloc=on",
     "'prealloc=on' and 'reserve=off' are incompatible"),
    ("memory-backend-ram,id=h,size=64M,policy=bind", "host-nodes must be set for policy bind"),
    ("memory-backend-ram,id=x,size=1M,dump=maybe", "Parameter 'dump' expects 'on' or 'off'"),
    ("memory-backend-ram,id=x,size=1M,prealloc-threads=x",
     "Parameter 'prealloc-threads' expects integer"),
    ("memory-backend-ram,id=x,size=1M,prealloc-threads=0",
     "property 'prealloc-threads' of memory-backend-ram doesn't take value '0'"),
    ("memory-backend-ram,id=x,size=1M,policy=nosuch",
     "Parameter 'policy' does not accept value 'nosuch'"),
    ("memory-backend-ram,id=x,size=1M,host-nodes=0",
     "Invalid parameter type for 'host-nodes', expected: array"),
    ("memory-backend-ram,id=x,size=1M,host-nodes.0=0",
     "host-nodes must be empty for policy default, or you should explicitly specify a policy"
     " other than default"),
    ("memory-backend-ram,id=x,size=1Q", "Parameter 'size' expects size"),
    ("memory-backend-ram,id=x,size=-1", "Parameter 'size' expects size"),
    ("memory-backend-ram,id=x,size=1M,foo=1", "Parameter 'foo' is unexpected"),
])
def test_object_add_errors_hmp(tree, text, message):
    assert error_of(keyval, tree, text) == message
    assert objects(tree) == ["type"]


@pytest.mark.parametrize(("text", "message"), [
    # row 72 and probes section 11
    ("memory-backend-ram,id=m1,size=1Q", "Parameter 'size' expects a size value"),
    ("memory-backend-ram,id=m1,size=1M,prealloc-threads=x",
     "Parameter 'prealloc-threads' expects a uint64 value"),
    ("memory-backend-ram,id=m1,size=1M,prealloc-threads=-1",
     "Parameter 'prealloc-threads' expects a uint64 value"),
    ("memory-backend-ram,id=m1,size=1M,foo=1", "Invalid parameter 'foo'"),
    ("memory-backend-ram,id=m1,size=1M,host-nodes=0",
     "host-nodes must be empty for policy default, or you should explicitly specify a policy"
     " other than default"),
    ("memory-backend-ram,id=m1,size=1M,policy=bind", "host-nodes must be set for policy bind"),
])
def test_object_add_errors_cli(tree, text, message):
    assert error_of(opts, tree, text) == message
    assert objects(tree) == ["type"]


@pytest.mark.parametrize("text", [
    "memory-backend-ram,id=x,size=1.5M",
    "memory-backend-ram,id=x,size=0x100000",
    "memory-backend-ram,id=x,size=1M,dump=on,dump=off",
    "memory-backend-ram,id=x,size=1M,merge=y",
    "memory-backend-ram,id=x,size=1M,policy=bind,host-nodes.0=0,host-nodes.1=0",
])
def test_object_add_hmp_accepts(tree, text):
    backend = keyval(tree, text)
    assert backend.inited


def test_hmp_values(tree):
    keyval(tree, "memory-backend-ram,id=x,size=1.5M,dump=on,dump=off,policy=bind,host-nodes.0=0")
    assert qom_get(tree, "x", "size") == 1572864
    assert qom_get(tree, "x", "dump") is False
    assert qom_get(tree, "x", "host-nodes") == [0]
    assert qom_get(tree, "x", "policy") == "bind"


def test_cli_host_nodes_plain_value(tree):
    opts(tree, "memory-backend-ram,id=m1,size=1M,policy=bind,host-nodes=0")
    assert qom_get(tree, "m1", "host-nodes") == [0]


# -- after complete (rows 49-50, probes section 7) ---------------------------------


def test_qom_set_after_complete(tree):
    backend = ram(tree, "m2", 134217728)
    size_msg = "cannot change property size of memory-backend-ram "
    assert error_of(qom_set, tree, "/objects/m2", "size", 2097152) == size_msg
    # QEMU's size setter refuses before it even reads the value.
    assert error_of(qom_set, tree, "/objects/m2", "size", "1G") == size_msg
    assert error_of(qom_set, tree, "/objects/m2", "share", True) == \
        "cannot change property value"
    assert error_of(qom_set, tree, "/objects/m2", "share", "on") == \
        "Invalid parameter type for 'share', expected: boolean"
    assert error_of(qom_set, tree, "/objects/m2", "reserve", False) == \
        "cannot change property value"
    assert error_of(qom_set, tree, "/objects/m2", "merge", "no") == \
        "Invalid parameter type for 'merge', expected: boolean"
    assert error_of(qom_set, tree, "/objects/m2", "prealloc-threads", 0) == \
        "property 'prealloc-threads' of memory-backend-ram doesn't take value '0'"
    assert error_of(qom_set, tree, "/objects/m2", "prealloc-threads", "2") == \
        "Parameter 'prealloc-threads' expects uint64"
    assert error_of(qom_set, tree, "/objects/m2", "policy", "nosuch") == \
        "Parameter 'policy' does not accept value 'nosuch'"
    assert error_of(qom_set, tree, "/objects/m2", "type", "x") == \
        "Property 'memory-backend-ram.type' is not writable"
    assert error_of(qom_set, tree, "/objects/m2", "nosuch", 1) == \
        "Property 'memory-backend-ram.nosuch' not found"
    assert qom_get(tree, "m2", "size") == 134217728
    assert qom_get(tree, "m2", "share") is False
    assert backend.host_memory.size == 134217728


def test_qom_set_live_properties(tree):
    backend = ram(tree, "m2", 8 * MiB)
    address = backend.host_memory.address
    assert "mg" in vm_flags(address)
    qom_set(tree, "/objects/m2", "merge", False)
    assert qom_get(tree, "m2", "merge") is False
    assert "mg" not in vm_flags(address)
    qom_set(tree, "/objects/m2", "merge", True)
    assert "mg" in vm_flags(address)
    qom_set(tree, "/objects/m2", "dump", False)
    assert "dd" in vm_flags(address)
    qom_set(tree, "/objects/m2", "dump", True)
    assert "dd" not in vm_flags(address)
    qom_set(tree, "/objects/m2", "prealloc-threads", 2)
    assert qom_get(tree, "m2", "prealloc-threads") == 2
    qom_set(tree, "/objects/m2", "policy", "bind")
    qom_set(tree, "/objects/m2", "host-nodes", [0])
    assert qom_get(tree, "m2", "host-nodes") == [0]
    qom_set(tree, "/objects/m2", "x-use-canonical-path-for-ramblock-id", True)


def test_prealloc_set_live_populates_and_off_is_a_no_op(tree):
    backend = ram(tree, "m2", 16 * MiB)
    memory = backend.host_memory
    assert host.resident_pages(memory.address, memory.size) < 16 * MiB // 4096
    qom_set(tree, "/objects/m2", "prealloc", True)
    assert host.resident_pages(memory.address, memory.size) == 16 * MiB // 4096
    qom_set(tree, "/objects/m2", "prealloc", False)
    assert qom_get(tree, "m2", "prealloc") is True


def test_host_nodes_accumulate_like_qemu(tree):
    backend = object_add(tree, {"qom-type": "memory-backend-ram", "id": "x", "size": MiB,
                                "policy": "bind", "host-nodes": [0]})
    backend.set("host-nodes", [3])
    backend.set("host-nodes", [])
    assert qom_get(tree, "x", "host-nodes") == [0, 3]


# -- the memory itself ---------------------------------------------------------


def test_host_memory_is_real_and_aligned(tree):
    backend = ram(tree, "m1", 3 * MiB)
    memory = backend.host_memory
    assert isinstance(backend, MemoryBackend)
    assert memory.align == 2 * MiB and memory.address % (2 * MiB) == 0
    assert memory.fd == -1 and not memory.shared and not memory.readonly
    memory.view[0:5] = b"hello"
    memory.view[-1] = 0x5A
    assert ctypes.string_at(memory.address, 5) == b"hello"
    assert ctypes.string_at(memory.address + memory.size - 1, 1) == b"\x5a"
    flags = vm_flags(memory.address)
    assert {"rd", "wr", "mg", "hg"} <= flags and "sh" not in flags and "nr" not in flags


def test_share_reserve_and_dump_reach_the_mapping(tree):
    memory = ram(tree, "m1", 4 * MiB, share=True, reserve=False, dump=False).host_memory
    flags = vm_flags(memory.address)
    assert {"sh", "nr", "dd"} <= flags


def test_policy_bind_really_binds(tree):
    memory = ram(tree, "m1", 4 * MiB, policy="bind", **{"host-nodes": [0]}).host_memory
    assert numa_policy(memory.address) == "bind:0"
    memory = ram(tree, "m2", 4 * MiB, policy="interleave", **{"host-nodes": [0]}).host_memory
    assert numa_policy(memory.address) == "interleave:0"


def test_reserve_off_refused_with_strict_overcommit(tree, monkeypatch):
    monkeypatch.setattr(host, "overcommit_mode", lambda: 2)
    assert error_of(lambda: ram(tree, "x", MiB, reserve=False)) == (
        'Skipping reservation of swap space is not supported: '
        '"/proc/sys/vm/overcommit_memory" is "2"')
    assert objects(tree) == ["type"]
    ram(tree, "y", MiB, reserve=False, share=True)  # shared: MAP_NORESERVE works anyway


@pytest.mark.parametrize("threads", [1, 2, 4])
def test_prealloc_populates_every_page(tree, threads):
    size = 256 * MiB
    memory = ram(tree, "m1", size, prealloc=True, **{"prealloc-threads": threads}).host_memory
    assert host.resident_pages(memory.address, size) == size // 4096


def test_without_prealloc_pages_are_not_resident(tree):
    memory = ram(tree, "m1", 64 * MiB).host_memory
    assert host.resident_pages(memory.address, memory.size) == 0


# -- busy flag and deletion ------------------------------------------------------


def test_mapped_backend_cannot_be_deleted(tree):
    backend = ram(tree, "mem1")
    backend.set_mapped(True)
    assert backend.is_mapped() and not backend.can_be_deleted()
    assert error_of(object_del, tree, "mem1") == "object 'mem1' is in use, can not be deleted"
    assert backend.host_memory is not None
    backend.set_mapped(False)
    object_del(tree, "mem1")
    assert objects(tree) == ["type"]
    assert backend.host_memory is None and backend.finalized


def test_object_del_unmaps(tree):
    backend = ram(tree, "mem1", 4 * MiB)
    address = backend.host_memory.address
    vm_flags(address)
    object_del(tree, "mem1")
    with pytest.raises(LookupError):
        vm_flags(address)


def test_a_held_view_keeps_memory_valid_after_delete(tree):
    backend = ram(tree, "mem1", MiB)
    piece = backend.host_memory.view[10:20]
    object_del(tree, "mem1")
    piece[0] = 7  # still mapped: the view pins it
    assert piece[0] == 7
    piece.release()


def test_duplicate_id_frees_the_second_backend(tree):
    ram(tree, "m1")
    fds = open_fds()
    assert error_of(ram, tree, "m1") == \
        "attempt to add duplicate property 'm1' to object (type 'container')"
    assert open_fds() == fds


def test_query_memdev(tree, tmp_path):
    from backends.base import query_memdev

    assert query_memdev(tree) == []
    ram(tree, "mem1", 1073741824)
    object_add(tree, {"qom-type": "memory-backend-file", "id": "f1", "size": 2 * MiB,
                      "mem-path": str(tmp_path), "share": True, "policy": "bind",
                      "host-nodes": [0]})
    entries = {entry["id"]: entry for entry in query_memdev(tree)}
    assert entries == {
        "mem1": {"id": "mem1", "size": 1073741824, "merge": True, "dump": True,
                 "prealloc": False, "share": False, "reserve": True, "host-nodes": [],
                 "policy": "default"},
        "f1": {"id": "f1", "size": 2 * MiB, "merge": True, "dump": True, "prealloc": False,
               "share": True, "reserve": True, "host-nodes": [0], "policy": "bind"},
    }


def test_defaults_come_from_the_machine(tree):
    from qom import BOOL, Property, TypeInfo

    def machine_class_init(klass, data):
        klass.add_property(Property(name="mem-merge", type="bool", kind=BOOL,
                                    getter=lambda obj: False))
        klass.add_property(Property(name="dump-guest-core", type="bool", kind=BOOL,
                                    getter=lambda obj: False))
        klass.add_property(Property(name="smp", type="SMPConfiguration",
                                    getter=lambda obj: {"cpus": 3, "maxcpus": 3}))

    tree.registry.register(TypeInfo(name="test-machine", class_init=machine_class_init))
    tree.attach_machine(tree.new("test-machine"))
    backend = ram(tree, "m1", 4 * MiB)
    assert [qom_get(tree, "m1", p) for p in ("merge", "dump", "prealloc-threads")] == \
        [False, False, 3]
    flags = vm_flags(backend.host_memory.address)
    assert "mg" not in flags and "dd" in flags


def test_prealloc_context_link_errors(tree):
    # observed on QEMU 7.2
    with pytest.raises(QomError) as info:
        ram(tree, "r4", **{"prealloc-context": "nosuch"})
    assert str(info.value) == "Device 'nosuch' not found"
    assert info.value.error_class == "DeviceNotFound"
    assert error_of(ram, tree, "r5", **{"prealloc-context": "/objects"}) == \
        "Invalid parameter type for 'prealloc-context', expected: thread-context"
    ram(tree, "r6", **{"prealloc-context": ""})
    assert qom_get(tree, "r6", "prealloc-context") == ""


def test_memory_region_child_as_qemu(tree):
    ram(tree, "f1", 4 * MiB)
    assert qom_list(tree, "/objects/f1/f1[0]") == [
        {"name": "type", "type": "string"}, {"name": "container", "type": "link<memory-region>"},
        {"name": "addr", "type": "uint64"}, {"name": "size", "type": "uint64"},
        {"name": "priority", "type": "uint32"}]
    assert [qom_get(tree, "/objects/f1/f1[0]", p) for p in
            ("addr", "size", "priority", "container")] == [0, 4 * MiB, 0, ""]
