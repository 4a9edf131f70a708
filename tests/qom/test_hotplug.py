"""qom.hotplug: device_add / device_del, their error order and their rollback."""

from __future__ import annotations

import pytest
from dummy_types import DIMM, HANDLER_STATE

import qom
from plugins import hookimpl
from qom import JSON, KEYVAL

MIB = 1 << 20


@pytest.fixture
def setup(tree: qom.ObjectTree, machine, backend) -> qom.ObjectTree:
    """m1..m4 (128 MiB each), as in the probes of notes section 8."""
    for n in range(1, 5):
        backend(f"m{n}", size=128 * MIB)
    return tree


@pytest.fixture
def with_dimm1(setup: qom.ObjectTree) -> qom.ObjectTree:
    qom.device_add(setup, {"driver": DIMM, "id": "dimm1", "memdev": "m1"})
    return setup


def children(tree: qom.ObjectTree, path: str) -> list[str]:
    return sorted(name for name, _ in tree.container(path).children())


def state(tree: qom.ObjectTree):
    return tree.machine.stash[HANDLER_STATE]


def snapshot(tree: qom.ObjectTree):
    """Everything a failed device_add must leave as it was."""
    backends = {name: obj.mapped for name, obj in tree.objects.children()}
    return (children(tree, "/machine/peripheral"), children(tree, "/machine/peripheral-anon"),
            children(tree, "/machine/unattached"),
            dict(getattr(tree.machine.stash.get(HANDLER_STATE), "plugged", {})), backends)


def add_error(tree: qom.ObjectTree, options: dict, source=KEYVAL) -> qom.QomError:
    before = snapshot(tree)
    with pytest.raises(qom.QomError) as info:
        qom.device_add(tree, options, source)
    assert snapshot(tree) == before
    return info.value


def test_device_add(setup: qom.ObjectTree, hook_recorder) -> None:
    dev = qom.device_add(setup, {"driver": DIMM, "id": "dimm1", "memdev": "m1"})
    assert dev.canonical_path == "/machine/peripheral/dimm1"
    assert dev.id == "dimm1" and dev.realized and dev.hotplugged
    assert [qom.qom_get(setup, "dimm1", p) for p in ("slot", "addr", "node", "size")] == [
        0, 0, 0, 128 * MIB]
    assert qom.qom_get(setup, "dimm1", "memdev") == "/objects/m1"
    assert qom.qom_get(setup, "dimm1", "realized") is True
    assert qom.qom_get(setup, "dimm1", "hotplugged") is True
    assert setup.objects.child("m1").mapped
    assert state(setup).plugged == {0: dev}
    assert state(setup).log == ["pre_plug dimm1", "plug dimm1"]
    assert dev.log == ["realize"]
    assert hook_recorder.names() == ["qom_device_pre_plug", "qom_device_plug_claim",
                                     "qom_device_plug_map", "qom_device_plug_describe",
                                     "qom_device_plug_announce"]
    second = qom.device_add(setup, {"driver": DIMM, "id": "d2", "memdev": "m2", "slot": "2"})
    assert second.slot == 2
    third = qom.device_add(setup, {"driver": DIMM, "id": "d3", "memdev": "m3"})
    assert third.slot == 1


def test_cold_plug_is_not_hotplugged(tree: qom.ObjectTree, backend) -> None:
    machine = tree.new("dummy-machine")
    tree.attach_machine(machine)
    backend("m1")
    dev = qom.device_add(tree, {"driver": DIMM, "id": "d1", "memdev": "m1"})
    assert dev.realized and not dev.hotplugged
    assert qom.qom_get(tree, "d1", "hotplugged") is False


def test_device_add_without_machine_handler(tree: qom.ObjectTree, backend) -> None:
    tree.attach_machine(tree.new("container"))
    tree.machine_ready = True
    backend("m1")
    err = add_error(tree, {"driver": DIMM, "id": "d1", "memdev": "m1"})
    assert str(err) == "Device 'dummy-dimm' can not be hotplugged on this machine"


