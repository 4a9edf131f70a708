"""qom.introspect: qom-list, qom-get, qom-set, qom-list-types, qom-list-properties,
device-list-properties."""

from __future__ import annotations

import pytest
from dummy_types import BACKEND, DIMM, MACHINE

import qom
from qom import KEYVAL

MIB = 1 << 20


@pytest.fixture
def live(tree: qom.ObjectTree, machine, backend) -> qom.ObjectTree:
    backend("m1", size=128 * MIB)
    backend("m2", size=128 * MIB)
    qom.device_add(tree, {"driver": DIMM, "id": "dimm1", "memdev": "m1"})
    return tree


def names(entries: list[dict]) -> list[str]:
    return sorted(entry["name"] for entry in entries)


# -- qom-list -------------------------------------------------------------------------

def test_qom_list(live: qom.ObjectTree) -> None:
    assert sorted(map(tuple, (e.values() for e in qom.qom_list(live, "/")))) == [
        ("chardevs", "child<container>"), ("machine", "child<dummy-machine>"),
        ("objects", "child<container>"), ("type", "string")]
    assert qom.qom_list(live, "/objects") == [
        {"name": "type", "type": "string"}, {"name": "m1", "type": "child<dummy-backend>"},
        {"name": "m2", "type": "child<dummy-backend>"}]
    assert qom.qom_list(live, "/machine/peripheral-anon") == [
        {"name": "type", "type": "string"}]
    peripheral = qom.qom_list(live, "/machine/peripheral")
    for path in ("peripheral", "//machine/peripheral", "/machine/peripheral/",
                 "machine/peripheral"):
        assert qom.qom_list(live, path) == peripheral
    for path in ("machine", "machine/", "/machine/", "//machine"):
        assert qom.qom_list(live, path) == qom.qom_list(live, "/machine")
    assert names(qom.qom_list(live, "dimm1")) == names(
        qom.qom_list(live, "/machine/peripheral/dimm1"))
    assert {"name": "memdev", "type": "link<dummy-backend>"} in qom.qom_list(live, "dimm1")


@pytest.mark.parametrize(("path", "error", "message"), [
    ("nosuch", qom.DeviceNotFoundError, "Device 'nosuch' not found"),
    ("/nosuch", qom.DeviceNotFoundError, "Device '/nosuch' not found"),
    ("", qom.AmbiguousPathError, "Path '' is ambiguous"),
    ("/machine/../machine", qom.DeviceNotFoundError, "Device '/machine/../machine' not found"),
    ("type", qom.DeviceNotFoundError, "Device 'type' not found"),
    ("/machine/type", qom.DeviceNotFoundError, "Device '/machine/type' not found"),
])
def test_qom_list_errors(live: qom.ObjectTree, path, error, message) -> None:
    with pytest.raises(error) as info:
        qom.qom_list(live, path)
    assert str(info.value) == message
    assert info.value.error_class == ("DeviceNotFound" if error is qom.DeviceNotFoundError
                                      else "GenericError")


# -- qom-get ---------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "prop", "value"), [
    ("/objects/m2", "size", 128 * MIB),
    ("m2", "size", 128 * MIB),
    ("/objects/m2", "type", BACKEND),
    ("/objects/m2", "dump", True),
    ("/objects/m2", "share", False),
    ("/objects/m2", "prealloc-threads", 1),
    ("/objects/m2", "policy", "default"),
    ("/objects/m2", "host-nodes", []),
    ("dimm1", "memdev", "/objects/m1"),
    ("dimm1", "slot", 0),
    ("dimm1", "size", 128 * MIB),
    ("dimm1", "node", 0),
    ("dimm1", "realized", True),
    ("dimm1", "parent_bus", ""),
    ("dimm1", "hotplugged", True),
    ("dimm1", "hotpluggable", True),
    ("dimm1", "type", DIMM),
    ("/machine/peripheral/dimm1", "addr", 0),
    ("/machine", "peripheral", "/machine/peripheral"),
    ("/objects", "m1", "/objects/m1"),
    ("/machine/peripheral", "type", "container"),
    ("/", "type", "container"),
])
def test_qom_get(live: qom.ObjectTree, path, prop, value) -> None:
    assert qom.qom_get(live, path, prop) == value


@pytest.mark.parametrize(("path", "prop", "error", "message"), [
    ("/objects/m2", "nosuch", qom.PropertyNotFoundError,
     "Property 'dummy-backend.nosuch' not found"),
    ("/nosuch", "size", qom.DeviceNotFoundError, "Device '/nosuch' not found"),
    ("/nosuch", "nosuch", qom.DeviceNotFoundError, "Device '/nosuch' not found"),
    ("", "type", qom.DeviceNotFoundError, "Device '' not found"),  # not "ambiguous"
    ("dimm1", "legacy-memdev", qom.PropertyAccessError,
     "Property 'dummy-dimm.legacy-memdev' is not readable"),
])
def test_qom_get_errors(live: qom.ObjectTree, path, prop, error, message) -> None:
    with pytest.raises(error) as info:
        qom.qom_get(live, path, prop)
    assert str(info.value) == message


