"""qom.registry: registration, the whole-graph check, lazy classes and object_new order."""

from __future__ import annotations

import attrs
import pytest
from dummy_types import BACKEND, DIMM, MACHINE, DummyBackend

import qom
from qom import (
    AbstractTypeError,
    Object,
    TypeInfo,
    TypeRegistrationError,
    TypeRegistry,
    UnknownTypeError,
)


def test_core_types_are_there() -> None:
    reg = TypeRegistry()
    for name in ("object", "interface", "container", "user-creatable", "device",
                 "hotplug-handler"):
        assert name in reg
    assert reg.get_class("container").parent.name == "object"
    assert TypeRegistry(core=False).type_names() == []


def test_dummy_types_arrive_through_the_plugin(registry: TypeRegistry, plugin_manager) -> None:
    assert {BACKEND, DIMM, MACHINE} <= set(registry.type_names())
    assert plugin_manager.get_plugin("dummy-types") is not None
    assert registry.get_class(BACKEND).impl is DummyBackend


def test_duplicate_registration_is_refused_with_qemus_words() -> None:
    reg = TypeRegistry()
    with pytest.raises(TypeRegistrationError) as info:
        reg.register(TypeInfo(name="container"))
    assert str(info.value) == "Registering `container' which already exists"


def test_duplicate_from_a_second_plugin(plugin_manager) -> None:
    from plugins import hookimpl
    from pyqom.manager import make_registry

    class Again:
        @hookimpl
        def qom_register_types(self, registry):
            registry.register(TypeInfo(name=BACKEND))

    plugin_manager.register(Again())
    with pytest.raises(TypeRegistrationError) as info:
        make_registry(plugin_manager)
    assert str(info.value) == "Registering `dummy-backend' which already exists"


@pytest.mark.parametrize("name", ["", "-x", ".x", "_x", "a b", "a/b", "a[0]", "é", 5, None])
def test_bad_type_names(name) -> None:
    with pytest.raises(TypeRegistrationError):
        TypeInfo(name=name)


@pytest.mark.parametrize("name", ["a", "pc-dimm", "memory-backend-ram", "x86_64-cpu",
                                  "pc-i440fx-7.2-machine", "Opteron_G1,legacy", "9p"])
def test_good_type_names(name: str) -> None:
    assert TypeInfo(name=name).name == name


def test_type_info_validates_fields() -> None:
    with pytest.raises(TypeRegistrationError):
        TypeInfo(name="x", interfaces=("a", "a"))
    with pytest.raises(TypeRegistrationError):
        TypeInfo(name="x", class_init=5)  # type: ignore[arg-type]
    with pytest.raises(TypeRegistrationError):
        TypeInfo(name="x", parent="bad name")
    with pytest.raises(TypeRegistrationError, match="needs a parent"):
        TypeRegistry().register(TypeInfo(name="orphan", parent=None))
    with pytest.raises(TypeRegistrationError):
        TypeRegistry().register("object")  # type: ignore[arg-type]


def test_check_missing_parent() -> None:
    reg = TypeRegistry()
    reg.register(TypeInfo(name="child", parent="nosuch"))
    with pytest.raises(TypeRegistrationError, match="unknown parent 'nosuch'"):
        reg.check()


def test_check_missing_interface() -> None:
    reg = TypeRegistry()
    reg.register(TypeInfo(name="x", interfaces=("nosuch-iface",)))
    with pytest.raises(TypeRegistrationError) as info:
        reg.check()
    assert str(info.value) == "missing interface 'nosuch-iface' for object 'x'"


def test_check_interface_that_is_not_one() -> None:
    reg = TypeRegistry()
    reg.register(TypeInfo(name="x", interfaces=("container",)))
    with pytest.raises(TypeRegistrationError, match="not an interface"):
        reg.check()


def test_check_cycle() -> None:
    reg = TypeRegistry()
    reg.register(TypeInfo(name="a", parent="b"))
    reg.register(TypeInfo(name="b", parent="a"))
    with pytest.raises(TypeRegistrationError, match="own ancestor"):
        reg.check()
    with pytest.raises(TypeRegistrationError):
        reg.get_class("a")  # building a class runs the check first


def test_check_impl_must_be_an_object_subclass() -> None:
    reg = TypeRegistry()
    reg.register(TypeInfo(name="x", impl=int))  # type: ignore[arg-type]
    with pytest.raises(TypeRegistrationError, match="impl"):
        reg.check()


def test_impl_must_subclass_parent_impl() -> None:
    reg = TypeRegistry()
    reg.register(TypeInfo(name="dev2", parent="device", impl=DummyBackend))
    with pytest.raises(TypeRegistrationError, match="must subclass"):
        reg.get_class("dev2")


