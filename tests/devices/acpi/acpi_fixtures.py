"""Fixtures for the ACPI table tests: iasl, and the tables real QEMU 7.2 built.

The cached QEMU tables and the comparison helpers are in :mod:`acpi_testdata`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from acpi_testdata import CONFIGS, normalise

from pyqom.vm import VM


@pytest.fixture(params=sorted(CONFIGS))
def config(request: pytest.FixtureRequest) -> str:
    """Each cached QEMU configuration in turn."""
    return request.param


@pytest.fixture
def vm_for() -> Iterator[Callable[[str], VM]]:
    """Make a pyqom VM from an ``-m`` argument; closed at teardown."""
    made: list[VM] = []

    def make(memory: str) -> VM:
        vm = VM.from_args(["-m", memory], autoload=False)
        made.append(vm)
        return vm

    yield make
    for vm in made:
        vm.close()


@pytest.fixture(scope="session")
def iasl() -> str:
    """The iasl binary, or skip."""
    path = shutil.which("iasl")
    if path is None:
        pytest.skip("iasl not installed (Debian: apt-get install acpica-tools); CI installs it")
    return path


@pytest.fixture
def disassemble(iasl: str, tmp_path: Path) -> Callable[..., str]:
    """Disassemble a table with ``iasl -d``; fail on any error or warning.

    Returns the ``.dsl`` text with iasl's leading header comment (tool
    version, date, checksum) removed.
    """
    count = 0

    def run(data: bytes, signature: str = "DSDT") -> str:
        nonlocal count
        count += 1
        path = tmp_path / f"{signature}{count}.dat"
        path.write_bytes(data)
        done = subprocess.run([iasl, "-d", str(path)], capture_output=True, text=True,
                              cwd=tmp_path)
        output = done.stdout + done.stderr
        assert done.returncode == 0, output
        assert not re.search(r"\b(Error|Warning)\b", output), output
        text = path.with_suffix(".dsl").read_text()
        return normalise(text)

    return run
