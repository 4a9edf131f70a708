"""``python -m pyqom.guest.demo`` (the README's main job): the whole hotplug round trip
with a running guest, and the same lines on real QEMU 7.2 (``--qemu``)."""

from __future__ import annotations

import io
import re
import shutil

import pytest

from pyqom.guest import demo


def _normalised(text: str) -> list[str]:
    """Lines with what differs by nature blanked: timestamps, the version package,
    the program and the scratch directory of the command line."""
    lines = []
    for line in text.splitlines():
        if line.startswith("$ "):
            line = "$ " + line.split(" -machine ", 1)[1]
            line = re.sub(r"/tmp/pyqom-demo-[^/]+/", "TMP/", line)
        line = re.sub(r'"seconds": \d+, "microseconds": \d+', "TIME", line)
        line = re.sub(r'"package": "[^"]*"', '"package": ""', line)
        lines.append(line)
    return lines


def test_the_demo_plugs_onlines_unplugs_and_ejects() -> None:
    out = io.StringIO()
    assert demo.run(demo.pyqom_program(), out) == 0
    text = out.getvalue()
    assert '"event": "ACPI_DEVICE_OST"' in text and '"event": "DEVICE_DELETED"' in text
    assert "online slot 0\n" in text and text.endswith("ejected slot 0\n")
    assert text.count('<- {"return": []}') == 1       # query-memory-devices after the eject


def test_the_demo_says_on_pyqom_what_it_says_on_qemu() -> None:
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("qemu-system-x86_64 not installed (Debian: qemu-system-x86); CI installs it")
    mine, theirs = io.StringIO(), io.StringIO()
    assert demo.run(demo.pyqom_program(), mine) == 0
    assert demo.run(["qemu-system-x86_64"], theirs) == 0
    assert _normalised(mine.getvalue()) == _normalised(theirs.getvalue())