@pytest.mark.parametrize(("options", "message"), [
    ({}, "Parameter 'driver' is missing"),
    ({"id": "x"}, "Parameter 'driver' is missing"),
    ({"driver": "nosuch"}, "'nosuch' is not a valid device model name"),
    ({"driver": "dummy-backend"}, "'dummy-backend' is not a valid device model name"),
    ({"driver": "container"}, "'container' is not a valid device model name"),
    ({"driver": "device"}, "Parameter 'driver' expects a non-abstract device type"),
    ({"driver": DIMM, "id": "1d", "memdev": "m2"}, "Parameter 'id' expects an identifier"),
    ({"driver": DIMM, "id": "", "memdev": "m2"}, "Parameter 'id' expects an identifier"),
    ({"driver": DIMM, "id": "d x", "memdev": "m2"}, "Parameter 'id' expects an identifier"),
    ({"driver": DIMM, "id": "d2", "memdev": "m2", "foo": "1"},
     "Property 'dummy-dimm.foo' not found"),
    ({"driver": DIMM, "id": "d2", "memdev": "m2", "slot": "abc"},
     "Parameter 'slot' expects integer"),
    ({"driver": DIMM, "id": "d2", "memdev": "m2", "slot": "1.5"},
     "Parameter 'slot' expects integer"),
    ({"driver": DIMM, "id": "d2", "memdev": "m2", "slot": "on"},  # JSON true, 7.2 QMP
     "Parameter 'slot' expects integer"),
    ({"driver": DIMM, "id": "d2", "memdev": "m2", "slot": "7"},
     "invalid slot number 7, valid range is [0-2]"),
    ({"driver": DIMM, "id": "d2", "memdev": "m2", "slot": "0"}, "slot 0 is busy"),
    ({"driver": DIMM, "id": "d2", "memdev": "m2", "node": "-1"},
     "Parameter 'node' expects uint32_t"),
    ({"driver": DIMM, "id": "d2", "memdev": "m2", "node": "5"},
     "'DIMM property node has value 5' which exceeds the number of numa nodes: 1"),
    ({"driver": DIMM, "id": "d2", "memdev": "m2", "addr": "5G"},
     "Parameter 'addr' expects integer"),
    ({"driver": DIMM, "id": "d2", "memdev": "m2", "addr": "0x100"},
     "address must be aligned to 0x200000 bytes"),
    ({"driver": DIMM, "id": "d2", "memdev": "m2", "addr": "-1"},
     "address must be aligned to 0x200000 bytes"),
    ({"driver": DIMM, "id": "d2", "memdev": "nosuch"}, "Device 'nosuch' not found"),
    ({"driver": DIMM, "id": "d2", "memdev": "5"}, "Device '5' not found"),
    ({"driver": DIMM, "id": "d2", "memdev": "/machine"},
     "Invalid parameter type for 'memdev', expected: dummy-backend"),
    ({"driver": DIMM, "id": "d2", "memdev": ""}, "'memdev' property must be set"),
    ({"driver": DIMM, "id": "d2"}, "'memdev' property must be set"),
    ({"driver": DIMM, "id": "d2", "memdev": "m1"}, "can't use already busy memdev: m1"),
    ({"driver": DIMM, "id": "d2", "memdev": "/objects/m2", "foo": "1"},
     "Property 'dummy-dimm.foo' not found"),
    ({"driver": DIMM, "id": "d2", "memdev": "m2", "size": "5"},
     "Property 'dummy-dimm.size' is not writable"),
    ({"driver": DIMM, "id": "d2", "memdev": "m2", "hotplugged": "on"},
     "Property 'dummy-dimm.hotplugged' is not writable"),
    ({"driver": DIMM, "id": "d2", "memdev": "m2", "hotpluggable": "off"},
     "Property 'dummy-dimm.hotpluggable' is not writable"),
    ({"driver": DIMM, "id": "d2", "memdev": "m2", "bus": "nosuch"}, "Bus 'nosuch' not found"),
    ({"driver": DIMM, "id": "dimm1", "memdev": "m2"}, "Duplicate device ID 'dimm1'"),
])
def test_device_add_messages(with_dimm1: qom.ObjectTree, options, message) -> None:
    err = add_error(with_dimm1, options)
    assert str(err) == message