def test_late_registration_reruns_the_check() -> None:
    reg = TypeRegistry()
    reg.get_class("container")
    reg.register(TypeInfo(name="late", parent="nosuch"))
    with pytest.raises(TypeRegistrationError):
        reg.get_class("late")


def test_unknown_type() -> None:
    reg = TypeRegistry()
    with pytest.raises(UnknownTypeError):
        reg.get_class("nosuch")
    with pytest.raises(UnknownTypeError):
        reg.new("nosuch")
    assert reg.find_class("nosuch") is None


def test_abstract_types_cannot_be_instantiated() -> None:
    reg = TypeRegistry()
    for name in ("object", "device", "user-creatable", "interface"):
        with pytest.raises(AbstractTypeError):
            reg.new(name)


# -- lazy class initialisation order -------------------------------------------

def _ordering_registry(log: list[str]) -> TypeRegistry:
    reg = TypeRegistry()

    def hooks(name: str) -> dict:
        return dict(
            class_init=lambda klass, data: log.append(f"class_init {name} for {klass.name}"),
            class_base_init=lambda klass, data: log.append(
                f"class_base_init {name} for {klass.name}"),
            instance_init=lambda obj: log.append(f"instance_init {name}"),
            instance_post_init=lambda obj: log.append(f"post_init {name}"),
            instance_finalize=lambda obj: log.append(f"finalize {name}"),
        )

    reg.register(TypeInfo(name="base", **hooks("base")))
    reg.register(TypeInfo(name="mid", parent="base", **hooks("mid")))
    reg.register(TypeInfo(name="leaf", parent="mid", **hooks("leaf")))
    return reg


def test_class_init_is_lazy_and_ordered() -> None:
    log: list[str] = []
    reg = _ordering_registry(log)
    assert log == []
    reg.get_class("leaf")
    assert log == [
        "class_init base for base",
        "class_base_init base for mid", "class_init mid for mid",
        # nearest ancestor's class_base_init first, then the type's own class_init
        "class_base_init mid for leaf", "class_base_init base for leaf",
        "class_init leaf for leaf",
    ]
    log.clear()
    reg.get_class("leaf")
    assert log == []  # built once


def test_instance_hooks_order() -> None:
    log: list[str] = []
    reg = _ordering_registry(log)
    obj = reg.new("leaf")
    log_after_new = [entry for entry in log if not entry.startswith("class")]
    assert log_after_new == [
        "instance_init base", "instance_init mid", "instance_init leaf",
        "post_init leaf", "post_init mid", "post_init base",
    ]
    log.clear()
    obj.finalize()
    assert log == ["finalize leaf", "finalize mid", "finalize base"]
    log.clear()
    obj.finalize()
    assert log == []  # finalize runs once


def test_class_slots_inherit_and_override() -> None:
    reg = TypeRegistry()

    def set_slot(value):
        return lambda klass, data: klass.slots.__setitem__("hello", value)

    reg.register(TypeInfo(name="p", class_init=set_slot("parent")))
    reg.register(TypeInfo(name="c", parent="p"))
    reg.register(TypeInfo(name="o", parent="p", class_init=set_slot("override")))
    assert reg.get_class("c").slots["hello"] == "parent"
    assert reg.get_class("o").slots["hello"] == "override"
    assert reg.get_class("p").slots["hello"] == "parent"


def test_class_data_reaches_class_init() -> None:
    seen = []
    reg = TypeRegistry()
    reg.register(TypeInfo(name="x", class_data={"k": 1},
                          class_init=lambda klass, data: seen.append(data)))
    reg.get_class("x")
    assert seen == [{"k": 1}]


def test_new_passes_fields_and_tree(tree: qom.ObjectTree) -> None:
    obj = tree.new(BACKEND)
    assert obj.tree is tree
    assert obj.get("size") == 0
    reg = tree.registry
    assert reg.new(BACKEND, size=5).get("size") == 5


def test_field_properties_are_not_duplicated_in_subclasses() -> None:
    @attrs.define(eq=False, repr=False)
    class Sub(DummyBackend):
        extra: int = qom.qom_property("extra", qom.UINT32, type="uint32", default=0)

    reg = TypeRegistry()
    reg.register(TypeInfo(name="b", impl=DummyBackend))
    reg.register(TypeInfo(name="s", parent="b", impl=Sub))
    names = [prop.name for prop in reg.get_class("s").iter_properties()]
    assert names.count("size") == 1
    assert "extra" in names and "extra" not in reg.get_class("b").properties
    assert isinstance(reg.new("s"), Object)


def test_list_classes_and_iteration_order() -> None:
    reg = TypeRegistry()
    reg.register(TypeInfo(name="z"))
    reg.register(TypeInfo(name="a", parent="z"))
    assert [k.name for k in reg.list_classes("z")] == ["z", "a"]
    assert "object" not in [k.name for k in reg.list_classes()]
    assert "object" in [k.name for k in reg.list_classes(include_abstract=True)]
