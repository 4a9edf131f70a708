"""Backends on a real hugetlbfs mount with 2 MiB pages (the ``hugetlbfs`` fixture)."""

from __future__ import annotations

import os

import pytest
from backend_helpers import error_of, keyval, meminfo, open_fds

from backends import host
from qom import object_add, object_del, qom_list

MiB = 1024 * 1024


def filebackend(tree, path, id="h1", size=4 * MiB, **props):
    return object_add(tree, {"qom-type": "memory-backend-file", "id": id, "size": size,
                             "mem-path": str(path), **props})


def objects(tree):
    return [entry["name"] for entry in qom_list(tree, "/objects")]


def test_file_backend_on_hugetlbfs(hugetlbfs, tree):
    """The seed's use case: a DIMM-sized backend backed by a file on hugetlbfs."""
    path = hugetlbfs.path / "dimm0"
    free = meminfo("HugePages_Free")
    backend = filebackend(tree, path, size=8 * MiB, share=True, prealloc=True)
    memory = backend.host_memory
    assert memory.page_size == 2 * MiB and memory.align == 2 * MiB
    assert memory.address % (2 * MiB) == 0
    assert meminfo("HugePages_Free") == free - 4  # really backed by 4 huge pages
    memory.view[:8] = b"hugepage"
    memory.view[-4:] = b"tail"
    object_del(tree, "h1")
    with open(path, "rb") as f:
        assert f.read(8) == b"hugepage"
    assert path.stat().st_size == 8 * MiB
    os.unlink(path)
    assert meminfo("HugePages_Free") == free


def test_directory_on_hugetlbfs(hugetlbfs, tree):
    fds = open_fds()
    backend = filebackend(tree, hugetlbfs.path, size=4 * MiB)
    assert backend.host_memory.align == 2 * MiB
    assert os.listdir(hugetlbfs.path) == []
    object_del(tree, "h1")
    assert open_fds() == fds


def test_size_rounded_to_huge_pages(hugetlbfs, tree):
    path = hugetlbfs.path / "odd"
    backend = filebackend(tree, path, size=3 * MiB)
    assert backend.host_memory.mapped_size == 4 * MiB
    assert path.stat().st_size == 4 * MiB


@pytest.mark.parametrize(("props", "message"), [
    ("size=1M", "memory size 0x100000 must be equal to or larger than page size 0x200000"),
    ("size=4M,align=1M", "alignment 0x100000 must be multiples of page size 0x200000"),
    ("size=4M,align=3M", "alignment 0x300000 must be multiples of page size 0x200000"),
    ("size=4M,align=6M", "alignment 0x600000 must be a power of two"),
])
def test_alignment_errors_on_hugetlbfs(hugetlbfs, tree, props, message):
    path = hugetlbfs.path / "bad"
    fds = open_fds()
    assert error_of(keyval, tree,
                    f"memory-backend-file,id=h,mem-path={path},{props}") == message
    assert not path.exists() and objects(tree) == ["type"] and open_fds() == fds


def test_larger_align_on_hugetlbfs(hugetlbfs, tree):
    memory = filebackend(tree, hugetlbfs.path / "a", size=4 * MiB, align=4 * MiB).host_memory
    assert memory.align == 4 * MiB and memory.address % (4 * MiB) == 0


def test_not_enough_huge_pages(hugetlbfs, tree):
    path = hugetlbfs.path / "toobig"
    size = (hugetlbfs.pages + meminfo("HugePages_Free") + 8) * 2 * MiB
    message = error_of(filebackend, tree, path, size=size, share=True)
    assert message == "unable to map backing store for guest RAM: Cannot allocate memory"
    assert not path.exists()


def test_memfd_hugetlb(hugetlbfs, tree):
    free = meminfo("HugePages_Free")
    backend = object_add(tree, {"qom-type": "memory-backend-memfd", "id": "m1",
                                "size": 4 * MiB, "hugetlb": True, "hugetlbsize": 2 * MiB,
                                "prealloc": True})
    memory = backend.host_memory
    assert memory.page_size == 2 * MiB and memory.align == 2 * MiB
    assert meminfo("HugePages_Free") == free - 2
    assert host.resident_pages(memory.address, memory.size) == 2 * 512
    object_del(tree, "m1")
    assert meminfo("HugePages_Free") == free


def test_memfd_hugetlb_size_not_huge_aligned(hugetlbfs, tree):
    assert error_of(object_add, tree, {"qom-type": "memory-backend-memfd", "id": "m1",
                                       "size": 3 * MiB, "hugetlb": True}) == \
        "failed to resize memfd to 3145728: Invalid argument"
