"""memory-backend-memfd."""

from __future__ import annotations

import fcntl
import os

import pytest
from backend_helpers import error_of, keyval, meminfo, open_fds, vm_flags

from backends import host
from qom import object_add, object_del, qom_get, qom_list, qom_set

MiB = 1024 * 1024


def memfd(tree, id="m1", size=4 * MiB, **props):
    return object_add(tree, {"qom-type": "memory-backend-memfd", "id": id, "size": size,
                             **props})


def objects(tree):
    return [entry["name"] for entry in qom_list(tree, "/objects")]


def test_defaults_share_and_seal(tree):
    backend = memfd(tree)
    assert [qom_get(tree, "m1", p) for p in ("share", "seal", "hugetlb", "hugetlbsize")] == \
        [True, True, False, 0]
    memory = backend.host_memory
    assert memory.shared and "sh" in vm_flags(memory.address)
    assert memory.align == 4096 and memory.page_size == 4096
    assert os.readlink(f"/proc/self/fd/{memory.fd}") == "/memfd:memory-backend-memfd (deleted)"
    seals = fcntl.fcntl(memory.fd, fcntl.F_GET_SEALS)
    assert seals == fcntl.F_SEAL_GROW | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_SEAL
    with pytest.raises(PermissionError):
        os.ftruncate(memory.fd, 8 * MiB)


def test_shared_memory_is_the_file(tree):
    memory = memfd(tree).host_memory
    memory.view[:5] = b"memfd"
    assert os.pread(memory.fd, 5, 0) == b"memfd"


def test_seal_off(tree):
    memory = memfd(tree, seal=False).host_memory
    # Without MFD_ALLOW_SEALING the kernel reports the memfd as sealed against sealing.
    assert fcntl.fcntl(memory.fd, fcntl.F_GET_SEALS) == fcntl.F_SEAL_SEAL
    os.ftruncate(memory.fd, 8 * MiB)


def test_share_off_is_private(tree):
    memory = memfd(tree, share=False).host_memory
    memory.view[:5] = b"priv!"
    assert os.pread(memory.fd, 5, 0) == bytes(5)
    assert "sh" not in vm_flags(memory.address)


@pytest.mark.parametrize("text", [
    "memory-backend-memfd,id=h,size=64M,hugetlbsize=3M",             # row 56
    "memory-backend-memfd,id=h,size=64M,hugetlbsize=3M,hugetlb=off",  # even without hugetlb
    "memory-backend-memfd,id=h,size=64M,hugetlbsize=3M,hugetlb=on",
])
def test_hugetlbsize_power_of_two(tree, text):
    fds = open_fds()
    assert error_of(keyval, tree, text) == "Hugepage size must be a power of 2"
    assert objects(tree) == ["type"] and open_fds() == fds


def test_hugetlbsize_zero(tree):
    assert error_of(memfd, tree, hugetlbsize=0) == \
        "Property 'memory-backend-memfd.hugetlbsize' doesn't take value '0'"


def test_hugetlbsize_without_hugetlb_is_ignored(tree):
    assert memfd(tree, hugetlbsize=2 * MiB).host_memory.page_size == 4096


def test_after_complete(tree):
    memfd(tree)
    qom_set(tree, "m1", "hugetlb", True)  # real QEMU 7.2 accepts it (and ignores it)
    assert error_of(qom_set, tree, "m1", "hugetlbsize", 2 * MiB) == \
        "cannot change property value"
    assert error_of(qom_set, tree, "m1", "hugetlbsize", "x") == "cannot change property value"
    assert error_of(qom_set, tree, "m1", "share", False) == "cannot change property value"
    assert error_of(qom_set, tree, "m1", "size", 1) == \
        "cannot change property size of memory-backend-memfd "
    qom_set(tree, "m1", "seal", False)
    assert qom_get(tree, "m1", "seal") is False


def test_size_not_a_page_multiple(tree):
    # 7.2 sizes the memfd to `size`, then maps it like a file rounded to the page.
    assert error_of(memfd, tree, "x", 1024) == \
        "backing store size 0x400 does not match 'size' option 0x1000"
    assert objects(tree) == ["type"]


def test_size_minus_one(tree):
    fds = open_fds()
    assert error_of(memfd, tree, "x", -1) == \
        "failed to resize memfd to 18446744073709551615: Invalid argument"
    assert open_fds() == fds


def test_hugetlb_without_huge_pages(tree):
    if meminfo("HugePages_Free") != 0:
        pytest.skip("huge pages are reserved on this host right now")
    fds = open_fds()
    assert error_of(memfd, tree, hugetlb=True, hugetlbsize=2 * MiB) == \
        "unable to map backing store for guest RAM: Cannot allocate memory"
    assert open_fds() == fds and objects(tree) == ["type"]


def test_prealloc_memfd(tree):
    memory = memfd(tree, size=16 * MiB, prealloc=True).host_memory
    assert host.resident_pages(memory.address, memory.size) == 16 * MiB // 4096


def test_delete_closes_the_memfd(tree):
    fds = open_fds()
    memfd(tree)
    assert len(open_fds()) == len(fds) + 1
    object_del(tree, "m1")
    assert open_fds() == fds


def test_own_properties_carry_qemu_descriptions(tree):
    from qom import qom_list_properties

    described = {entry["name"]: entry.get("description")
                 for entry in qom_list_properties(tree, "memory-backend-memfd")}
    assert described["seal"] == "Seal growing & shrinking"
    if "hugetlb" in described:  # only where MFD_HUGETLB works, as in QEMU
        assert described["hugetlb"] == "Use huge pages"
        assert described["hugetlbsize"] == "Huge pages size (ex: 2M, 1G)"
