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
name or an entry point's name) blocks plugins from loading at all, except the
:data:`ESSENTIAL_PLUGINS`.  A machine whose address-space or ACPI plugin is
blocked runs without guest memory or ACPI; what needs them says so in one
line (:class:`plugins.services.ServiceUnavailableError`).
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterable, Mapping
from typing import Any

import pluggy

from plugins import hookspecs
from qom import ObjectTree, QomError, TypeRegistry

#: Project name of the hook markers, and the entry-point group of plugins.
PROJECT_NAME = "qom"
ENTRY_POINT_GROUP = "qom"

#: Built-in plugin modules, registered in this order.  Their order does not
#: matter: plugins cooperate through hook phases and services, not through
#: registration order (tests/plugins/test_hook_order.py checks both orders).
BUILTIN_PLUGINS: tuple[str, ...] = (
    "backends.ram",
    "backends.file",
    "backends.memfd",
    "backends.thread_context",
    "backends.rng",
    "backends.secret",
    "devices.pc_dimm",
    "devices.isa_debug",
    "devices.i8259",
    "devices.cpu",
    "devices.machine",
    "devices.none_machine",
    "devices.accel",
    "plugins.address_space.plugin",
    "plugins.acpi.plugin",
    "pyqom.additions",
    "plugins.nvdimm.plugin",
)

#: Plugins no machine can do without (the pc machine types and their CPUs, the
#: RAM backend of ``pc.ram``, and the VM's chardevs): blocking one is a :class:`PluginLoadError`.
ESSENTIAL_PLUGINS: frozenset[str] = frozenset({"backends.ram", "devices.cpu",
                                               "devices.machine", "pyqom.chardevs"})

AUTOLOAD_OFF_ENV = "PYQOM_DISABLE_PLUGIN_AUTOLOAD"
DISABLED_PLUGINS_ENV = "PYQOM_DISABLED_PLUGINS"


class PluginLoadError(QomError):
    """A plugin that cannot be used: it fails to import, implements a hook that
    does not exist, or has a wrong signature.  The message names the plugin, on
    one line (``pyqom`` prints it as ``pyqom: <message>`` and exits 1).

    :ivar plugin_name: the plugin's name (entry point, module or object name).
    """

    def __init__(self, plugin_name: str, message: str) -> None:
        super().__init__(f"plugin '{plugin_name}': {message}")
        self.plugin_name = plugin_name


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    """pluggy's ``load_setuptools_entrypoints``, with a :class:`PluginLoadError`
    naming the entry point when one fails to import."""
    if not _may_declare_entry_points():
        return
    import importlib.metadata  # about 10 ms to import: only when a [qom] group may exist

    for dist in importlib.metadata.distributions():
        for entry_point in dist.entry_points:
            if (entry_point.group != ENTRY_POINT_GROUP or pm.get_plugin(entry_point.name)
                    or pm.is_blocked(entry_point.name)):
                continue
            try:
                plugin = entry_point.load()
            except Exception as err:
                raise PluginLoadError(
                    entry_point.name,
                    f"cannot load {entry_point.value}: {_one_line(err)}") from err
            _register(pm, plugin, entry_point.name)


def _may_declare_entry_points() -> bool:
    """False only when no distribution on ``sys.path`` can declare a ``qom`` group.

    A cheap scan (well under 1 ms) of the ``*.dist-info`` and ``*.egg-info``
    directories' ``entry_points.txt`` for ``[qom]``, so the common case never
    imports :mod:`importlib.metadata`.  Whatever the scan cannot see (a zip or
    ``.egg`` path entry, a meta-path finder of its own that finds
    distributions) answers True, and :mod:`importlib.metadata` decides.
    """
    for finder in sys.meta_path:
        if (getattr(finder, "find_distributions", None) is not None
                and getattr(finder, "__module__", None) != "_frozen_importlib_external"):
            return True
    for entry in sys.path:
        if not isinstance(entry, str) or entry.lower().endswith(".egg"):
            return True
        try:
            listing = os.scandir(entry or ".")
        except NotADirectoryError:
            return True  # a zip archive
        except OSError:
            continue  # missing or unreadable: importlib.metadata skips it too
        with listing:
            for item in listing:
                if not item.name.lower().endswith((".dist-info", ".egg-info")):
                    continue
                try:
                    with open(os.path.join(item.path, "entry_points.txt"), "rb") as text:
                        if b"[qom]" in text.read():
                            return True
                except OSError:
                    continue  # no entry points (or an .egg-info file)
    return False


#: every hook's name starts with this (``plugins.hookspecs``)
HOOK_PREFIX = "qom_"


class QomPluginManager(pluggy.PluginManager):
    """pluggy's manager, looking for hook implementations only among a plugin's
    ``qom_*`` names (as pytest looks only at ``pytest_*``).

    pluggy otherwise inspects every attribute of every plugin module as it is
    registered, which was the larger part of building a VM's manager; a
    ``@hookimpl`` function whose name lacks the prefix is no hook either way
    (its name names no spec), so nothing that could be a hook is skipped, and a
    misspelt ``qom_`` name still fails ``check_pending``.
    """

    def parse_hookimpl_opts(self, plugin: Any, name: str) -> Any:
        if not name.startswith(HOOK_PREFIX):
            return None
        return super().parse_hookimpl_opts(plugin, name)


def plugin_name(pm: pluggy.PluginManager, plugin: object) -> str:
    """The name a plugin object registers under: its module's or class's name, so a
    message can name it and ``PYQOM_DISABLED_PLUGINS`` can block it (the canonical
    id only when that name is taken)."""
    name = getattr(plugin, "__name__", None) or type(plugin).__qualname__
    return name if pm.get_plugin(name) is None else pm.get_canonical_name(plugin)


def _register(pm: pluggy.PluginManager, plugin: object, name: str | None) -> None:
    name = name or plugin_name(pm, plugin)
    if pm.is_blocked(name):
        return
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as err:
        raise PluginLoadError(name, _one_line_validation(err)) from err


def _one_line_validation(err: pluggy.PluginValidationError) -> str:
    return " ".join(str(err).split())


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
    :raises PluginLoadError: a plugin fails to import, implements an unknown
        hook or has a wrong signature (the message names it).
    """
    env = os.environ if environ is None else environ
    pm = QomPluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    blocked = disabled_plugins(env)
    for name in blocked:
        if name in ESSENTIAL_PLUGINS:
            raise PluginLoadError(name, "is essential to the machine and cannot be disabled")
        pm.set_blocked(name)
    for module_name in builtins:
        if module_name not in blocked:
            pm.register(importlib.import_module(module_name), name=module_name)
    if autoload is None:
        autoload = not env.get(AUTOLOAD_OFF_ENV)
    if autoload:
        _load_entry_points(pm)
    for plugin in plugins:
        _register(pm, plugin, None)
    pm.hook.qom_add_hookspecs.call_historic(kwargs={"pluginmanager": pm})
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as err:
        name = pm.get_name(err.plugin) or pm.get_canonical_name(err.plugin)
        hook = next((hook for hook in dir(err.plugin) if f"'{hook}'" in str(err)), None)
        raise PluginLoadError(name, f"unknown hook '{hook}'" if hook
                              else _one_line_validation(err)) from err
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