@pytest.mark.parametrize(("options", "message"), [
    # notes section 8 / 10: id syntax first, then driver, then the duplicate id,
    # then properties in QDict order, then pre_plug / realize / plug
    ({"driver": "nosuch", "id": "1d"}, "Parameter 'id' expects an identifier"),
    ({"driver": "nosuch", "id": "dimm1"}, "'nosuch' is not a valid device model name"),
    ({"driver": DIMM, "id": "1d", "memdev": "nosuch"}, "Parameter 'id' expects an identifier"),
    ({"driver": DIMM, "id": "1d", "memdev": "m2", "foo": "1"},
     "Parameter 'id' expects an identifier"),
    ({"driver": DIMM, "id": "dimm1", "memdev": "m2", "foo": "1"},
     "Duplicate device ID 'dimm1'"),
    ({"driver": DIMM, "id": "dimm1", "memdev": "m1"}, "Duplicate device ID 'dimm1'"),
    ({"driver": DIMM, "id": "d2", "memdev": "nosuch", "foo": "1"}, "Device 'nosuch' not found"),
    ({"driver": DIMM, "id": "d2", "memdev": "nosuch", "slot": "abc"},
     "Device 'nosuch' not found"),
    ({"driver": DIMM, "id": "d2", "slot": "abc", "memdev": "nosuch"},
     "Device 'nosuch' not found"),
    ({"driver": DIMM, "id": "d2", "memdev": "m2", "slot": "abc", "foo": "1"},
     "Parameter 'slot' expects integer"),
    ({"driver": DIMM, "id": "d2", "memdev": "m2", "foo": "1", "slot": "abc"},
     "Parameter 'slot' expects integer"),
    ({"driver": DIMM, "id": "d2", "memdev": "m2", "node": "-1", "slot": "abc"},
     "Parameter 'slot' expects integer"),
    ({"driver": DIMM, "id": "d2", "memdev": "m2", "slot": "abc", "node": "-1"},
     "Parameter 'slot' expects integer"),
    ({"driver": DIMM, "id": "d2", "memdev": "m2", "addr": "5G", "slot": "abc"},
     "Parameter 'addr' expects integer"),
    ({"driver": DIMM, "id": "d2", "memdev": "m2", "bar": "1", "foo": "1"},
     "Property 'dummy-dimm.bar' not found"),
    ({"driver": DIMM, "id": "d2", "memdev": "m2", "zzz": "1", "aaa": "1"},
     "Property 'dummy-dimm.aaa' not found"),
    ({"driver": DIMM, "id": "d2", "memdev": "m2", "size": "5", "foo": "1"},
     "Property 'dummy-dimm.size' is not writable"),
    ({"driver": DIMM, "id": "d2", "memdev": "m1", "slot": "0"}, "slot 0 is busy"),
    ({"driver": DIMM, "id": "d2", "memdev": "m2", "slot": "0", "node": "5"}, "slot 0 is busy"),
    ({"driver": DIMM, "id": "d2", "memdev": "m2", "addr": "256", "slot": "7"},
     "invalid slot number 7, valid range is [0-2]"),
])
def test_device_add_error_order(with_dimm1: qom.ObjectTree, options, message) -> None:
    assert str(add_error(with_dimm1, options)) == message


def test_device_not_found_class(with_dimm1: qom.ObjectTree) -> None:
    err = add_error(with_dimm1, {"driver": DIMM, "id": "d2", "memdev": "nosuch"})
    assert isinstance(err, qom.DeviceNotFoundError) and err.error_class == "DeviceNotFound"
    err = add_error(with_dimm1, {"driver": "nosuch"})
    assert err.error_class == "GenericError"


def test_device_add_accepts_qemu_opts_strings(with_dimm1: qom.ObjectTree) -> None:
    dev = qom.device_add(with_dimm1, {"driver": DIMM, "id": "d2", "memdev": "m2",
                                      "addr": "4429185024"})
    assert dev.addr == 4429185024 and dev.slot == 1
    dev = qom.device_add(with_dimm1, {"driver": DIMM, "id": "d3", "memdev": "m3",
                                      "addr": "010000000000"})
    assert dev.addr == 0x40000000


