"""Fixtures: a fresh VM (``-m 1G,slots=3,maxmem=4G``), its VmControl, and a byte-level QMP session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from plugins.monitor import QmpSession, VmControl
from plugins.vm import VM


@pytest.fixture
def control() -> Iterator[VmControl]:
    vm = VM("1G", slots=3, maxmem="4G", autoload=False)
    ctl = VmControl(vm, clock=lambda: 1700000000.25)
    yield ctl
    ctl.close()
    vm.close()


class Wire:
    """A QMP session fed raw bytes; ``lines()`` returns what it wrote since last time."""

    def __init__(self, control: VmControl) -> None:
        self.out: list[bytes] = []
        self.session = QmpSession(control, self.out.append)
        self.session.start()

    def send(self, data: bytes) -> list[str]:
        self.out.clear()
        self.session.feed(data)
        return [chunk.decode() for chunk in self.out]


@pytest.fixture
def wire(control: VmControl) -> Wire:
    w = Wire(control)
    w.send(b'{"execute": "qmp_capabilities"}\n')
    return w
