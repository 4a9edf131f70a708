"""Monitor commands of the composition root (pyqom additions, issue 14), a
built-in plugin: ``x-query-command-line`` and ``x-query-memory-map``.

They read the live machine through :mod:`pyqom.regenerate` and
:mod:`pyqom.memory_map`, which are imported when a command first runs (the
start-up path does not need them).
"""

from __future__ import annotations

from typing import Any

from plugins import hookimpl
from plugins.commands import Arg, Command, CommandTable, MonitorControl
from qom import QomError


def _machine(control: MonitorControl) -> Any:
    machine = getattr(control.vm, "machine", None)
    if machine is None:
        raise QomError("the machine is not built yet")
    return machine


def _write(filename: str, text: str) -> None:
    try:
        with open(filename, "w", encoding="utf-8") as out:
            out.write(text)
    except OSError as err:
        raise QomError(f"Could not open '{filename}': {err.strerror}") from None


def x_query_command_line(control: MonitorControl,
                         filename: str | None = None) -> dict[str, Any]:
    """``x-query-command-line``: the options that recreate the machine cold
    (``options``, an argv list, and ``command-line``, one shell line); with
    ``filename``, the shell line is also written there."""
    from pyqom.regenerate import command_line_text, regenerate_options

    options = regenerate_options(control.vm.tree, _machine(control))
    text = command_line_text(options)
    if filename is not None:
        _write(filename, text + "\n")
    return {"options": options, "command-line": text}


def x_query_memory_map(control: MonitorControl,
                       filename: str | None = None) -> dict[str, Any]:
    """``x-query-memory-map``: the guest-physical map as ``regions`` (address
    order) and ``svg`` (a picture of it); with ``filename``, the SVG is also
    written there."""
    from pyqom.memory_map import memory_map, render_svg

    layout = memory_map(_machine(control))
    svg = render_svg(layout)
    if filename is not None:
        _write(filename, svg)
    return {"regions": layout.as_json(), "svg": svg}


@hookimpl
def qom_register_monitor_commands(commands: CommandTable) -> None:
    """Register ``x-query-command-line`` and ``x-query-memory-map``."""
    commands.register(Command("x-query-command-line", x_query_command_line,
                              (Arg("filename", "str", True),)))
    commands.register(Command("x-query-memory-map", x_query_memory_map,
                              (Arg("filename", "str", True),)))
