"""Creating and deleting many backends, or failing to create them, leaves nothing behind."""

from __future__ import annotations

import gc
import os

import pytest
from backend_helpers import error_of, mapped_bytes, maps, open_fds

from qom import object_add, object_del, qom_list

MiB = 1024 * 1024
COUNT = 1000


def _arguments(kind, tmp_path, index):
    base = {"id": f"b{index}", "size": MiB}
    if kind == "ram":
        return {"qom-type": "memory-backend-ram", **base}
    if kind == "memfd":
        return {"qom-type": "memory-backend-memfd", **base}
    if kind == "file-dir":
        return {"qom-type": "memory-backend-file", "mem-path": str(tmp_path), "share": True,
                **base}
    return {"qom-type": "memory-backend-file", "mem-path": str(tmp_path / f"f{index}"),
            "discard-data": True, "share": True, **base}


@pytest.mark.parametrize("kind", ["ram", "memfd", "file-dir", "file"])
def test_thousand_backends_leave_no_fd_or_mapping(tree, tmp_path, kind):
    gc.collect()
    fds, lines, size = open_fds(), len(maps()), mapped_bytes()
    addresses = []
    for index in range(COUNT):
        backend = object_add(tree, _arguments(kind, tmp_path, index))
        memory = backend.host_memory
        memory.view[0] = index & 0xFF  # really touch it
        addresses.append(memory.address)
        object_del(tree, f"b{index}")
    gc.collect()
    assert qom_list(tree, "/objects") == [{"name": "type", "type": "string"}]
    assert open_fds() == fds
    # Python's own allocator may map or unmap an arena meanwhile, so allow a
    # little slack; 1,000 leaked backends would be >= 1 GiB and 1,000 lines.
    assert len(maps()) - lines < 16
    assert mapped_bytes() - size < 32 * MiB
    text = "\n".join(maps())
    assert "memfd:memory-backend-memfd" not in text and str(tmp_path) not in text
    if kind == "file-dir":
        assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("arguments", [
    {"qom-type": "memory-backend-file", "size": 64 * MiB, "align": 3 * MiB},
    {"qom-type": "memory-backend-file", "size": 64 * MiB, "policy": "bind"},
    {"qom-type": "memory-backend-file", "size": 64 * MiB, "host-nodes": [1], "policy": "bind"},
    {"qom-type": "memory-backend-file", "size": -1},
    {"qom-type": "memory-backend-ram", "size": 64 * MiB, "host-nodes": [0]},
    {"qom-type": "memory-backend-ram", "size": -1},
    {"qom-type": "memory-backend-memfd", "size": 64 * MiB, "policy": "interleave"},
    {"qom-type": "memory-backend-memfd", "size": 4097},
])
def test_failed_object_add_leaves_nothing(tree, tmp_path, arguments):
    path = tmp_path / "created"
    if arguments["qom-type"] == "memory-backend-file":
        arguments = {**arguments, "mem-path": str(path)}
    gc.collect()
    fds, lines = open_fds(), len(maps())
    for _ in range(20):
        error_of(object_add, tree, {"id": "x", **arguments})
    gc.collect()
    assert qom_list(tree, "/objects") == [{"name": "type", "type": "string"}]
    assert open_fds() == fds
    assert len(maps()) - lines < 8
    assert not path.exists()
    assert os.listdir(tmp_path) == []
