"""qom.user_creatable: object-add / object-del with QEMU 7.2's messages and order."""

from __future__ import annotations

import pytest
from dummy_types import BACKEND

import qom
from qom import JSON, KEYVAL, OPTS, parse_keyval, parse_qemu_opts
from qom.errors import IDENTIFIER_HINT

MIB = 1 << 20


def objects(tree: qom.ObjectTree) -> list[str]:
    return sorted(name for name, _ in tree.objects.children())


def add(tree: qom.ObjectTree, source=JSON, **args):
    args = {"qom-type": BACKEND, **{k.replace("_", "-"): v for k, v in args.items()}}
    return qom.object_add(tree, args, source)


def error_of(tree: qom.ObjectTree, source=JSON, **args) -> qom.QomError:
    before = objects(tree)
    with pytest.raises(qom.QomError) as info:
        add(tree, source, **args)
    assert objects(tree) == before  # a failed object-add leaves nothing behind
    return info.value


def test_success(tree: qom.ObjectTree) -> None:
    obj = add(tree, id="m1", size=MIB, host_nodes=[0], policy="bind")
    assert obj.canonical_path == "/objects/m1"
    assert tree.resolve("/objects/m1")[0] is obj
    assert obj.events == ["complete"] and obj.completed
    assert qom.qom_get(tree, "/objects/m1", "size") == MIB
    assert qom.qom_get(tree, "m1", "host-nodes") == [0]
    assert qom.qom_get(tree, "/objects", "m1") == "/objects/m1"


def test_odd_sizes_are_kept(tree: qom.ObjectTree) -> None:
    for n, size in enumerate((1, 4097, 2 * MIB)):
        assert add(tree, id=f"x{n}", size=size).get("size") == size


@pytest.mark.parametrize("id_", ["m.1-_x", "M", "a1"])
def test_good_ids(tree: qom.ObjectTree, id_: str) -> None:
    assert add(tree, id=id_, size=MIB).name_in_parent == id_


@pytest.mark.parametrize("id_", ["", "1m", "a b", "m#", "m/1", "_m", "-m", ".m", "é"])
def test_bad_ids(tree: qom.ObjectTree, id_: str) -> None:
    err = error_of(tree, id=id_, size=MIB)
    assert str(err) == "Parameter 'id' expects an identifier"
    assert err.hint == IDENTIFIER_HINT
    assert not qom.id_wellformed(id_)


@pytest.mark.parametrize(("qom_type",), [("nosuch",), ("object",), ("container",),
                                         ("user-creatable",), ("dummy-dimm",),
                                         ("device",), ("interface",)])
def test_qom_type_rejected(tree: qom.ObjectTree, qom_type: str) -> None:
    with pytest.raises(qom.ParameterError) as info:
        qom.object_add(tree, {"qom-type": qom_type, "id": "x", "size": MIB})
    assert str(info.value) == f"Parameter 'qom-type' does not accept value '{qom_type}'"