def test_json_device_add_is_strictly_typed(with_dimm1: qom.ObjectTree) -> None:
    # -device '{"driver": ..., "slot": "1"}'
    for slot in ("1", [1]):
        err = add_error(with_dimm1, {"driver": DIMM, "id": "d1", "memdev": "m2", "slot": slot},
                        JSON)
        assert str(err) == "Invalid parameter type for 'slot', expected: integer"
    err = add_error(with_dimm1, {"driver": DIMM, "id": "d1", "memdev": "m2", "foo": 1}, JSON)
    assert str(err) == "Property 'dummy-dimm.foo' not found"
    dev = qom.device_add(with_dimm1, {"driver": DIMM, "id": "d1", "memdev": "m2", "slot": 2},
                         JSON)
    assert dev.slot == 2


# -- the anonymous device[N] counter (notes 8c, 8d) ------------------------------------

def test_anonymous_counter_advances_on_failures_after_creation(setup: qom.ObjectTree) -> None:
    qom.device_add(setup, {"driver": DIMM, "memdev": "m1"})
    assert children(setup, "/machine/peripheral-anon") == ["device[0]"]
    for options in ({"driver": DIMM, "memdev": "m2", "foo": "1"},
                    {"driver": DIMM, "memdev": "nosuch"},
                    {"driver": DIMM, "memdev": "m2", "slot": "abc"}):
        add_error(setup, options)
    add_error(setup, {"driver": "nosuch"})  # fails before the device exists
    add_error(setup, {"driver": "device"})
    qom.device_add(setup, {"driver": DIMM, "memdev": "m2"})
    assert children(setup, "/machine/peripheral-anon") == ["device[0]", "device[4]"]
    add_error(setup, {"driver": DIMM, "id": "named", "memdev": "m3", "foo": "1"})
    dev = qom.device_add(setup, {"driver": DIMM, "memdev": "m3"})
    assert dev.canonical_path == "/machine/peripheral-anon/device[5]"
    assert children(setup, "/machine/peripheral") == []
    err = add_error(setup, {"driver": DIMM, "memdev": "m4"})
    assert str(err) == "no free slots available"
    assert setup.anon_device_count == 7
    assert qom.qom_get(setup, "/machine/peripheral-anon/device[0]", "slot") == 0


@pytest.mark.parametrize(("options", "consumed"), [
    ({"driver": DIMM, "memdev": "m2", "foo": "1"}, True),
    ({"driver": DIMM, "memdev": "nosuch"}, True),
    ({"driver": DIMM, "memdev": "m2", "slot": "abc"}, True),
    ({"driver": DIMM}, True),                               # realize error
    ({"driver": DIMM, "memdev": "m2", "node": "5"}, True),  # realize error
    ({"driver": DIMM, "memdev": "m2", "hotplugged": "on"}, True),
    ({"driver": "nosuch"}, False),
    ({"driver": "device"}, False),
    ({"driver": DIMM, "memdev": "m2", "bus": "nosuch"}, False),
])
def test_failed_anonymous_add_and_the_counter(setup: qom.ObjectTree, options, consumed) -> None:
    add_error(setup, options)
    dev = qom.device_add(setup, {"driver": DIMM, "memdev": "m3"})
    assert dev.name_in_parent == ("device[1]" if consumed else "device[0]")


def test_anonymous_device_json_id_null(setup: qom.ObjectTree) -> None:
    dev = qom.device_add(setup, {"driver": DIMM, "id": None, "memdev": "m2"})
    assert dev.id is None and dev.name_in_parent == "device[0]"


# -- rollback ---------------------------------------------------------------------------

def test_realize_failure_rolls_back(with_dimm1: qom.ObjectTree, hook_recorder,
                                    monkeypatch) -> None:
    made = []
    real_new = qom.ObjectTree.new
    monkeypatch.setattr(qom.ObjectTree, "new",
                        lambda self, name, **kw: made.append(real_new(self, name, **kw))
                        or made[-1])
    hook_recorder.clear()
    err = add_error(with_dimm1, {"driver": DIMM, "id": "d2", "memdev": "m1"})
    assert str(err) == "can't use already busy memdev: m1"
    assert hook_recorder.names() == ["qom_device_pre_plug"]  # pre_plug ran, plug did not
    dev = made[0]
    assert dev.finalized and dev.parent is None and not dev.realized
    assert dev.log == ["realize"]  # realize failed: nothing to unrealize
    assert with_dimm1.objects.child("m1").mapped  # still dimm1's


