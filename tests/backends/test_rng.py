"""rng-random, rng-builtin and rng-egd: real files opened and read, chardevs held."""

from __future__ import annotations

import pytest
from backend_helpers import error_of, open_fds

from backends.rng import RngBuiltin, RngEgd, RngRandom
from pyqom import VM
from qom import QomError, object_add, object_del, qom_get, qom_list_types, qom_set


def rng(tree, qom_type="rng-random", object_id="r1", **props):
    return object_add(tree, {"qom-type": qom_type, "id": object_id, **props})


def test_types(tree):
    names = {entry["name"]: entry.get("abstract", False)
             for entry in qom_list_types(tree.registry, "rng-backend", abstract=True)}
    assert names == {"rng-backend": True, "rng-random": False, "rng-builtin": False,
                     "rng-egd": False}


def test_rng_random_opens_its_file_and_reads_it(tree, tmp_path):
    source = tmp_path / "entropy"
    source.write_bytes(b"0123456789")
    fds = open_fds()
    obj = rng(tree, filename=str(source))
    assert isinstance(obj, RngRandom)
    new = open_fds() - fds
    assert [entry.split("->")[-1] for entry in new] == [str(source)]
    assert obj.request_entropy(4) == b"0123"
    assert qom_get(tree, "/objects/r1", "opened") is True
    assert error_of(qom_set, tree, "/objects/r1", "filename", "/dev/random") \
        == "Property 'filename' can no longer be set"
    object_del(tree, "r1")
    assert open_fds() == fds


def test_rng_random_default_is_dev_urandom(tree):
    obj = rng(tree)
    assert qom_get(tree, "/objects/r1", "filename") == "/dev/urandom"
    assert len(obj.request_entropy(16)) == 16


@pytest.mark.parametrize(("props", "message"), [
    ({"filename": "/nonexistent"}, "Could not open '/nonexistent': No such file or directory"),
    ({"filename": ""}, "Could not open '': No such file or directory"),
    ({"opened": True}, "Property 'rng-random.opened' is not writable"),
    ({"opened": "x"}, "Invalid parameter type for 'opened', expected: boolean"),
    ({"filename": 1}, "Invalid parameter type for 'filename', expected: string"),
])
def test_rng_random_errors_leave_nothing(tree, props, message):
    fds = open_fds()
    assert error_of(rng, tree, **props) == message
    assert tree.objects.child("r1") is None
    assert open_fds() == fds


def test_rng_builtin_gives_random_bytes(tree):
    obj = rng(tree, "rng-builtin")
    assert isinstance(obj, RngBuiltin)
    assert qom_get(tree, "/objects/r1", "opened") is True
    assert len(obj.request_entropy(32)) == 32
    assert error_of(rng, tree, "rng-builtin", "r2", filename="/dev/urandom") \
        == "Parameter 'filename' is unexpected"


def test_rng_egd_needs_a_chardev(tree):
    assert error_of(rng, tree, "rng-egd") == "Parameter 'chardev' is missing"
    assert error_of(rng, tree, "rng-egd", chardev="nosuch") == "Device 'nosuch' not found"


def test_rng_egd_holds_its_chardev(tmp_path):
    chardevs = {"c1": f"file:{tmp_path / 'c1'}", "c2": "null"}
    with VM("128M", chardevs=chardevs, autoload=False) as vm:
        obj = vm.object_add("rng-egd", "e1", chardev="c1")
        assert isinstance(obj, RngEgd)
        assert vm.qom_get("/objects/e1", "chardev") == "c1"
        with pytest.raises(QomError) as busy:
            vm.object_add("rng-egd", "e2", chardev="c1")
        assert str(busy.value) == "Device 'c1' is in use"
        with pytest.raises(QomError) as late:
            vm.qom_set("/objects/e1", "chardev", "c2")
        assert str(late.value) == "Property 'chardev' can no longer be set"
        vm.object_del("e1")
        vm.object_add("rng-egd", "e2", chardev="c1")      # free again
