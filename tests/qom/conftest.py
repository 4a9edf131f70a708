"""Fixtures of the qom tests: the dummy types arrive through a real plugin."""

from __future__ import annotations

import pluggy
import pytest

import qom
from tests.qom.dummy_types import MACHINE, DummyTypesPlugin


@pytest.fixture
def plugin_manager(plugin_manager: pluggy.PluginManager) -> pluggy.PluginManager:
    """The plugins.testing manager plus the dummy types plugin."""
    plugin_manager.register(DummyTypesPlugin(plugin_manager), name="dummy-types")
    return plugin_manager


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
