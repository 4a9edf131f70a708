"""Monitor commands of the composition root (pyqom additions, issue 14), a
built-in plugin: ``x-query-command-line``, ``x-query-memory-map`` and
``x-query-memory-map-diff``.

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
    from devices.machine import PcMachine

    machine = getattr(control.vm, "machine", None)
    if machine is None:
        raise QomError("the machine is not built yet")
    if not isinstance(machine, PcMachine):
        raise QomError("pyqom's none machine has no memory map or command line to show")
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


def x_query_memory_map_diff(control: MonitorControl, objects: list[Any] | None = None,
                            devices: list[Any] | None = None,
                            filename: str | None = None) -> dict[str, Any]:
    """``x-query-memory-map-diff``: the map now and after a plug plan (``objects``:
    ``object-add`` arguments, ``devices``: ``device_add`` arguments), the after
    state drawn while :func:`devices.plan.plan_plug` has the plan in place on
    the live machine, which it then gives back as it was (nothing allocated).
    A plan the machine refuses is answered with the real command's error.
    Returns ``before`` and ``after`` (regions) and ``svg`` (the two side by
    side, changes marked); with ``filename`` the SVG is also written there."""
    from devices.plan import PlanRequest, plan_plug
    from pyqom.memory_map import MemoryMap, memory_map, render_diff_svg
    from qom import JSON, KEYVAL, qemu_opts_from_qdict
    from qom.errors import DeviceNotFoundError

    machine = _machine(control)
    for name, items in (("objects", objects), ("devices", devices)):
        if not all(isinstance(item, dict) for item in items or ()):
            raise QomError(f"Invalid parameter type for '{name}', expected: array of objects")
    requests = [PlanRequest("object-add", item, JSON) for item in objects or ()]
    requests += [PlanRequest("device_add", qemu_opts_from_qdict(item), KEYVAL)
                 for item in devices or ()]
    before = memory_map(machine)
    drawn: list[MemoryMap] = []
    plan = plan_plug(control.vm.tree, requests,
                     observe=lambda planned: drawn.append(memory_map(planned)))
    if not plan["fits"]:
        refusal = plan["error"]
        raise (DeviceNotFoundError if refusal["class"] == "DeviceNotFound"
               else QomError)(refusal["desc"])
    svg = render_diff_svg(before, drawn[0])
    if filename is not None:
        _write(filename, svg)
    return {"before": before.as_json(), "after": drawn[0].as_json(), "svg": svg}


@hookimpl
def qom_register_monitor_commands(commands: CommandTable) -> None:
    """Register ``x-query-command-line``, ``x-query-memory-map`` and
    ``x-query-memory-map-diff``."""
    commands.register(Command("x-query-command-line", x_query_command_line,
                              (Arg("filename", "str", True),)))
    commands.register(Command("x-query-memory-map", x_query_memory_map,
                              (Arg("filename", "str", True),)))
    commands.register(Command("x-query-memory-map-diff", x_query_memory_map_diff,
                              (Arg("objects", "array", True), Arg("devices", "array", True),
                               Arg("filename", "str", True))))
