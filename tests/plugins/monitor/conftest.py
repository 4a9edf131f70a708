"""Fixtures: a fresh VM (``-m 1G,slots=3,maxmem=4G``), its VmControl, and a byte-level QMP session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from monitor_wire import Wire

from plugins.monitor import VmControl
from pyqom.vm import VM


@pytest.fixture
def control() -> Iterator[VmControl]:
    vm = VM("1G", slots=3, maxmem="4G", autoload=False)
    ctl = VmControl(vm, clock=lambda: 1700000000.25)
    yield ctl
    ctl.close()
    vm.close()


@pytest.fixture
def wire(control: VmControl) -> Wire:
    w = Wire(control)
    w.send(b'{"execute": "qmp_capabilities"}\n')
    return w
