"""``pyqom -x-check-config`` and ``pyqom.check_config.plan_startup`` (pyqom additions)."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

import qom
from pyqom.check_config import plan_startup, size_text
from pyqom.cli import main
from pyqom.vm import VM

G = 1 << 30


def _run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main([*args, "-x-check-config"], stdout=out, stderr=err)
    return status, out.getvalue(), err.getvalue()


def test_boots() -> None:
    assert _run("-m", "1G,slots=256,maxmem=751G") == (0, (
        "boots: RAM 1G, slots 256, maxmem 751G\n"
        "device memory: 0x100000000, size 0xfb80000000\n"
        "highest address used: 0xfcffffffff (phys-bits limit 0xffffffffff)\n"), "")


def test_does_not_boot_and_says_how_far_it_could_go() -> None:
    assert _run("-m", "1G,slots=256,maxmem=752G") == (1, "", (
        "pyqom: Address space limit 0xffffffffff < 0x1fc3fffffff phys-bits too low (40)\n"
        "pyqom: the largest maxmem that boots with this RAM, slots and CPU: 751G "
        "(0xbbc0000000)\n"))


def test_an_intel_cpu_has_no_amd_hole() -> None:
    args = ("-m", "1G,slots=16,maxmem=1000G")
    assert _run(*args, "-cpu", "qemu64,vendor=GenuineIntel")[0] == 0
    assert _run(*args, "-cpu", "qemu64,vendor=AuthenticAMD")[0] == 1
    assert plan_startup(args[1], cpu_vendor="GenuineIntel").boots
    assert _run(*args, "-cpu", "qemu64,vendor=xyz") == (1, "", (
        "pyqom: can't apply global qemu64-x86_64-cpu.vendor=xyz: "
        "Property '.vendor' doesn't take value 'xyz'\n"))


def test_the_amd_hole_is_reported() -> None:
    status, out, _ = _run("-m", "4G,slots=2,maxmem=1T", "-cpu", "qemu64,phys-bits=48")
    assert status == 0
    assert "RAM above 4 GiB starts at 0x10000000000 (the AMD HyperTransport hole)\n" in out


@pytest.mark.parametrize(("args", "expected"), [
    (("-m", "1G,slots=257,maxmem=2G"), "pyqom: unsupported amount of memory slots: 257\n"
                                       "pyqom: no maxmem boots with this RAM, slots and CPU\n"),
    (("-m", "1G,slots=2"), "pyqom: slots specified but no max-size\n"),
    (("-M", "nosuch"), "pyqom: unsupported machine type\n"
                       "Use -machine help to list supported machines\n"),
])
def test_errors(args: tuple[str, ...], expected: str) -> None:
    assert _run(*args) == (1, "", expected)


def test_no_machine_is_made_and_no_memory_allocated() -> None:
    # 64 GiB of RAM would be mapped by a real start-up; the check takes no time or memory
    result = subprocess.run(
        [sys.executable, "-m", "pyqom", "-m", "64G,slots=4,maxmem=128G",
         "-qmp", "unix:/nonexistent/dir/sock,server=on", "-x-check-config"],
        capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith("boots: RAM 64G, slots 4, maxmem 128G\n")


def test_python_api() -> None:
    plan = plan_startup("1G", slots=256, maxmem="752G")
    assert not plan.boots
    assert str(plan.board.error).endswith("phys-bits too low (40)")
    assert plan.largest_maxmem == 751 * G
    assert plan_startup("1G", slots=256, maxmem="751G").boots
    with pytest.raises(qom.QomError, match=r"^slots specified but no max-size$"):
        plan_startup("1G", slots=2)
    assert VM.plan_startup("1G", slots=256, maxmem="752G").largest_maxmem == 751 * G


def test_size_text() -> None:
    assert [size_text(v) for v in (751 * G, 1 << 40, 4096, 4097, 0)] == [
        "751G", "1T", "4K", "4097B", "0B"]


def test_help_lists_it() -> None:
    out = io.StringIO()
    assert main(["-h"], stdout=out) == 0
    assert "-x-check-config say whether -m, -machine and -cpu would boot" in out.getvalue()
