"""pyqom's plugin layer: the ``hookimpl`` marker, and nothing else.

Quick start for plugin authors::

    # mydimm/plugin.py
    from plugins import hookimpl
    from qom import TypeInfo

    @hookimpl
    def qom_register_types(registry):
        registry.register(TypeInfo(name="my-dimm", parent="pc-dimm"))

and in your ``pyproject.toml``::

    [project.entry-points.qom]
    mydimm = "mydimm.plugin"

Every hook is specified, with when it runs and what it may do, in
:mod:`plugins.hookspecs`; CONTRIBUTING.md has a worked example.  This module
imports only pluggy, so any module may import it without creating a cycle.
"""

import pluggy

#: Marks a function as the implementation of a ``qom_*`` hook.
hookimpl = pluggy.HookimplMarker("qom")

__all__ = ["hookimpl"]
