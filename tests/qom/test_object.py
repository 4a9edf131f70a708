"""qom.object: instance properties, [*] numbering, composition, casts, finalize, stash."""

from __future__ import annotations

import pytest
from dummy_types import BACKEND, DIMM

import qom
from qom import (
    DuplicatePropertyError,
    Object,
    Property,
    PropertyAccessError,
    PropertyNotFoundError,
    StashKey,
    TypeInfo,
    TypeRegistry,
    dynamic_cast,
    is_a,
)


def _prop(name: str, value: int = 0) -> Property:
    return Property(name=name, type="int", kind=qom.INT64, getter=lambda obj: value)


def test_every_object_has_a_type_property(tree: qom.ObjectTree) -> None:
    obj = tree.new(BACKEND)
    assert obj.get("type") == BACKEND
    assert obj.type_name == BACKEND
    with pytest.raises(PropertyAccessError) as info:
        obj.set("type", "x")
    assert str(info.value) == "Property 'dummy-backend.type' is not writable"


def test_property_not_found(tree: qom.ObjectTree) -> None:
    obj = tree.new(BACKEND)
    for call in (lambda: obj.get("nosuch"), lambda: obj.set("nosuch", 1),
                 lambda: obj.get_json("nosuch"), lambda: obj.del_property("nosuch")):
        with pytest.raises(PropertyNotFoundError) as info:
            call()
        assert str(info.value) == "Property 'dummy-backend.nosuch' not found"


def test_not_readable(tree: qom.ObjectTree) -> None:
    dimm = tree.new(DIMM)
    with pytest.raises(PropertyAccessError) as info:
        dimm.get("legacy-memdev")
    assert str(info.value) == "Property 'dummy-dimm.legacy-memdev' is not readable"


def test_duplicate_instance_property(tree: qom.ObjectTree) -> None:
    obj = tree.new("container")
    obj.add_property(_prop("p"))
    with pytest.raises(DuplicatePropertyError) as info:
        obj.add_property(_prop("p"))
    assert str(info.value) == "attempt to add duplicate property 'p' to object (type 'container')"
    # a class property's name is taken too
    with pytest.raises(DuplicatePropertyError) as info:
        obj.add_property(_prop("type"))
    assert str(info.value) == (
        "attempt to add duplicate property 'type' to object (type 'container')")


def test_duplicate_class_property() -> None:
    reg = TypeRegistry()
    reg.register(TypeInfo(name="x", class_init=lambda k, d: k.add_property(_prop("type"))))
    with pytest.raises(qom.TypeRegistrationError, match="duplicate property 'type'"):
        reg.get_class("x")


def test_auto_numbered_names(tree: qom.ObjectTree) -> None:
    obj = tree.new("container")
    assert obj.add_property(_prop("mem[*]")).name == "mem[0]"
    assert obj.add_property(_prop("mem[*]")).name == "mem[1]"
    obj.del_property("mem[0]")
    assert obj.add_property(_prop("mem[*]")).name == "mem[0]"  # first free index
    assert obj.add_property(_prop("mem[*]")).name == "mem[2]"
    child = tree.new("container")
    assert obj.add_child("device-memory[*]", child) == "device-memory[0]"
    tree.root.add_child("m", obj)
    assert child.canonical_path == "/m/device-memory[0]"


def test_lookup_tries_class_then_instance(tree: qom.ObjectTree) -> None:
    obj = tree.new("container")
    obj.add_property(_prop("x", 7))
    assert obj.get("x") == 7
    names = [prop.name for prop in obj.iter_properties()]
    assert names == ["type", "x"]


def test_del_property_runs_release(tree: qom.ObjectTree) -> None:
    released = []
    obj = tree.new("container")
    obj.add_property(Property(name="p", type="int", release=released.append))
    obj.del_property("p")
    assert released == [obj]
    assert obj.find_property("p") is None


def test_children_and_canonical_paths(tree: qom.ObjectTree) -> None:
    parent = tree.new("container")
    child = tree.new("container")
    assert parent.canonical_path is None  # not attached
    parent.add_child("kid", child)
    assert child.canonical_path is None  # parent not attached either
    tree.root.add_child("top", parent)
    assert child.canonical_path == "/top/kid"
    assert tree.root.canonical_path == "/"
    assert parent.get("kid") == "/top/kid"  # child<> reads back as a path
    assert parent.get_json("kid") == "/top/kid"
    assert parent.find_property("kid").type == "child<container>"
    assert list(parent.children()) == [("kid", child)]
    assert parent.child("kid") is child and parent.child("nope") is None
    with pytest.raises(PropertyAccessError) as info:
        parent.set("kid", "x")
    assert str(info.value) == "Property 'container.kid' is not writable"


