"""memory-backend-file on real files."""

from __future__ import annotations

import os
import stat
import subprocess

import pytest
from backend_helpers import error_of, keyval, open_fds, opts, vm_flags

from backends import host
from qom import object_add, object_del, qom_get, qom_list, qom_set

MiB = 1024 * 1024


def filebackend(tree, path, id="f1", size=4 * MiB, **props):
    return object_add(tree, {"qom-type": "memory-backend-file", "id": id, "size": size,
                             "mem-path": str(path), **props})


def objects(tree):
    return [entry["name"] for entry in qom_list(tree, "/objects")]


def test_mem_path_missing(tree):
    assert error_of(object_add, tree, {"qom-type": "memory-backend-file", "id": "x",
                                       "size": MiB}) == "Parameter 'mem-path' is missing"
    assert error_of(object_add, tree, {"qom-type": "memory-backend-file", "id": "x",
                                       "size": MiB, "mem-path": 5}) == \
        "Invalid parameter type for 'mem-path', expected: string"


def test_missing_directory(tree, tmp_path):
    path = tmp_path / "nonexistent" / "dir" / "file"
    message = f"can't open backing store {path} for guest RAM: No such file or directory"
    assert error_of(opts, tree,
                    f"memory-backend-file,id=fm1,size=256M,mem-path={path}") == message
    assert error_of(filebackend, tree, path) == message
    assert objects(tree) == ["type"]


def test_missing_file_is_created_sized_and_removed_on_delete_only_if_asked(tree, tmp_path):
    path = tmp_path / "guest.ram"
    backend = filebackend(tree, path, size=MiB + 1)
    info = path.stat()
    assert stat.S_IMODE(info.st_mode) == 0o644 & ~_umask()
    assert info.st_size == MiB + 4096  # rounded to the page size
    assert backend.host_memory.fd >= 0 and backend.host_memory.align == 4096
    assert qom_get(tree, "f1", "mem-path") == str(path)
    object_del(tree, "f1")
    assert path.exists()  # QEMU never deletes a file it mapped successfully


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_small_size_gives_a_page_sized_file(tree, tmp_path):
    path = tmp_path / "small"
    filebackend(tree, path, size=1024)
    assert path.stat().st_size == 4096


def test_share_on_writes_reach_the_file(tree, tmp_path):
    path = tmp_path / "shared"
    memory = filebackend(tree, path, share=True).host_memory
    assert memory.shared and "sh" in vm_flags(memory.address)
    memory.view[100:111] = b"guest bytes"
    object_del(tree, "f1")
    assert path.read_bytes()[100:111] == b"guest bytes"


def test_share_off_writes_stay_private(tree, tmp_path):
    path = tmp_path / "private"
    path.write_bytes(b"A" * 4 * MiB)
    memory = filebackend(tree, path, share=False).host_memory
    assert memory.view[0:4] == b"AAAA"  # the file's contents are visible
    memory.view[0:11] = b"guest bytes"
    object_del(tree, "f1")
    assert path.read_bytes() == b"A" * 4 * MiB


def test_directory_mem_path_leaves_no_file(tree, tmp_path):
    directory = tmp_path / "dir"
    directory.mkdir()
    fds = open_fds()
    backend = filebackend(tree, directory, size=8 * MiB, share=True)
    assert os.listdir(directory) == []
    target = os.readlink(f"/proc/self/fd/{backend.host_memory.fd}")
    assert target.startswith(f"{directory}/qemu_back_mem.f1.") and target.endswith("(deleted)")
    backend.host_memory.view[0:3] = b"abc"
    object_del(tree, "f1")
    assert os.listdir(directory) == []
    assert open_fds() == fds


def test_directory_name_with_canonical_path(tree, tmp_path):
    backend = filebackend(tree, tmp_path, **{"x-use-canonical-path-for-ramblock-id": True})
    target = os.readlink(f"/proc/self/fd/{backend.host_memory.fd}")
    assert os.path.basename(target).startswith("qemu_back_mem._objects_f1.")


def test_existing_smaller_file_is_an_error_and_untouched(tree, tmp_path):
    # row 55
    path = tmp_path / "small"
    path.write_bytes(b"x" * 0x401000)
    assert error_of(keyval, tree,
                    f"memory-backend-file,id=h,size=64M,mem-path={path}") == \
        "backing store size 0x401000 does not match 'size' option 0x4000000"
    assert path.read_bytes() == b"x" * 0x401000
    assert objects(tree) == ["type"]


