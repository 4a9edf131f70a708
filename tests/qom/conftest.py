"""Fixtures of the qom tests: the dummy types arrive through a real plugin."""

from __future__ import annotations

import pluggy
import pytest
from dummy_types import MACHINE, DummyTypesPlugin

import qom
from pyqom.manager import make_plugin_manager


@pytest.fixture
def plugin_manager() -> pluggy.PluginManager:
    """A fresh manager (autoload off) with the dummy types plugin and no built-ins.

    The core tests must not depend on the real backends and devices (written
    in parallel, and free to change): only the dummy types are registered.
    ``registry``, ``tree`` and ``hook_recorder`` of :mod:`pyqom.testing`
    build on this manager.
    """
    pm = make_plugin_manager(autoload=False, builtins=())
    pm.register(DummyTypesPlugin(pm), name="dummy-types")
    return pm


@pytest.fixture
def machine(tree: qom.ObjectTree) -> qom.Object:
    """A dummy machine at ``/machine``, past machine init (devices are hot-plugged)."""
    obj = tree.new(MACHINE)
    tree.attach_machine(obj)
    tree.machine_ready = True
    return obj


@pytest.fixture
def backend(tree: qom.ObjectTree):
    """Factory: ``backend("m1", size=...)`` runs object-add for a dummy-backend."""

    def make(obj_id: str, **props):
        args = {"qom-type": "dummy-backend", "id": obj_id, "size": 1 << 30, **props}
        return qom.object_add(tree, args)

    return make
