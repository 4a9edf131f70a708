"""Fixtures for comparing pyqom with real QEMU 7.2."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from qemu_oracle import QemuOracle


@pytest.fixture(scope="module")
def qemu() -> Iterator[QemuOracle]:
    """A paused QEMU 7.2 with ``-m 1G,slots=3,maxmem=4G``, shared by a module's steps."""
    oracle = QemuOracle("-m", "1G,slots=3,maxmem=4G")
    yield oracle
    oracle.close()