class PlugPushesUndo:
    """A plugin whose plug succeeds and pushes its undo step."""

    def __init__(self, log: list[str]) -> None:
        self.log = log

    @hookimpl
    def qom_device_plug_map(self, machine, device, undo) -> None:
        self.log.append("plugged")
        undo.push(lambda: self.log.append("unplugged"), "plugin undo")


class PlugFails:
    @hookimpl
    def qom_device_plug_map(self, machine, device, undo) -> None:
        raise qom.RealizeError("plug refused by plugin")


def test_plug_failure_runs_the_undo_stack(with_dimm1: qom.ObjectTree, plugin_manager,
                                          hook_recorder, monkeypatch) -> None:
    log: list[str] = []
    plugin_manager.register(PlugFails())
    plugin_manager.register(PlugPushesUndo(log))  # registered last, called first
    made = []
    real_new = qom.ObjectTree.new
    monkeypatch.setattr(qom.ObjectTree, "new",
                        lambda self, name, **kw: made.append(real_new(self, name, **kw))
                        or made[-1])
    hook_recorder.clear()
    err = add_error(with_dimm1, {"driver": DIMM, "id": "d2", "memdev": "m2"})
    assert str(err) == "plug refused by plugin"
    assert log == ["plugged", "unplugged"]
    plug_calls = hook_recorder.get_calls("qom_device_plug_map")
    assert len(plug_calls) == 1 and isinstance(plug_calls[0].raised, qom.RealizeError)
    dev = made[0]
    assert dev.log == ["realize", "unrealize"]  # undone in reverse order
    assert not with_dimm1.objects.child("m2").mapped
    assert 1 not in state(with_dimm1).plugged  # the slot was given back
    assert dev.finalized and not dev.realized
    assert with_dimm1.resolve("d2") == (None, False)


# -- device_del --------------------------------------------------------------------------

@pytest.mark.parametrize(("device_id", "error", "message"), [
    ("nosuch", qom.DeviceNotFoundError, "Device 'nosuch' not found"),
    ("m1", qom.DeviceNotFoundError, "Device 'm1' not found"),
    ("/objects/m1", qom.QomError, "/objects/m1 is not a hotpluggable device"),
    ("/machine", qom.QomError, "/machine is not a hotpluggable device"),
    ("/machine/peripheral", qom.QomError, "/machine/peripheral is not a hotpluggable device"),
    ("", qom.QomError, " is not a hotpluggable device"),
])
def test_device_del_errors(with_dimm1: qom.ObjectTree, device_id, error, message) -> None:
    with pytest.raises(error) as info:
        qom.device_del(with_dimm1, device_id)
    assert str(info.value) == message
    assert state(with_dimm1).unplug_requests == []


def test_device_del_requests_and_guest_completes(with_dimm1: qom.ObjectTree,
                                                 hook_recorder) -> None:
    dimm1 = with_dimm1.resolve("dimm1")[0]
    hook_recorder.clear()
    qom.device_del(with_dimm1, "/machine/peripheral/dimm1")
    qom.device_del(with_dimm1, "/machine/peripheral/dimm1")  # repeatable while pending
    qom.device_del(with_dimm1, "dimm1")
    assert state(with_dimm1).unplug_requests == [dimm1] * 3
    assert hook_recorder.names() == ["qom_device_unplug_request"] * 3
    assert children(with_dimm1, "/machine/peripheral") == ["dimm1"]
    with pytest.raises(qom.ObjectInUseError) as info:
        qom.object_del(with_dimm1, "m1")
    assert str(info.value) == "object 'm1' is in use, can not be deleted"

    hook_recorder.clear()
    qom.complete_unplug(dimm1)
    assert hook_recorder.names() == ["qom_device_unplug_describe", "qom_device_unplug_map",
                                     "qom_device_unplug_claim", "qom_event"]
    assert hook_recorder.get_calls("qom_event")[0].kwargs["data"] == {
        "device": "dimm1", "path": "/machine/peripheral/dimm1"}
    assert children(with_dimm1, "/machine/peripheral") == []
    assert dimm1.finalized and dimm1.log == ["realize", "unrealize"]
    assert state(with_dimm1).plugged == {}
    qom.object_del(with_dimm1, "m1")
    # the slot and the id are free again
    again = qom.device_add(with_dimm1, {"driver": DIMM, "id": "dimm1", "memdev": "m2"})
    assert again.slot == 0