@pytest.mark.parametrize(("args", "message"), [
    ({"id": "x", "size": MIB}, "Parameter 'qom-type' is missing"),
    ({"qom-type": BACKEND, "size": MIB}, "Parameter 'id' is missing"),
    ({"qom-type": BACKEND, "id": 5, "size": MIB},
     "Invalid parameter type for 'id', expected: string"),
    ({"qom-type": 5, "id": "x"}, "Invalid parameter type for 'qom-type', expected: string"),
    ({"qom-type": BACKEND, "id": "x"}, "Parameter 'size' is missing"),
    ({"qom-type": BACKEND, "id": "x", "size": MIB, "foo": 1}, "Parameter 'foo' is unexpected"),
    ({"qom-type": BACKEND, "id": "x", "props": {"size": MIB}}, "Parameter 'size' is missing"),
    ({"qom-type": BACKEND, "id": "x", "props": {}, "size": MIB},
     "Parameter 'props' is unexpected"),
    ({"qom-type": BACKEND, "id": "x", "size": "1G"}, "Parameter 'size' expects uint64"),
    ({"qom-type": BACKEND, "id": "x", "size": 1.5}, "Parameter 'size' expects uint64"),
    ({"qom-type": BACKEND, "id": "x", "size": 1 << 64}, "Parameter 'size' expects uint64"),
    ({"qom-type": BACKEND, "id": "x", "size": MIB, "dump": "yes"},
     "Invalid parameter type for 'dump', expected: boolean"),
    ({"qom-type": BACKEND, "id": "x", "size": MIB, "prealloc-threads": -1},
     "Parameter 'prealloc-threads' expects uint32_t"),
    ({"qom-type": BACKEND, "id": "x", "size": MIB, "prealloc-threads": "2"},
     "Parameter 'prealloc-threads' expects uint64"),
    ({"qom-type": BACKEND, "id": "x", "size": MIB, "policy": 1},
     "Invalid parameter type for 'policy', expected: string"),
    ({"qom-type": BACKEND, "id": "x", "size": MIB, "host-nodes": 0},
     "Invalid parameter type for 'host-nodes', expected: array"),
    ({"qom-type": BACKEND, "id": "x", "size": MIB, "host-nodes": ["a"]},
     "Parameter 'host-nodes[0]' expects uint64"),
    ({"qom-type": BACKEND, "id": "x", "size": MIB, "host-nodes": [-1], "policy": "bind"},
     "Parameter 'null' expects uint16_t"),
    # setters
    ({"qom-type": BACKEND, "id": "x", "size": 0},
     "property 'size' of dummy-backend doesn't take value '0'"),
    ({"qom-type": BACKEND, "id": "x", "size": MIB, "prealloc-threads": 0},
     "property 'prealloc-threads' of dummy-backend doesn't take value '0'"),
    ({"qom-type": BACKEND, "id": "x", "size": MIB, "host-nodes": [200]},
     "Invalid host-nodes value: 200"),
    ({"qom-type": BACKEND, "id": "x", "size": MIB, "host-nodes": [200], "policy": "bind"},
     "Invalid host-nodes value: 200"),
    # complete()
    ({"qom-type": BACKEND, "id": "x", "size": MIB, "policy": "bind"},
     "host-nodes must be set for policy bind"),
    ({"qom-type": BACKEND, "id": "x", "size": MIB, "host-nodes": [], "policy": "bind"},
     "host-nodes must be set for policy bind"),
    ({"qom-type": BACKEND, "id": "x", "size": MIB, "host-nodes": [0]},
     "host-nodes must be empty for policy default, or you should explicitly specify a"
     " policy other than default"),
    ({"qom-type": BACKEND, "id": "x", "size": 1 << 63},
     "cannot set up guest memory 'x': Cannot allocate memory"),
])
def test_qmp_messages(tree: qom.ObjectTree, args, message) -> None:
    before = objects(tree)
    with pytest.raises(qom.QomError) as info:
        qom.object_add(tree, args)
    assert str(info.value) == message
    assert info.value.error_class == "GenericError"
    assert objects(tree) == before


