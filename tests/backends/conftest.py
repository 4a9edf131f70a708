"""Fixtures for the backend tests: real mmaps, real files, real hugetlbfs."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
from backend_helpers import HUGEPAGES_WANTED, NR_HUGEPAGES, meminfo


@attrs.frozen
class HugeTlbFs:
    """A mounted hugetlbfs with 2 MiB pages and at least ``pages`` free huge pages."""

    path: Path
    pages: int


@pytest.fixture
def hugetlbfs(tmp_path: Path) -> Iterator[HugeTlbFs]:
    """Reserve 2 MiB huge pages and mount hugetlbfs on a temporary directory.

    Needs root; restores ``nr_hugepages`` and unmounts afterwards.  Ask for
    it *before* ``tree`` (``def test_x(hugetlbfs, tree)``) so that the tree's
    backends are finalized before the unmount.  Skips,
    with the kernel's answer, only if the kernel refuses.
    """
    try:
        old = int(NR_HUGEPAGES.read_text())
        NR_HUGEPAGES.write_text(str(old + HUGEPAGES_WANTED))
    except OSError as err:
        pytest.skip(f"cannot reserve huge pages: {err}")
    try:
        free = meminfo("HugePages_Free")
        if free < HUGEPAGES_WANTED:
            pytest.skip(f"kernel reserved only {free} of {HUGEPAGES_WANTED} huge pages")
        mount_point = tmp_path / "hugetlbfs"
        mount_point.mkdir()
        result = subprocess.run(
            ["mount", "-t", "hugetlbfs", "-o", "pagesize=2M", "none", str(mount_point)],
            capture_output=True, text=True, check=False)
        if result.returncode != 0:
            pytest.skip(f"cannot mount hugetlbfs: {result.stderr.strip()}")
        try:
            yield HugeTlbFs(mount_point, free)
        finally:
            # Request this fixture before ``tree`` so backends are gone by now;
            # a lazy unmount still detaches the mount if something lingers.
            if subprocess.run(["umount", str(mount_point)], check=False).returncode != 0:
                subprocess.run(["umount", "--lazy", str(mount_point)], check=True)
    finally:
        NR_HUGEPAGES.write_text(str(old))
