"""pyqom's composition root and public Python API.

::

    from pyqom import VM

    with VM("1G", slots=3, maxmem="4G") as vm:
        vm.object_add("memory-backend-ram", "mem1", size=1 << 30)
        vm.device_add("pc-dimm", "dimm1", memdev="mem1")

This package builds everything (plugin manager, registry, tree, machine,
monitors) and is imported by nothing else in pyqom: ``qom``, the contract in
``plugins``, ``devices``, ``backends`` and the built-in plugins never import it.

* :mod:`pyqom.manager` - the factory: a fresh plugin manager, registry and tree;
* :mod:`pyqom.vm` - :class:`VM`, the Python API, and the start-up sequence;
* :mod:`pyqom.command_line` - QEMU's command line, parsed into that sequence;
* :mod:`pyqom.cli` - the ``pyqom`` console script;
* :mod:`pyqom.testing` - the pytest fixture kit for plugin authors.

Names are imported on first use, so ``pyqom --help`` pays only for what it uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyqom.command_line import StartupError
    from pyqom.manager import PluginLoadError, make_plugin_manager
    from pyqom.vm import VM

_EXPORTS = {
    "VM": "pyqom.vm",
    "StartupError": "pyqom.command_line",
    "PluginLoadError": "pyqom.manager",
    "make_plugin_manager": "pyqom.manager",
}

__all__ = ["VM", "PluginLoadError", "StartupError", "make_plugin_manager"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pyqom' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
