"""The composition root: a fresh plugin manager, registry and tree, every time.

Nothing here is module-level state: each call builds new objects, so two
pyqom instances (or two tests) never share plugins, types or objects.

Order of loading (fixed):

1. the hook specifications of :mod:`plugins.hookspecs`;
2. the built-in plugins, :data:`BUILTIN_PLUGINS`, in that order;
3. third-party plugins from the ``qom`` entry-point group, unless
   ``PYQOM_DISABLE_PLUGIN_AUTOLOAD`` is set (or ``autoload=False``);
4. plugin objects passed by the caller;
5. ``qom_add_hookspecs``, then ``check_pending()``, so an implementation of
   a hook that does not exist (a typo) fails here, naming its plugin.

``PYQOM_DISABLED_PLUGINS`` (comma-separated plugin names: a built-in's module
name or an entry point's name) blocks plugins from loading at all.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable, Mapping

import pluggy

from plugins import hookspecs
from qom import ObjectTree, TypeRegistry

#: Project name of the hook markers, and the entry-point group of plugins.
PROJECT_NAME = "qom"
ENTRY_POINT_GROUP = "qom"

#: Built-in plugin modules, registered in this order.
BUILTIN_PLUGINS: tuple[str, ...] = (
    "backends.ram",
    "backends.file",
    "backends.memfd",
    "devices.interfaces",
    "devices.pc_dimm",
    "devices.machine",
    "plugins.memory_hotplug",
    "plugins.guest_memory",
    "plugins.acpi.registers",
    "plugins.acpi.plugin",
)

AUTOLOAD_OFF_ENV = "PYQOM_DISABLE_PLUGIN_AUTOLOAD"
DISABLED_PLUGINS_ENV = "PYQOM_DISABLED_PLUGINS"


def disabled_plugins(environ: Mapping[str, str] | None = None) -> list[str]:
    """Plugin names listed in ``PYQOM_DISABLED_PLUGINS``."""
    env = os.environ if environ is None else environ
    return [name.strip() for name in env.get(DISABLED_PLUGINS_ENV, "").split(",")
            if name.strip()]


def make_plugin_manager(*, autoload: bool | None = None, plugins: Iterable[object] = (),
                        builtins: Iterable[str] = BUILTIN_PLUGINS,
                        environ: Mapping[str, str] | None = None) -> pluggy.PluginManager:
    """A new plugin manager with the hook specs and every enabled plugin.

    :param autoload: load the ``qom`` entry-point group; by default, unless
        ``PYQOM_DISABLE_PLUGIN_AUTOLOAD`` is set.
    :param plugins: extra plugin objects (modules or instances) to register.
    :param builtins: the built-in plugin modules (tests may narrow them).
    :param environ: the environment to read switches from (``os.environ``).
    :raises pluggy.PluginValidationError: a plugin implements an unknown hook
        or has a wrong signature.
    """
    env = os.environ if environ is None else environ
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    blocked = disabled_plugins(env)
    for name in blocked:
        pm.set_blocked(name)
    for module_name in builtins:
        if module_name not in blocked:
            pm.register(importlib.import_module(module_name), name=module_name)
    if autoload is None:
        autoload = not env.get(AUTOLOAD_OFF_ENV)
    if autoload:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    for plugin in plugins:
        pm.register(plugin)
    pm.hook.qom_add_hookspecs.call_historic(kwargs={"pluginmanager": pm})
    pm.check_pending()
    return pm


def make_registry(pm: pluggy.PluginManager) -> TypeRegistry:
    """A registry with the core types and every plugin's types, graph-checked."""
    registry = TypeRegistry()
    pm.hook.qom_register_types.call_historic(kwargs={"registry": registry})
    registry.check()
    return registry


def make_tree(pm: pluggy.PluginManager, registry: TypeRegistry | None = None) -> ObjectTree:
    """A composition tree whose events reach the ``qom_event`` hook."""
    registry = registry if registry is not None else make_registry(pm)
    tree = ObjectTree.create(registry)
    tree.event_sink = lambda name, data: pm.hook.qom_event(tree=tree, name=name, data=data)
    return tree