@pytest.mark.parametrize(("args", "message"), [
    # notes 4b: QAPI checks, then the id, then setters, then the duplicate, then complete
    ({"id": "1m", "size": "1G"}, "Parameter 'size' expects uint64"),
    ({"id": "1m", "foo": 1, "size": MIB}, "Parameter 'foo' is unexpected"),
    ({"id": "1m", "size": MIB, "foo": 1}, "Parameter 'foo' is unexpected"),
    ({"id": "m1", "size": MIB, "policy": "bind"},
     "attempt to add duplicate property 'm1' to object (type 'container')"),
    ({"id": "m1", "size": 0}, "property 'size' of dummy-backend doesn't take value '0'"),
    ({"id": "1m", "size": 0}, "Parameter 'id' expects an identifier"),
    ({"id": "m1", "size": "1G"}, "Parameter 'size' expects uint64"),
    ({"id": "x", "size": MIB, "dump": "yes", "share": "on"},
     "Invalid parameter type for 'dump', expected: boolean"),
    ({"id": "x", "size": MIB, "share": "on", "dump": "yes"},
     "Invalid parameter type for 'dump', expected: boolean"),
    ({"id": "x", "size": "1G", "foo": 1}, "Parameter 'size' expects uint64"),
    ({"id": "x", "foo": 1}, "Parameter 'size' is missing"),
    ({"id": "x", "size": 0, "policy": "bind"},
     "property 'size' of dummy-backend doesn't take value '0'"),
    ({"id": "x", "size": MIB, "policy": "bind", "prealloc-threads": 0},
     "property 'prealloc-threads' of dummy-backend doesn't take value '0'"),
    ({"size": MIB, "foo": 1}, "Parameter 'id' is missing"),
])
def test_error_precedence(tree: qom.ObjectTree, args, message) -> None:
    add(tree, id="m1", size=MIB)
    with pytest.raises(qom.QomError) as info:
        qom.object_add(tree, {"qom-type": BACKEND, **args})
    assert str(info.value) == message
    assert objects(tree) == ["m1"]


@pytest.mark.parametrize("args", [{"qom-type": "nosuch", "id": "1m"},
                                  {"qom-type": "user-creatable", "id": "1m"},
                                  {"qom-type": "nosuch", "id": "m1"}])
def test_qom_type_beats_id(tree: qom.ObjectTree, args) -> None:
    add(tree, id="m1", size=MIB)
    with pytest.raises(qom.ParameterError, match=r"^Parameter 'qom-type' does not accept"):
        qom.object_add(tree, args)


def test_duplicate_id(tree: qom.ObjectTree) -> None:
    first = add(tree, id="m1", size=MIB)
    err = error_of(tree, id="m1", size=2 * MIB)
    assert str(err) == "attempt to add duplicate property 'm1' to object (type 'container')"
    assert tree.resolve("/objects/m1")[0] is first
    assert first.get("size") == MIB


@pytest.fixture
def made(monkeypatch) -> list[qom.Object]:
    """Every object ObjectTree.new makes during the test."""
    objs: list[qom.Object] = []
    real_new = qom.ObjectTree.new

    def spy(self, type_name, **fields):
        objs.append(real_new(self, type_name, **fields))
        return objs[-1]

    monkeypatch.setattr(qom.ObjectTree, "new", spy)
    return objs


def test_failed_complete_leaves_nothing_and_finalizes(tree: qom.ObjectTree, made) -> None:
    error_of(tree, id="x", size=MIB, policy="bind")
    assert made[0].finalized and made[0].parent is None
    assert made[0].events == ["complete"]
    # the id is free again
    assert add(tree, id="x", size=MIB).canonical_path == "/objects/x"


def test_failed_setter_finalizes_unattached_object(tree: qom.ObjectTree, made) -> None:
    error_of(tree, id="x", size=0)
    assert made[0].finalized and made[0].events == []  # complete() never ran


def test_properties_are_set_in_qdict_order(tree: qom.ObjectTree, monkeypatch) -> None:
    order: list[str] = []
    real_set_value = qom.Object.set_value

    def spy(self, name, value):
        order.append(name)
        real_set_value(self, name, value)

    monkeypatch.setattr(qom.Object, "set_value", spy)
    args = {"size": MIB, "dump": True, "share": False, "prealloc-threads": 2,
            "policy": "default", "host-nodes": []}
    add(tree, id="m1", **{k.replace("-", "_"): v for k, v in args.items()})
    assert order == qom.qdict_order(args)


# -- HMP (keyval) and the command line (opts) ----------------------------------------

def hmp(tree: qom.ObjectTree, text: str):
    return qom.object_add(tree, parse_keyval(text, "qom-type"), KEYVAL)


