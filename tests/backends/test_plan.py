"""A backend's plan (``plan_complete``): the checks ``complete()`` makes, with the same
errors, and nothing allocated, mapped or left open."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from backend_helpers import open_fds

import qom
from backends.base import MemoryBackend
from qom.user_creatable import attach_object, object_add_options

M, G = 1 << 20, 1 << 30


def _plan(tree: qom.ObjectTree, arguments: dict[str, Any]) -> Any:
    """The planned memory, or the error's text; the object is removed again."""
    try:
        obj = attach_object(tree, object_add_options(tree, arguments))
    except qom.QomError as err:
        return f"error: {err}"
    try:
        assert isinstance(obj, MemoryBackend)
        planned = obj.plan_complete()
        assert obj.host_memory is planned and not obj.inited
        return (planned.size, planned.align, planned.page_size, planned.planned)
    except qom.QomError as err:
        return f"error: {err}"
    finally:
        obj.unparent()


def _real(tree: qom.ObjectTree, arguments: dict[str, Any]) -> Any:
    try:
        obj = qom.object_add(tree, arguments)
    except qom.QomError as err:
        return f"error: {err}"
    assert isinstance(obj, MemoryBackend) and obj.host_memory is not None
    memory = obj.host_memory
    result = (memory.size, memory.align, memory.page_size, True)
    obj.unparent()
    return result


CASES: list[dict[str, Any]] = [
    {"qom-type": "memory-backend-ram", "size": G},
    {"qom-type": "memory-backend-ram", "size": 3 * 4096 + 1},
    {"qom-type": "memory-backend-ram", "size": 1 << 63},
    {"qom-type": "memory-backend-ram", "size": (1 << 64) - 1},
    {"qom-type": "memory-backend-ram", "size": G, "policy": "bind"},
    {"qom-type": "memory-backend-ram", "size": G, "host-nodes": [0]},
    {"qom-type": "memory-backend-ram", "size": G, "share": True, "reserve": False},
    {"qom-type": "memory-backend-memfd", "size": 5 * 4096},
    {"qom-type": "memory-backend-memfd", "size": G, "hugetlb": True, "hugetlbsize": 3 * M},
    {"qom-type": "memory-backend-memfd", "size": G, "seal": False},
    {"qom-type": "memory-backend-file", "size": 0, "mem-path": "@DIR@"},
    {"qom-type": "memory-backend-file", "size": 4 * M, "mem-path": "@DIR@", "align": 3 * 4096},
    {"qom-type": "memory-backend-file", "size": 4 * M, "mem-path": "@DIR@",
     "align": 2 * M},
    {"qom-type": "memory-backend-file", "size": 4 * M, "mem-path": "@DIR@/new",
     "readonly": True},
    {"qom-type": "memory-backend-file", "size": 100, "mem-path": "@DIR@/tiny"},
]


@pytest.mark.parametrize("arguments", CASES, ids=[str(case) for case in CASES])
def test_a_plan_is_what_complete_does(tree: qom.ObjectTree, tmp_path: Path,
                                      arguments: dict[str, Any]) -> None:
    arguments = {"id": "b", **{key: value.replace("@DIR@", str(tmp_path))
                               if isinstance(value, str) else value
                               for key, value in arguments.items()}}
    fds, files = open_fds(), sorted(tmp_path.iterdir())
    planned = _plan(tree, arguments)
    assert (open_fds(), sorted(tmp_path.iterdir())) == (fds, files)
    assert planned == _real(tree, arguments)