def test_device_del_anonymous_by_path(setup: qom.ObjectTree) -> None:
    qom.device_add(setup, {"driver": DIMM, "memdev": "m1"})
    qom.device_del(setup, "/machine/peripheral-anon/device[0]")
    assert len(state(setup).unplug_requests) == 1
    with pytest.raises(qom.DeviceNotFoundError):
        qom.device_del(setup, "device[0]")  # ids are relative to /machine/peripheral


# -- QMP device_add in 7.2: JSON values re-read as QemuOpts strings (notes 9) ------------

def qmp_device_add(tree: qom.ObjectTree, **arguments):
    return qom.device_add(tree, qom.qemu_opts_from_qdict(arguments))


def test_qemu_opts_from_qdict() -> None:
    assert qom.qemu_opts_from_qdict({
        "driver": DIMM, "id": "d", "slot": 1, "addr": -1, "x": 1.5, "b": True, "c": False,
        "n": None, "l": [1], "o": {"a": 2}}) == {
        "driver": DIMM, "id": "d", "slot": "1", "addr": "-1", "x": "1.5", "b": "on",
        "c": "off"}
    assert qom.qemu_opts_from_qdict({"driver": DIMM, "id": 5}) == {"driver": DIMM}


@pytest.mark.parametrize("slot", [None, [1], [2], {"a": 2}])
def test_qmp_slot_of_other_json_types_is_ignored(with_dimm1: qom.ObjectTree, slot) -> None:
    dev = qmp_device_add(with_dimm1, driver=DIMM, id="d2", memdev="m2", slot=slot)
    assert dev.slot == 1 and dev.canonical_path == "/machine/peripheral/d2"


def test_qmp_string_slot_is_accepted(with_dimm1: qom.ObjectTree) -> None:
    assert qmp_device_add(with_dimm1, driver=DIMM, id="d2", memdev="m2", slot="1").slot == 1


@pytest.mark.parametrize("device_id", [5, None])
def test_qmp_non_string_id_makes_an_anonymous_device(with_dimm1: qom.ObjectTree,
                                                       device_id) -> None:
    dev = qmp_device_add(with_dimm1, driver=DIMM, id=device_id, memdev="m2")
    assert dev.id is None
    assert children(with_dimm1, "/machine/peripheral") == ["dimm1"]
    assert children(with_dimm1, "/machine/peripheral-anon") == ["device[0]"]


@pytest.mark.parametrize(("arguments", "message"), [
    ({"slot": 1.5}, "Parameter 'slot' expects integer"),
    ({"slot": True}, "Parameter 'slot' expects integer"),
    ({"slot": "abc"}, "Parameter 'slot' expects integer"),
    ({"addr": -1}, "address must be aligned to 0x200000 bytes"),
    ({"addr": 256}, "address must be aligned to 0x200000 bytes"),
    ({"addr": "0x100"}, "address must be aligned to 0x200000 bytes"),
    ({"memdev": 5}, "Device '5' not found"),
    ({"node": -1}, "Parameter 'node' expects uint32_t"),
])
def test_qmp_device_add_messages(with_dimm1: qom.ObjectTree, arguments, message) -> None:
    before = snapshot(with_dimm1)
    with pytest.raises(qom.QomError) as info:
        qmp_device_add(with_dimm1, **{"driver": DIMM, "id": "d2", "memdev": "m2", **arguments})
    assert str(info.value) == message
    assert snapshot(with_dimm1) == before


def test_bad_device_id_carries_the_hint_and_beats_everything(setup: qom.ObjectTree) -> None:
    from qom.errors import IDENTIFIER_HINT

    for options in ({"id": "1d"}, {"driver": "nosuch", "id": "1d"},
                    {"driver": DIMM, "id": "1d", "memdev": "nosuch", "foo": "1"}):
        err = add_error(setup, options)
        assert str(err) == "Parameter 'id' expects an identifier"
        assert err.hint == IDENTIFIER_HINT