def test_child_has_one_parent(tree: qom.ObjectTree) -> None:
    child = tree.new("container")
    tree.root.add_child("a", child)
    with pytest.raises(qom.QomError, match="already has a parent"):
        tree.root.add_child("b", child)
    assert tree.root.child("b") is None


def test_unparent_finalizes_children_first(tree: qom.ObjectTree) -> None:
    order: list[str] = []
    reg = tree.registry
    reg.register(TypeInfo(name="traced", parent="container",
                          instance_finalize=lambda obj: order.append(obj.name_in_parent
                                                                     or "detached")))
    top = tree.new("traced")
    tree.root.add_child("top", top)
    inner = tree.new("traced")
    top.add_child("inner", inner)
    top.unparent()
    assert top.finalized and inner.finalized
    assert tree.root.child("top") is None
    assert top.parent is None and top.canonical_path is None
    assert order == ["detached", "detached"]  # inner finalized before top
    with pytest.raises(qom.QomError, match="finalized"):
        tree.root.add_child("again", top)


def test_unparent_of_unattached_object_finalizes_it(tree: qom.ObjectTree) -> None:
    obj = tree.new("container")
    obj.unparent()
    assert obj.finalized


def test_stash_is_per_object(tree: qom.ObjectTree) -> None:
    key: StashKey[int] = StashKey("k")
    other: StashKey[int] = StashKey("k")
    a, b = tree.new("container"), tree.new("container")
    a.stash[key] = 1
    assert key in a.stash and key not in b.stash
    assert other not in a.stash  # keys compare by identity
    assert a.stash.get(other, 5) == 5
    assert a.stash.pop(key) == 1 and key not in a.stash
    with pytest.raises(KeyError):
        b.stash[key]


# -- casts ---------------------------------------------------------------------------

@pytest.fixture
def cast_registry() -> TypeRegistry:
    reg = TypeRegistry()
    reg.register(TypeInfo(name="iface-a", parent="interface"))
    reg.register(TypeInfo(name="iface-b1", parent="iface-a"))
    reg.register(TypeInfo(name="iface-b2", parent="iface-a"))
    reg.register(TypeInfo(name="iface-c", parent="interface"))
    reg.register(TypeInfo(name="one", interfaces=("iface-b1", "iface-c")))
    reg.register(TypeInfo(name="two", interfaces=("iface-b1", "iface-b2")))
    reg.register(TypeInfo(name="one-child", parent="one", interfaces=("iface-a",)))
    return reg


def test_dynamic_cast_to_types_and_interfaces(cast_registry: TypeRegistry) -> None:
    obj = cast_registry.new("one")
    assert dynamic_cast(obj, "one") is obj
    assert dynamic_cast(obj, "object") is obj
    assert dynamic_cast(obj, "iface-b1") is obj
    assert dynamic_cast(obj, "iface-a") is obj  # through iface-b1
    assert dynamic_cast(obj, "iface-c") is obj
    # every interface descends from "interface": two matches, so no cast (QEMU too)
    assert dynamic_cast(obj, "interface") is None
    assert dynamic_cast(obj, "iface-b2") is None
    assert dynamic_cast(obj, "container") is None
    assert dynamic_cast(obj, "nosuch") is None
    assert is_a(obj, "iface-c") and not is_a("one", "one")
    assert dynamic_cast(5, "object") is None


def test_ambiguous_interface_match_fails(cast_registry: TypeRegistry) -> None:
    obj = cast_registry.new("two")
    assert is_a(obj, "iface-b1") and is_a(obj, "iface-b2")
    # two interfaces descend from iface-a: QEMU's object_class_dynamic_cast fails
    assert dynamic_cast(obj, "iface-a") is None
    assert not obj.is_a("iface-a")


def test_inherited_interface_is_not_added_twice(cast_registry: TypeRegistry) -> None:
    klass = cast_registry.get_class("one-child")
    # iface-a is skipped: the inherited iface-b1 already descends from it
    assert [iface.name for iface in klass.interfaces] == ["iface-b1", "iface-c"]
    assert klass.is_a("iface-a")


def test_interfaces_are_abstract(cast_registry: TypeRegistry) -> None:
    assert cast_registry.get_class("iface-a").abstract
    assert cast_registry.get_class("iface-a").is_interface
    assert not cast_registry.get_class("one").abstract


def test_backend_implements_user_creatable(tree: qom.ObjectTree) -> None:
    obj = tree.new(BACKEND)
    assert isinstance(obj, Object)
    assert obj.is_a("user-creatable") and not obj.is_a("device")
