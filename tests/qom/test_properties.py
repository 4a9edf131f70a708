"""qom.properties: field properties, links, qdev properties frozen after realize."""

from __future__ import annotations

import pytest
from dummy_types import BACKEND, DIMM

import qom
from qom import KEYVAL, OPTS, InvalidPropertyValue, PropertyAccessError
from qom.properties import NO_DEFAULT


def test_field_property_table(registry: qom.TypeRegistry) -> None:
    klass = registry.get_class(BACKEND)
    props = {prop.name: prop for prop in klass.iter_properties()}
    assert {name: prop.type for name, prop in props.items()} == {
        "type": "string", "size": "int", "share": "bool", "dump": "bool",
        "prealloc-threads": "int", "policy": "HostMemPolicy", "host-nodes": "int"}
    assert props["size"].mandatory and not props["share"].mandatory
    assert props["size"].description == "Size of the memory region (ex: 500M)"
    assert props["dump"].default is NO_DEFAULT  # qom_property reports none by default
    assert props["type"].writable is False and props["size"].writable is True


def test_defaults_and_json_values(tree: qom.ObjectTree) -> None:
    obj = tree.new(BACKEND)
    assert [obj.get_json(name) for name in ("dump", "share", "prealloc-threads", "policy",
                                            "host-nodes")] == [True, False, 1, "default", []]


def test_set_converts_through_the_source(tree: qom.ObjectTree) -> None:
    obj = tree.new(BACKEND)
    obj.set("size", 1048576)
    obj.set("dump", "off", KEYVAL)
    obj.set("prealloc-threads", "3", OPTS)
    obj.set("host-nodes", ["0", "1"], KEYVAL)
    obj.set("policy", "bind")
    assert (obj.get("size"), obj.get("dump"), obj.get("prealloc-threads")) == (1048576, False, 3)
    assert obj.get_json("host-nodes") == [0, 1] and obj.get("policy") == "bind"
    obj.set("size", "2M", KEYVAL)
    assert obj.get("size") == 2 << 20


def test_setter_checks_keep_the_old_value(tree: qom.ObjectTree) -> None:
    obj = tree.new(BACKEND)
    obj.set("prealloc-threads", 4)
    with pytest.raises(InvalidPropertyValue) as info:
        obj.set("prealloc-threads", 0)
    assert str(info.value) == "property 'prealloc-threads' of dummy-backend doesn't take value '0'"
    assert obj.get("prealloc-threads") == 4
    with pytest.raises(InvalidPropertyValue) as info:
        obj.set_value("size", 0)
    assert str(info.value) == "property 'size' of dummy-backend doesn't take value '0'"
    with pytest.raises(InvalidPropertyValue) as info:
        obj.set("host-nodes", [200])
    assert str(info.value) == "Invalid host-nodes value: 200"


def test_conversion_error_comes_before_the_setter(tree: qom.ObjectTree) -> None:
    obj = tree.new(BACKEND)
    with pytest.raises(qom.ParameterError) as info:
        obj.set("size", "1G")
    assert str(info.value) == "Parameter 'size' expects uint64"


# -- links -------------------------------------------------------------------------

@pytest.fixture
def dimm(tree: qom.ObjectTree, machine, backend):
    backend("m1")
    backend("m2")
    dev = tree.new(DIMM)
    tree.container("/machine/peripheral").add_child("d0", dev)
    dev.id = "d0"
    return dev


def test_link_reads_path_or_empty(dimm) -> None:
    assert dimm.get("memdev") == ""
    assert dimm.find_property("memdev").type == "link<dummy-backend>"
    dimm.set("memdev", "m1")
    assert dimm.get("memdev") == "/objects/m1"
    assert dimm.get_json("memdev") == "/objects/m1"
    dimm.set("memdev", "/objects/m2")
    assert dimm.get("memdev") == "/objects/m2"
    dimm.set("memdev", "")
    assert dimm.get("memdev") == "" and dimm.memdev is None


@pytest.mark.parametrize(("value", "error", "message"), [
    ("nosuch", qom.DeviceNotFoundError, "Device 'nosuch' not found"),
    ("/machine", qom.ParameterError,
     "Invalid parameter type for 'memdev', expected: dummy-backend"),
    (5, qom.ParameterError, "Invalid parameter type for 'memdev', expected: string"),
])
def test_link_errors_keep_the_old_target(dimm, value, error, message) -> None:
    dimm.set("memdev", "m1")
    with pytest.raises(error) as info:
        dimm.set("memdev", value)
    assert str(info.value) == message
    assert dimm.get("memdev") == "/objects/m1"


def test_link_to_object_that_goes_away_reads_empty(dimm, tree: qom.ObjectTree) -> None:
    dimm.set("memdev", "m2")
    qom.object_del(tree, "m2")
    assert dimm.get("memdev") == ""  # an unattached target has no canonical path


def test_qdev_properties_frozen_after_realize(dimm) -> None:
    dimm.set("memdev", "m1")
    dimm.set("addr", "0", KEYVAL)
    dimm.realized = True
    for name, value in (("addr", 0), ("slot", 1), ("node", 0)):
        with pytest.raises(InvalidPropertyValue) as info:
            dimm.set(name, value)
        assert str(info.value) == (f"Attempt to set property '{name}' on device 'd0'"
                                   " (type 'dummy-dimm') after it was realized")
    with pytest.raises(InvalidPropertyValue) as info:
        dimm.set("memdev", "m2")
    assert str(info.value) == ("Attempt to set link property 'memdev' on device 'd0'"
                               " (type 'dummy-dimm') after it was realized")
    assert dimm.get("memdev") == "/objects/m1"


def test_frozen_check_comes_before_conversion(dimm) -> None:
    dimm.realized = True
    with pytest.raises(InvalidPropertyValue, match=r"^Attempt to set property 'slot'"):
        dimm.set("slot", "abc", KEYVAL)


def test_anonymous_device_wording(tree: qom.ObjectTree, machine, backend) -> None:
    backend("m1")
    dev = qom.device_add(tree, {"driver": DIMM, "memdev": "m1"})
    with pytest.raises(InvalidPropertyValue) as info:
        dev.set("addr", 0)
    assert str(info.value) == ("Attempt to set property 'addr' on anonymous device"
                               " (type 'dummy-dimm') after it was realized")
    with pytest.raises(InvalidPropertyValue) as info:
        dev.set("memdev", "m1")
    assert str(info.value) == ("Attempt to set link property 'memdev' on device '(null)'"
                               " (type 'dummy-dimm') after it was realized")


def test_read_only_device_properties(dimm) -> None:
    for name in ("size", "realized", "hotplugged", "hotpluggable"):
        with pytest.raises(PropertyAccessError) as info:
            dimm.set(name, 5)
        assert str(info.value) == f"Property 'dummy-dimm.{name}' is not writable"
    assert dimm.get("realized") is False
    assert dimm.get("hotpluggable") is True
    assert dimm.get("parent_bus") == ""


def test_device_property_defaults_are_reported(registry: qom.TypeRegistry) -> None:
    klass = registry.get_class(DIMM)
    defaults = {p.name: p.default for p in klass.iter_properties() if p.default is not NO_DEFAULT}
    assert defaults == {"node": 0, "addr": 0, "slot": -1}