def test_larger_file_is_not_truncated(tree, tmp_path):
    path = tmp_path / "large"
    data = os.urandom(8 * MiB)
    path.write_bytes(data)
    memory = filebackend(tree, path, size=2 * MiB, share=True).host_memory
    assert bytes(memory.view[:16]) == data[:16] and len(memory.view) == 2 * MiB
    object_del(tree, "f1")
    assert path.read_bytes() == data


def test_empty_existing_file_is_grown(tree, tmp_path):
    path = tmp_path / "empty"
    path.touch()
    filebackend(tree, path, size=2 * MiB)
    assert path.stat().st_size == 2 * MiB


@pytest.mark.parametrize(("align", "message"), [
    ("3M", "alignment 0x300000 must be a power of two"),       # row 53
    ("2K", "alignment 0x800 must be multiples of page size 0x1000"),  # row 54
])
def test_align_errors(tree, tmp_path, align, message):
    path = tmp_path / "f"
    assert error_of(keyval, tree,
                    f"memory-backend-file,id=h,size=64M,mem-path={path},align={align}") == message
    assert not path.exists()  # the file it created is unlinked again
    assert objects(tree) == ["type"]


def test_align_larger_than_page(tree, tmp_path):
    memory = filebackend(tree, tmp_path / "f", size=4 * MiB, align=MiB).host_memory
    assert memory.align == MiB and memory.address % MiB == 0


def test_readonly(tree, tmp_path):
    path = tmp_path / "ro"
    path.write_bytes(b"R" * MiB)
    os.chmod(path, 0o444)
    memory = filebackend(tree, path, size=MiB, readonly=True).host_memory
    assert memory.readonly and memory.view.readonly
    assert bytes(memory.view[:3]) == b"RRR"
    assert "wr" not in vm_flags(memory.address)
    with pytest.raises(TypeError):
        memory.view[0] = 0


def test_readonly_on_missing_path_creates_it_as_7_2_does(tree, tmp_path):
    path = tmp_path / "created"
    filebackend(tree, path, size=MiB, readonly=True)
    assert path.stat().st_size == MiB


def test_after_complete_rules(tree, tmp_path):
    filebackend(tree, tmp_path / "f")
    assert error_of(qom_set, tree, "f1", "mem-path", "/tmp/x") == \
        "cannot change property 'mem-path' of memory-backend-file"
    assert error_of(qom_set, tree, "f1", "align", 8192) == \
        "cannot change property 'align' of memory-backend-file"
    assert error_of(qom_set, tree, "f1", "align", "x") == \
        "cannot change property 'align' of memory-backend-file"
    assert error_of(qom_set, tree, "f1", "readonly", True) == \
        "cannot change property 'readonly' of memory-backend-file."
    assert error_of(qom_set, tree, "f1", "pmem", True) == \
        "cannot change property 'pmem' of memory-backend-file."
    assert error_of(qom_set, tree, "f1", "size", 1) == \
        "cannot change property size of memory-backend-file "
    qom_set(tree, "f1", "discard-data", True)
    assert qom_get(tree, "f1", "discard-data") is True


def test_defaults(tree, tmp_path):
    filebackend(tree, tmp_path / "f")
    assert [qom_get(tree, "f1", p) for p in ("align", "discard-data", "pmem", "readonly",
                                             "share")] == [0, False, False, False, False]


def test_discard_data_punches_the_file(tree, tmp_path):
    path = tmp_path / "discard"
    memory = filebackend(tree, path, size=2 * MiB, share=True,
                         **{"discard-data": True}).host_memory
    memory.view[:] = b"\xff" * (2 * MiB)
    object_del(tree, "f1")
    assert path.stat().st_size == 2 * MiB
    assert path.read_bytes() == bytes(2 * MiB)
    assert path.stat().st_blocks == 0


def test_without_discard_data_the_file_keeps_its_data(tree, tmp_path):
    path = tmp_path / "keep"
    filebackend(tree, path, size=2 * MiB, share=True).host_memory.view[:4] = b"keep"
    object_del(tree, "f1")
    assert path.read_bytes()[:4] == b"keep"