def cli(tree: qom.ObjectTree, text: str):
    args: dict = {}
    for opt in parse_qemu_opts(text, "qom-type"):
        if opt.name == "host-nodes":
            args.setdefault(opt.name, []).append(opt.value)
        else:
            args[opt.name] = opt.value
    return qom.object_add(tree, args, OPTS)


@pytest.mark.parametrize(("text", "message"), [
    ("dummy-backend,id=x,size=1M,dump=maybe", "Parameter 'dump' expects 'on' or 'off'"),
    ("dummy-backend,id=x,size=1M,prealloc-threads=x",
     "Parameter 'prealloc-threads' expects integer"),
    ("dummy-backend,id=x,size=1M,prealloc-threads=0",
     "property 'prealloc-threads' of dummy-backend doesn't take value '0'"),
    ("dummy-backend,id=x,size=1M,prealloc-threads=-1",
     "Parameter 'prealloc-threads' expects uint32_t"),
    ("dummy-backend,id=x,size=1M,policy=nosuch",
     "Parameter 'policy' does not accept value 'nosuch'"),
    ("dummy-backend,id=x,size=1M,host-nodes=0",
     "Invalid parameter type for 'host-nodes', expected: array"),
    ("dummy-backend,id=x,size=1M,policy=bind,host-nodes=0",
     "Invalid parameter type for 'host-nodes', expected: array"),
    ("dummy-backend,id=x,size=1M,host-nodes.0=0",
     "host-nodes must be empty for policy default, or you should explicitly specify a"
     " policy other than default"),
    ("dummy-backend,id=x,size=1M,foo=1", "Parameter 'foo' is unexpected"),
    ("dummy-backend,id=x,size=1Q", "Parameter 'size' expects size"),
    ("dummy-backend,id=x,size=-1", "Parameter 'size' expects size"),
    ("dummy-backend,id=x,size=0", "property 'size' of dummy-backend doesn't take value '0'"),
    ("dummy-backend,id=1h,size=1M", "Parameter 'id' expects an identifier"),
    ("dummy-backend,size=1M", "Parameter 'id' is missing"),
    ("dummy-backend,id=x", "Parameter 'size' is missing"),
    ("id=x,size=1M", "Parameter 'qom-type' is missing"),
    ("nosuch,id=x", "Parameter 'qom-type' does not accept value 'nosuch'"),
    ("dummy-backend,id=m1,size=1M",
     "attempt to add duplicate property 'm1' to object (type 'container')"),
    ("dummy-backend,id=1h,size=1Q", "Parameter 'size' expects size"),
    ("dummy-backend,id=1h,foo=1,size=1M", "Parameter 'foo' is unexpected"),
    ("dummy-backend,id=m1,size=1M,policy=bind",
     "attempt to add duplicate property 'm1' to object (type 'container')"),
])
def test_hmp_messages(tree: qom.ObjectTree, text: str, message: str) -> None:
    add(tree, id="m1", size=MIB)
    with pytest.raises(qom.QomError) as info:
        hmp(tree, text)
    assert str(info.value) == message
    assert objects(tree) == ["m1"]


@pytest.mark.parametrize(("text", "props"), [
    ("dummy-backend,id=x,size=1M,policy=bind,host-nodes.0=0",
     {"policy": "bind", "host-nodes": [0]}),
    ("qom-type=dummy-backend,id=x,size=1M", {"size": MIB}),
    ("dummy-backend,id=x,size=1.5M", {"size": 1572864}),
    ("dummy-backend,id=x,size=0x100000", {"size": MIB}),
    ("dummy-backend,id=x,size=1k", {"size": 1024}),
    ("dummy-backend,id=x,size=1M,dump=on,dump=off", {"dump": False}),
    ("dummy-backend,id=x,size=1M,share=y,dump=yes", {"share": True, "dump": True}),
])
def test_hmp_success(tree: qom.ObjectTree, text: str, props: dict) -> None:
    obj = hmp(tree, text)
    assert {name: obj.get_json(name) for name in props} == props


