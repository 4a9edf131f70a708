"""The plugin manager factory: order, switches, and early failure on bad hooks."""

from __future__ import annotations

import pytest

import qom
from plugins import hookimpl
from pyqom.manager import (
    BUILTIN_PLUGINS,
    ESSENTIAL_PLUGINS,
    PluginLoadError,
    disabled_plugins,
    make_plugin_manager,
    make_registry,
    make_tree,
)


class Misspelt:
    @hookimpl
    def qom_register_typez(self, registry):  # the typo is the point
        pass


class Records:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict]] = []

    @hookimpl
    def qom_register_types(self, registry: qom.TypeRegistry) -> None:
        registry.register(qom.TypeInfo(name="records-thing", parent="container"))

    @hookimpl
    def qom_event(self, tree, name, data) -> None:
        self.events.append((name, data))


def test_each_manager_is_new() -> None:
    first = make_plugin_manager(autoload=False)
    second = make_plugin_manager(autoload=False)
    assert first is not second
    first.register(Records())
    assert len(second.get_plugins()) == len(first.get_plugins()) - 1


def test_builtins_registered_in_order() -> None:
    pm = make_plugin_manager(autoload=False)
    names = [name for name, _ in pm.list_name_plugin()]  # registration order
    assert BUILTIN_PLUGINS
    assert [n for n in names if n in BUILTIN_PLUGINS] == list(BUILTIN_PLUGINS)


def test_misspelt_hook_fails_at_start_naming_the_plugin() -> None:
    with pytest.raises(PluginLoadError) as err:
        make_plugin_manager(autoload=False, plugins=[Misspelt()])
    assert str(err.value) == "plugin 'Misspelt': unknown hook 'qom_register_typez'"


class Unprefixed:
    """A marked method without the ``qom_`` prefix: no hook of pyqom's has its name."""

    calls = 0

    @hookimpl
    def register_types(self, registry):
        Unprefixed.calls += 1

    @property
    def qom_broken(self):  # a property is never run while hooks are looked for
        raise AssertionError("looked at")


def test_only_qom_names_are_looked_at_for_hooks() -> None:
    """QomPluginManager skips names without the prefix (the cost of registering);
    such a method is no hook implementation, and nothing fails."""
    pm = make_plugin_manager(autoload=False, plugins=[Unprefixed()])
    assert not hasattr(pm.hook, "register_types")
    make_registry(pm)
    assert Unprefixed.calls == 0


def test_plugin_objects_get_a_name_and_can_be_blocked() -> None:
    pm = make_plugin_manager(autoload=False, plugins=[Misspelt()],
                             environ={"PYQOM_DISABLED_PLUGINS": "Misspelt"})
    assert pm.is_blocked("Misspelt")
    pm = make_plugin_manager(autoload=False, plugins=[Records()])
    assert pm.get_plugin("Records") is not None


def test_disabled_plugins_env() -> None:
    assert disabled_plugins({"PYQOM_DISABLED_PLUGINS": " a, b ,,"}) == ["a", "b"]
    assert disabled_plugins({}) == []


BLOCKABLE = sorted(set(BUILTIN_PLUGINS) - ESSENTIAL_PLUGINS)


@pytest.mark.parametrize("victim", BLOCKABLE)
def test_a_blocked_builtin_is_not_loaded_and_the_machine_still_runs(victim: str,
                                                                    monkeypatch) -> None:
    pm = make_plugin_manager(autoload=False, environ={"PYQOM_DISABLED_PLUGINS": victim})
    assert pm.is_blocked(victim)
    assert victim not in [pm.get_name(p) for p in pm.get_plugins()]
    # A whole machine starts, answers its monitor and shuts down without it.
    monkeypatch.setenv("PYQOM_DISABLED_PLUGINS", victim)
    from plugins.monitor import VmControl
    from pyqom import VM

    with VM("1G", slots=2, maxmem="4G", autoload=False) as vm:
        control = VmControl(vm)
        assert control.execute("query-memory-size-summary")["base-memory"] == 1 << 30
        control.execute("query-memory-devices")
        control.close()


@pytest.mark.parametrize("victim", sorted(ESSENTIAL_PLUGINS))
def test_an_essential_builtin_cannot_be_blocked(victim: str) -> None:
    with pytest.raises(PluginLoadError) as caught:
        make_plugin_manager(autoload=False, environ={"PYQOM_DISABLED_PLUGINS": victim})
    assert str(caught.value) == \
        f"plugin '{victim}': is essential to the machine and cannot be disabled"


def test_without_the_address_space_guest_memory_is_a_one_line_error(monkeypatch) -> None:
    from plugins.services import ServiceUnavailableError
    from pyqom import VM

    monkeypatch.setenv("PYQOM_DISABLED_PLUGINS", "plugins.address_space.plugin")
    with VM("128M", autoload=False) as vm, pytest.raises(ServiceUnavailableError) as caught:
        vm.read(0, 4)
    assert str(caught.value) == ("this machine has no guest-memory service "
                                 "(the plugin that provides it is not loaded)")


def test_registry_gets_plugin_types_and_events_reach_hooks() -> None:
    recorder = Records()
    pm = make_plugin_manager(autoload=False, plugins=[recorder])
    registry = make_registry(pm)
    assert "records-thing" in registry
    tree = make_tree(pm, registry)
    tree.emit("SOMETHING", {"x": 1})
    assert recorder.events == [("SOMETHING", {"x": 1})]


def test_late_plugin_still_registers_types() -> None:
    pm = make_plugin_manager(autoload=False)
    registry = make_registry(pm)
    pm.register(Records())  # historic hook: called for the registry made before
    assert "records-thing" in registry
    assert registry.get_class("records-thing").parent.name == "container"


def test_hook_recorder_sees_calls(plugin_manager, hook_recorder, registry) -> None:
    assert "qom_register_types" in hook_recorder.names()


def test_entry_point_prescan(tmp_path, monkeypatch) -> None:
    # The scan that keeps importlib.metadata out of start-up must see a [qom] group.
    from pyqom.manager import _may_declare_entry_points

    monkeypatch.setattr("sys.path", [str(tmp_path / "missing"), str(tmp_path)])
    other = tmp_path / "other-1.0.dist-info"
    other.mkdir()
    (other / "entry_points.txt").write_text("[console_scripts]\nother = other:main\n")
    (tmp_path / "bare-1.0.egg-info").write_text("Metadata-Version: 2.1\n")  # a file
    assert not _may_declare_entry_points()
    plugin = tmp_path / "Plugin-1.0.EGG-INFO"
    plugin.mkdir()
    (plugin / "entry_points.txt").write_text("[qom]\nplugin = plugin.module\n")
    assert _may_declare_entry_points()
    monkeypatch.setattr("sys.path", [str(tmp_path / "archive.zip")])
    (tmp_path / "archive.zip").write_bytes(b"")
    assert _may_declare_entry_points()  # importlib.metadata looks inside zips
