"""qom.paths: absolute and partial path resolution with QEMU's rules."""

from __future__ import annotations

import pytest
from dummy_types import BACKEND, DIMM

import qom


@pytest.fixture
def populated(tree: qom.ObjectTree, machine, backend) -> qom.ObjectTree:
    """/objects/m1 and m2, /machine/peripheral/dimm1 on m1, a link on the machine."""
    backend("m1")
    backend("m2")
    qom.device_add(tree, {"driver": DIMM, "id": "dimm1", "memdev": "m1"})
    return tree


def resolve(tree: qom.ObjectTree, path: str, type_name: str = "object"):
    obj, ambiguous = tree.resolve(path, type_name)
    return obj.canonical_path if obj is not None else ("ambiguous" if ambiguous else None)


@pytest.mark.parametrize(("path", "expected"), [
    ("/", "/"),
    ("/objects", "/objects"),
    ("/objects/m1", "/objects/m1"),
    ("/machine/", "/machine"),            # trailing slash tolerated
    ("//machine", "/machine"),            # doubled slash tolerated
    ("/machine//peripheral", "/machine/peripheral"),
    ("machine/", "/machine"),
    ("machine", "/machine"),
    ("peripheral", "/machine/peripheral"),
    ("m1", "/objects/m1"),
    ("dimm1", "/machine/peripheral/dimm1"),
    ("objects/m2", "/objects/m2"),
    ("/machine/../machine", None),        # '..' is not special
    ("..", None),
    ("/nosuch", None),
    ("nosuch", None),
    ("type", None),                       # not a child<> or link<>
    ("/machine/type", None),
    ("", "ambiguous"),                    # every object matches the empty path
    ("/machine/peripheral/dimm1/memdev", "/objects/m1"),  # links are followed
    ("dimm1/memdev", "/objects/m1"),
    ("memdev", "/objects/m1"),            # only one object has such a link
])
def test_resolve(populated: qom.ObjectTree, path: str, expected) -> None:
    assert resolve(populated, path) == expected


def test_partial_path_with_two_matches_is_ambiguous(populated: qom.ObjectTree) -> None:
    populated.container("/a/x")
    populated.container("/b/x")
    assert resolve(populated, "x") == "ambiguous"
    assert resolve(populated, "a/x") == "/a/x"
    assert resolve(populated, "/b/x") == "/b/x"


def test_type_filter_disambiguates(populated: qom.ObjectTree) -> None:
    # a device named like a backend: only the backend is a dummy-backend
    qom.object_add(populated, {"qom-type": BACKEND, "id": "m3", "size": 1 << 30})
    qom.device_add(populated, {"driver": DIMM, "id": "m2", "memdev": "m3"})
    assert resolve(populated, "m2") == "ambiguous"
    assert resolve(populated, "m2", BACKEND) == "/objects/m2"
    assert resolve(populated, "m2", DIMM) == "/machine/peripheral/m2"
    assert resolve(populated, "/objects/m2", DIMM) is None


def test_abs_path_wrong_type(populated: qom.ObjectTree) -> None:
    assert resolve(populated, "/machine", BACKEND) is None
    assert resolve(populated, "/objects/m1", "user-creatable") == "/objects/m1"


def test_partial_search_descends_children_not_links(populated: qom.ObjectTree) -> None:
    # m1 is reachable as /objects/m1 and as dimm1's memdev link; that is one
    # match, because the search only descends through child<> properties
    assert resolve(populated, "m1") == "/objects/m1"


def test_resolve_at(populated: qom.ObjectTree) -> None:
    peripheral = populated.container("/machine/peripheral")
    assert populated.resolve_at(peripheral, "dimm1").canonical_path == (
        "/machine/peripheral/dimm1")
    assert populated.resolve_at(peripheral, "dimm1/memdev").canonical_path == "/objects/m1"
    assert populated.resolve_at(peripheral, "/objects/m2").canonical_path == "/objects/m2"
    assert populated.resolve_at(peripheral, "m1") is None  # relative, no search
    assert populated.resolve_at(peripheral, "") is peripheral
