"""qom.tree: the containers, link target resolution, events."""

from __future__ import annotations

import pytest
from dummy_types import BACKEND, DIMM
from hypothesis import given, settings
from hypothesis import strategies as st

import qom
from qom.paths import resolve_path


def test_fresh_tree_layout(tree: qom.ObjectTree) -> None:
    assert tree.root.canonical_path == "/"
    assert tree.root.type_name == "container"
    assert sorted(name for name, _ in tree.root.children()) == ["chardevs", "objects"]
    assert tree.objects.canonical_path == "/objects"
    assert tree.machine is None
    assert not tree.machine_ready and tree.anon_device_count == 0


def test_attach_machine_makes_the_containers(tree: qom.ObjectTree, machine) -> None:
    assert tree.machine is machine
    assert machine.canonical_path == "/machine"
    for name in ("peripheral", "peripheral-anon", "unattached"):
        container = tree.container(f"/machine/{name}")
        assert container.canonical_path == f"/machine/{name}"
        assert container.type_name == "container"
    assert machine.find_property("peripheral").type == "child<container>"


def test_container_is_made_once(tree: qom.ObjectTree) -> None:
    first = tree.container("/x/y")
    assert tree.container("x/y/") is first
    assert tree.container("/x").child("y") is first


def test_trees_are_independent(plugin_manager) -> None:
    from pyqom.manager import make_tree

    one, two = make_tree(plugin_manager), make_tree(plugin_manager)
    qom.object_add(one, {"qom-type": BACKEND, "id": "m1", "size": 1})
    assert one.resolve("/objects/m1")[0] is not None
    assert two.resolve("/objects/m1") == (None, False)


@pytest.fixture
def target_tree(tree: qom.ObjectTree, machine, backend) -> qom.ObjectTree:
    backend("m1")
    tree.container("/a/dupc")
    tree.container("/b/dupc")
    tree.container("/a").add_child("dup", tree.new(BACKEND))
    tree.container("/b").add_child("dup", tree.new(BACKEND))
    return tree


def test_resolve_link_target(target_tree: qom.ObjectTree) -> None:
    m1 = target_tree.resolve("/objects/m1")[0]
    assert target_tree.resolve_link_target("memdev", "m1", BACKEND) is m1
    assert target_tree.resolve_link_target("memdev", "/objects/m1", BACKEND) is m1


@pytest.mark.parametrize(("path", "error", "message"), [
    ("nosuch", qom.DeviceNotFoundError, "Device 'nosuch' not found"),
    ("/objects/nosuch", qom.DeviceNotFoundError, "Device '/objects/nosuch' not found"),
    ("/machine", qom.ParameterError,
     "Invalid parameter type for 'memdev', expected: dummy-backend"),
    ("objects", qom.ParameterError,
     "Invalid parameter type for 'memdev', expected: dummy-backend"),
    ("dup", qom.AmbiguousPathError, "Path 'dup' does not uniquely identify an object"),
    # two matches of the wrong type: QEMU's object_resolve_link says "type"
    ("dupc", qom.ParameterError,
     "Invalid parameter type for 'memdev', expected: dummy-backend"),
])
def test_resolve_link_target_errors(target_tree: qom.ObjectTree, path, error, message) -> None:
    with pytest.raises(error) as info:
        target_tree.resolve_link_target("memdev", path, BACKEND)
    assert str(info.value) == message


def test_device_not_found_error_class(target_tree: qom.ObjectTree) -> None:
    with pytest.raises(qom.DeviceNotFoundError) as info:
        target_tree.resolve_link_target("memdev", "nosuch", BACKEND)
    assert info.value.error_class == "DeviceNotFound"
    assert qom.QomError("x").error_class == "GenericError"


def test_events_reach_the_qom_event_hook(tree: qom.ObjectTree, hook_recorder) -> None:
    tree.emit("SOMETHING", {"a": 1})
    calls = hook_recorder.get_calls("qom_event")
    assert len(calls) == 1
    assert calls[0].kwargs["name"] == "SOMETHING"
    assert calls[0].kwargs["data"] == {"a": 1}
    assert calls[0].kwargs["tree"] is tree


def test_device_deleted_event(tree: qom.ObjectTree, machine, backend, hook_recorder) -> None:
    backend("m1")
    backend("m2")
    named = qom.device_add(tree, {"driver": DIMM, "id": "dimm1", "memdev": "m1"})
    anon = qom.device_add(tree, {"driver": DIMM, "memdev": "m2"})
    hook_recorder.clear()
    qom.complete_unplug(named)
    qom.complete_unplug(anon)
    events = [(c.kwargs["name"], c.kwargs["data"]) for c in hook_recorder.get_calls("qom_event")]
    assert events == [
        ("DEVICE_DELETED", {"device": "dimm1", "path": "/machine/peripheral/dimm1"}),
        ("DEVICE_DELETED", {"path": "/machine/peripheral-anon/device[0]"}),
    ]


# -- the child-name index agrees with QEMU's full partial-path walk ----------

_NAMES = st.sampled_from(["a", "b", "c", "mem1", "dimm1"])


@settings(max_examples=60, deadline=None)
@given(edges=st.lists(st.tuples(st.integers(0, 30), _NAMES), max_size=30),
       removals=st.lists(st.integers(0, 30), max_size=5))
def test_index_resolution_matches_the_walk(edges, removals):
    registry = qom.TypeRegistry()
    tree = qom.ObjectTree.create(registry)
    nodes = [tree.root]
    for parent_index, name in edges:
        parent = nodes[parent_index % len(nodes)]
        child = tree.new("container")
        try:
            parent.add_child(name, child)
        except qom.QomError:
            child.finalize()
            continue
        nodes.append(child)
    for index in removals:
        victim = nodes[index % len(nodes)]
        if victim is not tree.root and victim.parent is not None:
            victim.unparent()
    for name in ["a", "b", "c", "mem1", "dimm1", "objects", "nosuch"]:
        assert tree.resolve(name) == resolve_path(tree.root, name)
        assert tree.resolve(name, "container") == resolve_path(tree.root, name, "container")
