"""Fixtures for the ACPI table tests: iasl, and the tables real QEMU 7.2 built.

The QEMU tables live in ``data/<config>/<SIG>.dat`` (``data/dump_qemu_tables.py``
regenerates them from a real QEMU run); :data:`CONFIGS` maps each directory to
its ``-m`` argument.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from plugins.vm import VM

DATA = Path(__file__).parent / "data"
CONFIGS = {
    "m1G-slots3-maxmem4G": "1G,slots=3,maxmem=4G",
    "m5G-slots2-maxmem8G": "5G,slots=2,maxmem=8G",
    "m1G": "1G",
}


def qemu_tables(config: str) -> dict[str, bytes]:
    """The tables QEMU 7.2 installed for ``config``, by signature."""
    return {path.stem: path.read_bytes() for path in (DATA / config).glob("*.dat")}


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


def normalise(dsl: str) -> str:
    """Drop iasl's header comment (dates, checksums) and trailing spaces."""
    text = re.sub(r"\A\s*/\*.*?\*/\s*", "", dsl, count=1, flags=re.S)
    return "\n".join(line.rstrip() for line in text.splitlines()).strip() + "\n"


def memory_hotplug_part(dsl: str) -> str:
    """The memory-hotplug AML of a DSDT disassembly: ``\\_SB.PCI0.MHPD`` to ``\\_GPE._E03``.

    Resource-tag names iasl invents (``_Y01``) count templates from the top of
    the whole table, so they are renumbered from 0 within the part.
    """
    lines = dsl.splitlines()
    start = lines.index("    Device (\\_SB.PCI0.MHPD)")
    handler = next(i for i, line in enumerate(lines)
                   if line.startswith("    Method (\\_GPE._E03,"))
    end = lines.index("    }", handler)
    part = "\n".join(lines[start:end + 1]) + "\n"
    tags: dict[str, str] = {}
    return re.sub(r"_Y[0-9A-F]{2}",
                  lambda m: tags.setdefault(m[0], f"_Y{len(tags):02X}"), part)