# -- qom-set ---------------------------------------------------------------------------

def test_qom_set(live: qom.ObjectTree) -> None:
    qom.qom_set(live, "/objects/m2", "dump", False)
    assert qom.qom_get(live, "/objects/m2", "dump") is False
    qom.qom_set(live, "/objects/m2", "prealloc-threads", 2)
    qom.qom_set(live, "m2", "policy", "bind")
    qom.qom_set(live, "m2", "host-nodes", [0])
    assert [qom.qom_get(live, "m2", p) for p in ("prealloc-threads", "policy", "host-nodes")] \
        == [2, "bind", [0]]
    qom.qom_set(live, "/objects/m2", "dump", "yes", KEYVAL)  # HMP qom-set
    assert qom.qom_get(live, "/objects/m2", "dump") is True


@pytest.mark.parametrize(("path", "prop", "value", "error", "message"), [
    ("/objects/m2", "size", 2 * MIB, qom.InvalidPropertyValue,
     "cannot change property size of dummy-backend "),
    ("/objects/m1", "size", 2 * MIB, qom.InvalidPropertyValue,
     "cannot change property size of dummy-backend "),
    ("/objects/m2", "share", True, qom.InvalidPropertyValue, "cannot change property value"),
    ("/objects/m2", "dump", 1, qom.ParameterError,
     "Invalid parameter type for 'dump', expected: boolean"),
    ("/objects/m2", "dump", "off", qom.ParameterError,
     "Invalid parameter type for 'dump', expected: boolean"),
    ("/objects/m2", "prealloc-threads", "2", qom.ParameterError,
     "Parameter 'prealloc-threads' expects uint64"),
    ("/objects/m2", "prealloc-threads", 0, qom.InvalidPropertyValue,
     "property 'prealloc-threads' of dummy-backend doesn't take value '0'"),
    ("/objects/m2", "policy", "nosuch", qom.ParameterError,
     "Parameter 'policy' does not accept value 'nosuch'"),
    ("/objects/m2", "nosuch", 1, qom.PropertyNotFoundError,
     "Property 'dummy-backend.nosuch' not found"),
    ("/nosuch", "dump", False, qom.DeviceNotFoundError, "Device '/nosuch' not found"),
    ("/objects/m2", "type", "x", qom.PropertyAccessError,
     "Property 'dummy-backend.type' is not writable"),
    ("/machine/peripheral/dimm1", "addr", 0, qom.InvalidPropertyValue,
     "Attempt to set property 'addr' on device 'dimm1' (type 'dummy-dimm') after it was"
     " realized"),
    ("/machine/peripheral/dimm1", "slot", 1, qom.InvalidPropertyValue,
     "Attempt to set property 'slot' on device 'dimm1' (type 'dummy-dimm') after it was"
     " realized"),
    ("/machine/peripheral/dimm1", "memdev", "m2", qom.InvalidPropertyValue,
     "Attempt to set link property 'memdev' on device 'dimm1' (type 'dummy-dimm') after it"
     " was realized"),
    ("/machine/peripheral/dimm1", "size", 5, qom.PropertyAccessError,
     "Property 'dummy-dimm.size' is not writable"),
    ("/machine/peripheral/dimm1", "hotplugged", False, qom.PropertyAccessError,
     "Property 'dummy-dimm.hotplugged' is not writable"),
    ("/machine", "peripheral", "x", qom.PropertyAccessError,
     "Property 'dummy-machine.peripheral' is not writable"),
])
def test_qom_set_errors(live: qom.ObjectTree, path, prop, value, error, message) -> None:
    with pytest.raises(error) as info:
        qom.qom_set(live, path, prop, value)
    assert str(info.value) == message


def test_qom_set_refusal_keeps_values(live: qom.ObjectTree) -> None:
    with pytest.raises(qom.QomError):
        qom.qom_set(live, "/objects/m2", "size", 2 * MIB)
    with pytest.raises(qom.QomError):
        qom.qom_set(live, "/objects/m2", "share", True)
    assert qom.qom_get(live, "/objects/m2", "size") == 128 * MIB
    assert qom.qom_get(live, "/objects/m2", "share") is False
    assert qom.qom_get(live, "dimm1", "memdev") == "/objects/m1"


# -- qom-list-types --------------------------------------------------------------------

def test_qom_list_types_leaves_out_abstract_types(registry: qom.TypeRegistry) -> None:
    types = qom.qom_list_types(registry)
    by_name = {entry["name"]: entry for entry in types}
    assert by_name["container"] == {"name": "container", "parent": "object"}
    assert by_name[DIMM] == {"name": DIMM, "parent": "device"}
    for abstract in ("object", "device", "user-creatable", "interface", "hotplug-handler"):
        assert abstract not in by_name
    assert all("abstract" not in entry for entry in types)


