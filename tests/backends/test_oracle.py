"""The same backend operations on pyqom and on real QEMU 7.2; the answers must match.

Skips when ``qemu-system-x86_64`` 7.2 is not installed.  Paths differ between
the two sides, so each side's temporary directory is written ``{dir}``.
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qom import QomError, object_add, object_del, qom_get, qom_set

MiB = 1024 * 1024


def _load_oracle() -> Any:
    # The conformance suite owns the oracle; load it from there by path.
    path = Path(__file__).parents[1] / "conformance" / "qemu_oracle.py"
    spec = importlib.util.spec_from_file_location("backends_qemu_oracle", path)
    if spec is None or spec.loader is None or not path.exists():
        pytest.skip("tests/conformance/qemu_oracle.py is missing")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def qemu() -> Iterator[Any]:
    oracle = _load_oracle().QemuOracle("-m", "1G,slots=3,maxmem=4G")
    yield oracle
    oracle.close()


@pytest.fixture(scope="module")
def qemu_dir() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="pyqom-oracle-files-"))
    yield directory
    shutil.rmtree(directory)


def _fill(value: Any, directory: Path) -> Any:
    if isinstance(value, str):
        return value.replace("{dir}", str(directory))
    if isinstance(value, dict):
        return {k: _fill(v, directory) for k, v in value.items()}
    return value


def _pyqom(fn: Any, *args: Any) -> dict[str, Any]:
    try:
        return {"return": fn(*args)}
    except QomError as err:
        return {"error": {"class": err.error_class, "desc": str(err)}}


def _normalize(reply: dict[str, Any], directory: Path) -> dict[str, Any]:
    if "error" in reply:
        desc = reply["error"]["desc"].replace(str(directory), "{dir}")
        return {"error": {"class": reply["error"]["class"], "desc": desc}}
    if isinstance(reply["return"], str):
        return {"return": reply["return"].replace(str(directory), "{dir}")}
    return {"return": {}} if not isinstance(reply["return"], (bool, int, str, list)) \
        else reply


F = "memory-backend-file"
R = "memory-backend-ram"
D = "memory-backend-memfd"

ADD_CASES = [
    {"qom-type": R, "size": 1},
    {"qom-type": R, "size": 0},
    {"qom-type": R, "size": 1 << 63},
    {"qom-type": R, "size": MiB, "host-nodes": [1], "policy": "bind"},
    {"qom-type": R, "size": MiB, "host-nodes": [0], "policy": "interleave"},
    {"qom-type": R, "size": MiB, "prealloc": True, "reserve": False},
    {"qom-type": R, "size": MiB, "prealloc-context": "nosuch"},
    {"qom-type": R, "size": MiB, "prealloc-context": "/objects"},
    {"qom-type": F, "size": MiB, "mem-path": "{dir}/nonexistent/dir/f"},
    {"qom-type": F, "size": 64 * MiB, "mem-path": "{dir}/a3", "align": 3 * MiB},
    {"qom-type": F, "size": 64 * MiB, "mem-path": "{dir}/a2", "align": 2048},
    {"qom-type": F, "size": 4 * MiB, "mem-path": "{dir}/a1", "align": MiB},
    {"qom-type": F, "size": 64 * MiB, "mem-path": "{dir}/small"},
    {"qom-type": F, "size": -1, "mem-path": "{dir}/neg"},
    {"qom-type": F, "size": 1024, "mem-path": "{dir}/tiny"},
    {"qom-type": F, "size": 4 * MiB, "mem-path": "{dir}", "readonly": True},
    {"qom-type": F, "size": 4 * MiB, "mem-path": "{dir}", "share": True},
    {"qom-type": D, "size": 1024},
    {"qom-type": D, "size": -1},
    {"qom-type": D, "size": 4 * MiB, "hugetlbsize": 0},
    {"qom-type": D, "size": 4 * MiB, "hugetlbsize": 3 * MiB},
    {"qom-type": D, "size": 4 * MiB, "hugetlbsize": 3 * MiB, "hugetlb": False},
    {"qom-type": D, "size": 3 * MiB, "hugetlb": True},
]


@pytest.mark.parametrize("arguments", ADD_CASES, ids=lambda a: ",".join(
    f"{k}={v}" for k, v in a.items() if k != "mem-path"))
def test_object_add_matches_qemu(qemu, qemu_dir, tree, tmp_path, arguments):
    (qemu_dir / "small").write_bytes(b"s" * 0x401000)
    (tmp_path / "small").write_bytes(b"s" * 0x401000)
    theirs = _normalize(qemu.execute("object-add", {"id": "x", **_fill(arguments, qemu_dir)}),
                        qemu_dir)
    if "return" in theirs:
        qemu.execute("object-del", {"id": "x"})
    ours = _normalize(_pyqom(object_add, tree, {"id": "x", **_fill(arguments, tmp_path)}),
                      tmp_path)
    assert ours == theirs


SET_CASES = [
    (R, "size", 2 * MiB), (R, "size", "1G"), (R, "share", True), (R, "share", "on"),
    (R, "reserve", False), (R, "merge", False), (R, "dump", False), (R, "prealloc", True),
    (R, "prealloc-threads", 0), (R, "prealloc-threads", 2), (R, "policy", "bind"),
    (R, "host-nodes", [0]), (R, "host-nodes", [200]), (R, "prealloc-context", "nosuch"),
    (F, "align", 8192), (F, "align", "x"), (F, "readonly", True), (F, "pmem", True),
    (F, "mem-path", "/x"), (F, "discard-data", True), (F, "size", 1),
    (D, "hugetlb", True), (D, "hugetlbsize", 2 * MiB), (D, "hugetlbsize", "x"),
    (D, "seal", False), (D, "share", False),
]


@pytest.mark.parametrize(("qom_type", "name", "value"), SET_CASES)
def test_qom_set_after_complete_matches_qemu(qemu, qemu_dir, tree, tmp_path, qom_type, name,
                                              value):
    arguments = {"qom-type": qom_type, "id": "s", "size": 4 * MiB}
    if qom_type == F:
        arguments["mem-path"] = "{dir}/set"
    assert "return" in qemu.execute("object-add", _fill(arguments, qemu_dir))
    object_add(tree, _fill(arguments, tmp_path))
    try:
        theirs = qemu.execute("qom-set", {"path": "/objects/s", "property": name,
                                          "value": value})
        ours = _pyqom(qom_set, tree, "/objects/s", name, value)
        assert _normalize(ours, tmp_path) == _normalize(theirs, qemu_dir)
        value_theirs = qemu.execute("qom-get", {"path": "/objects/s", "property": name})
        assert _normalize({"return": qom_get(tree, "/objects/s", name)}, tmp_path) == \
            _normalize(value_theirs, qemu_dir)
    finally:
        qemu.execute("object-del", {"id": "s"})
        object_del(tree, "s")