def test_pmem_on_a_normal_file_falls_back(tree, tmp_path, caplog):
    memory = filebackend(tree, tmp_path / "pmem", share=True, pmem=True).host_memory
    memory.view[0] = 1
    assert "requesting persistence across crashes" in caplog.text


def test_prealloc_file(tree, tmp_path):
    memory = filebackend(tree, tmp_path / "pre", size=32 * MiB, share=True,
                         prealloc=True).host_memory
    assert host.resident_pages(memory.address, memory.size) == 32 * MiB // 4096


def test_failure_after_create_leaves_nothing(tree, tmp_path):
    path = tmp_path / "f"
    fds = open_fds()
    assert error_of(filebackend, tree, path, "x", MiB, policy="bind") == \
        "host-nodes must be set for policy bind"
    assert objects(tree) == ["type"]
    assert open_fds() == fds
    # QEMU 7.2 would keep the file it created here (it unlinks only when the
    # allocation itself fails); pyqom leaves nothing behind after any failure.
    assert not path.exists()


@pytest.fixture
def readonly_dir(tmp_path):
    """A directory holding ``existing`` (1 MiB of 'E'), bind-mounted read-only."""
    source, target = tmp_path / "src", tmp_path / "ro"
    source.mkdir()
    target.mkdir()
    (source / "existing").write_bytes(b"E" * MiB)
    for command in (["mount", "--bind", str(source), str(target)],
                    ["mount", "-o", "remount,bind,ro", str(target)]):
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            subprocess.run(["umount", str(target)], capture_output=True, check=False)
            pytest.skip(f"cannot make a read-only mount: {result.stderr.strip()}")
    yield target
    subprocess.run(["umount", str(target)], check=True)


def test_unwritable_mem_path(readonly_dir, tree):
    missing, existing = readonly_dir / "missing", readonly_dir / "existing"
    assert error_of(filebackend, tree, missing, size=MiB) == \
        f"can't open backing store {missing} for guest RAM: Read-only file system"
    assert error_of(filebackend, tree, existing, size=MiB) == \
        f"can't open backing store {existing} for guest RAM: Read-only file system"
    assert error_of(filebackend, tree, readonly_dir, size=MiB) == \
        f"can't open backing store {readonly_dir} for guest RAM: Read-only file system"
    assert objects(tree) == ["type"]
    memory = filebackend(tree, existing, size=MiB, readonly=True).host_memory
    assert bytes(memory.view[:2]) == b"EE"


def test_size_minus_one(tree, tmp_path):
    # observed on QEMU 7.2: the page-rounded size wraps to 0
    path = tmp_path / "neg"
    assert error_of(filebackend, tree, path, size=-1) == \
        "memory size 0x0 must be equal to or larger than page size 0x1000"
    assert not path.exists()


def test_readonly_directory_opens_the_directory(tree, tmp_path):
    # observed on QEMU 7.2: open(dir, O_RDONLY) succeeds, then mmap fails
    assert error_of(filebackend, tree, tmp_path, readonly=True) == \
        "unable to map backing store for guest RAM: No such device"


# -- hazards QEMU 7.2 shares, fixed in pyqom (README, "Where pyqom differs") ----------


def test_a_dangling_symlink_is_an_error_not_a_loop(tree, tmp_path):
    link = tmp_path / "ram"
    link.symlink_to(tmp_path / "missing-target")
    assert error_of(filebackend, tree, link) == (
        f"can't open backing store {link} for guest RAM: No such file or directory")
    assert objects(tree) == ["type"] and not (tmp_path / "missing-target").exists()


@pytest.mark.parametrize("readonly", [False, True])
def test_a_fifo_is_refused_without_blocking(tree, tmp_path, readonly):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    fds = open_fds()
    assert error_of(filebackend, tree, fifo, readonly=readonly) == (
        f"can't open backing store {fifo} for guest RAM: "
        "not a regular file, directory or device")
    assert objects(tree) == ["type"] and open_fds() == fds


def test_an_empty_user_file_is_left_empty_when_the_add_fails(tree, tmp_path):
    path = tmp_path / "empty.ram"
    path.write_bytes(b"")
    # host-nodes names a node this host does not have: mbind fails after mapping.
    message = error_of(filebackend, tree, path, **{"host-nodes": [63], "policy": "bind"})
    assert message and path.stat().st_size == 0 and objects(tree) == ["type"]
    filebackend(tree, path)
    assert path.stat().st_size == 4 * MiB
