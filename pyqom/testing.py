"""A pytest plugin for pyqom and for third-party plugin authors.

Enable it explicitly in a ``conftest.py``::

    pytest_plugins = ["pyqom.testing"]

Fixtures (each test gets fresh ones; nothing is shared between tests):

* ``plugin_manager`` - built-ins only: entry-point autoloading is off, so an
  installed third-party plugin cannot change your results.  Add your own
  plugin with ``plugin_manager.register(myplugin)`` *before* asking for
  ``registry`` or ``tree``, or build a manager with
  :func:`pyqom.manager.make_plugin_manager`.
* ``registry`` - a :class:`qom.TypeRegistry` filled through ``qom_register_types``.
* ``tree`` - a :class:`qom.ObjectTree` on that registry, events routed to the hooks.
* ``hook_recorder`` - a :class:`HookRecorder` on ``plugin_manager``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import attrs
import pluggy
import pytest

from pyqom.manager import make_plugin_manager, make_registry, make_tree
from qom import ObjectTree, TypeRegistry
from qom.reprs import FieldsRepr, FieldsValue


@attrs.frozen(repr=False, eq=False)
class HookCall(FieldsValue):
    """One recorded hook call: its name, keyword arguments and whether it raised."""

    name: str
    kwargs: dict[str, Any]
    raised: BaseException | None = None


@attrs.define(repr=False)
class HookRecorder(FieldsRepr):
    """Records every hook call of a plugin manager (pytest's ``HookRecorder`` idea)."""

    calls: list[HookCall] = attrs.field(factory=list)
    _undo: Any = None

    @classmethod
    def attach(cls, pm: pluggy.PluginManager) -> HookRecorder:
        recorder = cls()
        pending: list[tuple[str, dict[str, Any]]] = []

        def before(hook_name: str, hook_impls: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
            pending.append((hook_name, dict(kwargs)))

        def after(outcome: Any, hook_name: str, hook_impls: Sequence[Any],
                  kwargs: Mapping[str, Any]) -> None:
            name, args = pending.pop()
            recorder.calls.append(HookCall(name, args, outcome.exception))

        recorder._undo = pm.add_hookcall_monitoring(before, after)
        return recorder

    def detach(self) -> None:
        if self._undo is not None:
            self._undo()
            self._undo = None

    def names(self) -> list[str]:
        """Names of the hooks called, in call order."""
        return [call.name for call in self.calls]

    def get_calls(self, name: str) -> list[HookCall]:
        return [call for call in self.calls if call.name == name]

    def clear(self) -> None:
        self.calls.clear()


@pytest.fixture
def plugin_manager() -> pluggy.PluginManager:
    """A fresh plugin manager: built-in plugins only, autoload off."""
    return make_plugin_manager(autoload=False)


@pytest.fixture
def registry(plugin_manager: pluggy.PluginManager) -> TypeRegistry:
    """A fresh registry filled by ``plugin_manager``'s plugins."""
    return make_registry(plugin_manager)


@pytest.fixture
def tree(plugin_manager: pluggy.PluginManager, registry: TypeRegistry) -> Iterator[ObjectTree]:
    """A fresh composition tree; everything left in it is finalized at teardown."""
    tree = make_tree(plugin_manager, registry)
    yield tree
    tree.root.finalize()


@pytest.fixture
def hook_recorder(plugin_manager: pluggy.PluginManager) -> Iterator[HookRecorder]:
    """Records the hook calls of ``plugin_manager`` during the test."""
    recorder = HookRecorder.attach(plugin_manager)
    yield recorder
    recorder.detach()