@pytest.mark.parametrize(("text", "message"), [
    ("dummy-backend,id=m1,size=1M,dump=maybe", "Parameter 'dump' expects 'on' or 'off'"),
    ("dummy-backend,id=m1,size=1M,prealloc-threads=x",
     "Parameter 'prealloc-threads' expects a uint64 value"),
    ("dummy-backend,id=m1,size=1M,prealloc-threads=-1",
     "Parameter 'prealloc-threads' expects a uint64 value"),
    ("dummy-backend,id=m1,size=1M,prealloc-threads=0",
     "property 'prealloc-threads' of dummy-backend doesn't take value '0'"),
    ("dummy-backend,id=m1,size=1M,policy=nosuch",
     "Parameter 'policy' does not accept value 'nosuch'"),
    ("dummy-backend,id=m1,size=1M,foo=1", "Invalid parameter 'foo'"),
    ("dummy-backend,id=m1,size=1M,host-nodes=0",
     "host-nodes must be empty for policy default, or you should explicitly specify a"
     " policy other than default"),
    ("dummy-backend,id=m1,size=1M,policy=bind", "host-nodes must be set for policy bind"),
    ("dummy-backend,id=m1,size=1Q", "Parameter 'size' expects a size value"),
    ("dummy-backend,id=m1", "Parameter 'size' is missing"),
    ("dummy-backend,size=1M", "Parameter 'id' is missing"),
    ("id=m1,size=1M", "Parameter 'qom-type' is missing"),
    ("nosuch,id=m1", "Parameter 'qom-type' does not accept value 'nosuch'"),
    ("dummy-backend,id=1m,size=1M", "Parameter 'id' expects an identifier"),
    # QemuOpts checks the id before the opts visitor sees any value
    ("dummy-backend,id=1m,size=1Q", "Parameter 'id' expects an identifier"),
    ("dummy-backend,id=1m,foo=1,size=1M", "Parameter 'id' expects an identifier"),
])
def test_cli_messages(tree: qom.ObjectTree, text: str, message: str) -> None:
    with pytest.raises(qom.QomError) as info:
        cli(tree, text)
    assert str(info.value) == message
    assert objects(tree) == []


def test_cli_success(tree: qom.ObjectTree) -> None:
    obj = cli(tree, "dummy-backend,id=m1,size=1M,policy=bind,host-nodes=0,share=on,share=off")
    assert obj.get("host-nodes") == [0] and obj.get("share") is False
    assert cli(tree, "dummy-backend,id=m2,size=1.5M,dump=yes").get("size") == 1572864


# -- object-del ---------------------------------------------------------------------

def test_object_del(tree: qom.ObjectTree) -> None:
    obj = add(tree, id="m1", size=MIB)
    qom.object_del(tree, "m1")
    assert objects(tree) == [] and obj.finalized
    with pytest.raises(qom.QomError) as info:
        qom.object_del(tree, "m1")
    assert str(info.value) == "object 'm1' not found"


@pytest.mark.parametrize("id_", ["nosuch", "/objects/m1", "", "objects/m1", "type"])
def test_object_del_takes_a_direct_child_id(tree: qom.ObjectTree, id_: str) -> None:
    add(tree, id="m1", size=MIB)
    with pytest.raises(qom.QomError) as info:
        qom.object_del(tree, id_)
    assert str(info.value) == f"object '{id_}' not found"
    assert objects(tree) == ["m1"]


def test_object_del_in_use(tree: qom.ObjectTree) -> None:
    obj = add(tree, id="m1", size=MIB)
    obj.mapped = True
    with pytest.raises(qom.ObjectInUseError) as info:
        qom.object_del(tree, "m1")
    assert str(info.value) == "object 'm1' is in use, can not be deleted"
    assert objects(tree) == ["m1"] and not obj.finalized
    obj.mapped = False
    qom.object_del(tree, "m1")
    assert objects(tree) == []