def test_qom_list_types_with_abstract(registry: qom.TypeRegistry) -> None:
    types = qom.qom_list_types(registry, abstract=True)
    by_name = {entry["name"]: entry for entry in types}
    assert by_name["device"] == {"name": "device", "abstract": True, "parent": "object"}
    assert by_name["user-creatable"] == {"name": "user-creatable", "abstract": True,
                                         "parent": "interface"}
    assert by_name["object"] == {"name": "object", "abstract": True}  # a root: no parent
    # concrete types never get "abstract": false
    assert by_name["container"] == {"name": "container", "parent": "object"}
    assert all(entry.get("abstract", True) is True for entry in types)
    assert len(types) > len(qom.qom_list_types(registry))


@pytest.mark.parametrize(("implements", "abstract", "expected"), [
    (BACKEND, False, [BACKEND]),              # a type implements itself
    (DIMM, True, [DIMM]),
    ("nosuch", False, []),                    # not an error
    ("user-creatable", False, [BACKEND]),
    ("user-creatable", True, ["user-creatable", BACKEND]),
    ("device", False, [DIMM]),
    ("device", True, ["device", DIMM]),
    ("hotplug-handler", False, [MACHINE]),
])
def test_qom_list_types_implements(registry: qom.TypeRegistry, implements, abstract,
                                   expected) -> None:
    assert names(qom.qom_list_types(registry, implements, abstract)) == sorted(expected)


# -- qom-list-properties / device-list-properties ---------------------------------------

def test_qom_list_properties(tree: qom.ObjectTree) -> None:
    assert qom.qom_list_properties(tree, "object") == [{"name": "type", "type": "string"}]
    assert qom.qom_list_properties(tree, "container") == [{"name": "type", "type": "string"}]
    assert sorted(map(lambda e: (e["name"], e["type"]),
                      qom.qom_list_properties(tree, "device"))) == [
        ("hotpluggable", "bool"), ("hotplugged", "bool"), ("parent_bus", "link<bus>"),
        ("realized", "bool"), ("type", "string")]
    backend_props = {e["name"]: e for e in qom.qom_list_properties(tree, BACKEND)}
    assert backend_props["size"] == {"name": "size", "type": "int",
                                     "description": "Size of the memory region (ex: 500M)"}
    assert backend_props["type"] == {"name": "type", "type": "string"}
    assert backend_props["host-nodes"]["type"] == "int"
    assert backend_props["policy"]["type"] == "HostMemPolicy"
    dimm_props = {e["name"]: e["type"] for e in qom.qom_list_properties(tree, DIMM)}
    assert dimm_props == {"type": "string", "parent_bus": "link<bus>", "realized": "bool",
                          "hotplugged": "bool", "hotpluggable": "bool",
                          "memdev": "link<dummy-backend>", "node": "uint32",
                          "addr": "uint64", "legacy-memdev": "str", "slot": "int32",
                          "size": "uint64"}


def test_qom_list_properties_leaves_nothing_behind(tree: qom.ObjectTree, machine) -> None:
    qom.qom_list_properties(tree, DIMM)
    qom.device_list_properties(tree, DIMM)
    assert tree.anon_device_count == 0 and tree.unattached_count == 0
    assert list(tree.container("/machine/peripheral-anon").children()) == []


@pytest.mark.parametrize(("typename", "error", "message"), [
    ("nosuch", qom.DeviceNotFoundError, "Class 'nosuch' not found"),
    ("user-creatable", qom.ParameterError, "Parameter 'typename' expects a QOM type"),
    ("interface", qom.ParameterError, "Parameter 'typename' expects a QOM type"),
])
def test_qom_list_properties_errors(tree: qom.ObjectTree, typename, error, message) -> None:
    with pytest.raises(error) as info:
        qom.qom_list_properties(tree, typename)
    assert str(info.value) == message


def test_device_list_properties(tree: qom.ObjectTree) -> None:
    props = {e["name"]: e for e in qom.device_list_properties(tree, DIMM)}
    assert props == {
        "memdev": {"name": "memdev", "type": "link<dummy-backend>"},
        "node": {"default-value": 0, "name": "node", "type": "uint32"},
        "addr": {"default-value": 0, "name": "addr", "type": "uint64"},
        "slot": {"default-value": -1, "name": "slot", "type": "int32"},
        "size": {"name": "size", "type": "uint64"},
    }


@pytest.mark.parametrize(("typename", "error", "message"), [
    ("nosuch", qom.DeviceNotFoundError, "Device 'nosuch' not found"),
    (BACKEND, qom.ParameterError, "Parameter 'typename' expects a non-abstract device type"),
    ("device", qom.ParameterError, "Parameter 'typename' expects a non-abstract device type"),
    ("container", qom.ParameterError,
     "Parameter 'typename' expects a non-abstract device type"),
])
def test_device_list_properties_errors(tree: qom.ObjectTree, typename, error,
                                       message) -> None:
    with pytest.raises(error) as info:
        qom.device_list_properties(tree, typename)
    assert str(info.value) == message
