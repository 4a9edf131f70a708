"""The command table without sockets: declared arguments, QEMU's messages, events."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

import qom
from plugins.commands import CommandNotFoundError
from plugins.monitor import Arg, Command, CommandTable, VmControl
from plugins.monitor.commands import PYQOM_VERSION


def _error(control: VmControl, name: str, arguments: dict[str, Any] | None = None) -> str:
    with pytest.raises(qom.QomError) as err:
        control.execute(name, arguments)
    return f"{err.value.error_class}: {err.value}"


@pytest.mark.parametrize(("name", "arguments", "expected"), [
    # Each recorded from QEMU 7.2 (notes sections 5-9 and the monitor probes).
    ("object-del", {}, "GenericError: Parameter 'id' is missing"),
    ("object-del", {"id": 1}, "GenericError: Invalid parameter type for 'id', expected: string"),
    ("object-del", {"id": 1, "foo": 2},
     "GenericError: Invalid parameter type for 'id', expected: string"),
    ("object-del", {"id": "nosuch"}, "GenericError: object 'nosuch' not found"),
    ("object-del", {"id": "pc.ram"},
     "GenericError: object 'pc.ram' is in use, can not be deleted"),
    ("qom-list", {"path": None}, "GenericError: Invalid parameter type for 'path', expected: string"),
    ("qom-get", {"path": "/objects/pc.ram"}, "GenericError: Parameter 'property' is missing"),
    ("qom-get", {"path": "/nosuch", "property": "x"}, "DeviceNotFound: Device '/nosuch' not found"),
    ("qom-set", {"path": "/objects/pc.ram", "property": "merge"},
     "GenericError: Parameter 'value' is missing"),
    ("query-status", {"x": 1}, "GenericError: Parameter 'x' is unexpected"),
    ("device_add", {}, "GenericError: Parameter 'driver' is missing"),
    ("device_add", {"driver": "help"}, "GenericError: 'help' is not a valid device model name"),
    ("device_add", {"driver": "pc-dimm", "id": "1d", "memdev": "m2"},
     "GenericError: Parameter 'id' expects an identifier"),
    ("device_del", {"id": "nosuch"}, "DeviceNotFound: Device 'nosuch' not found"),
    ("device_del", {"id": ""}, "GenericError:  is not a hotpluggable device"),
    ("human-monitor-command", {}, "GenericError: Parameter 'command-line' is missing"),
    ("human-monitor-command", {"command-line": "info status", "cpu-index": 5},
     "GenericError: Parameter 'cpu-index' expects a CPU number"),
    ("nosuch", {}, "CommandNotFound: The command nosuch has not been found"),
])
def test_errors(control: VmControl, name: str, arguments: dict[str, Any], expected: str) -> None:
    assert _error(control, name, arguments) == expected


def test_arguments_are_checked_before_side_effects(control: VmControl) -> None:
    calls: list[str] = []
    control.commands.register(Command("x-probe", lambda ctl, **kw: calls.append("ran"),
                                      (Arg("a", "int"), Arg("b", "bool", True))))
    assert _error(control, "x-probe", {"a": "1"}) == \
        "GenericError: Invalid parameter type for 'a', expected: integer"
    assert _error(control, "x-probe", {"a": 1, "b": 1}) == \
        "GenericError: Invalid parameter type for 'b', expected: boolean"
    assert _error(control, "x-probe", {"a": 1, "zz": 1}) == \
        "GenericError: Parameter 'zz' is unexpected"
    assert calls == []
    control.execute("x-probe", {"a": 1})
    assert calls == ["ran"]


def test_names_cannot_be_registered_twice() -> None:
    table = CommandTable()
    table.register(Command("x", lambda ctl: None))
    with pytest.raises(ValueError):
        table.register(Command("x", lambda ctl: None))


def test_hotplug_round(control: VmControl) -> None:
    control.execute("object-add", {"qom-type": "memory-backend-ram", "id": "m1",
                                   "size": 1 << 30})
    control.execute("device_add", {"driver": "pc-dimm", "id": "d1", "memdev": "m1",
                                   "slot": "1"})
    [device] = control.execute("query-memory-devices")
    assert device == {"type": "dimm", "data": {
        "id": "d1", "addr": 1 << 32, "size": 1 << 30, "slot": 1, "node": 0,
        "memdev": "/objects/m1", "hotplugged": True, "hotpluggable": True}}
    assert control.execute("query-memory-size-summary") == {
        "base-memory": 1 << 30, "plugged-memory": 1 << 30}
    assert control.execute("query-acpi-ospm-status") == [
        {"slot": "0", "slot-type": "DIMM", "source": 0, "status": 0},
        {"device": "d1", "slot": "1", "slot-type": "DIMM", "source": 0, "status": 0},
        {"slot": "2", "slot-type": "DIMM", "source": 0, "status": 0}]
    assert {m["id"] for m in control.execute("query-memdev")} == {"m1", "pc.ram"}
    assert _error(control, "object-del", {"id": "m1"}) == \
        "GenericError: object 'm1' is in use, can not be deleted"
    control.execute("device_del", {"id": "d1"})
    assert len(control.execute("query-memory-devices")) == 1  # the guest has not ejected


def test_ospm_status_without_the_acpi_plugin_is_qemus_no_acpi_error() -> None:
    from pyqom import VM

    with VM("1G", slots=2, maxmem="4G",
            autoload=False) as vm, pytest.MonkeyPatch.context() as patch:
        patch.setattr(vm, "machine", vm.machine)
        from plugins.services import ACPI, services_of

        services_of(vm.machine).withdraw(ACPI)
        control = VmControl(vm)
        assert _error(control, "query-acpi-ospm-status") == \
            "GenericError: command is not supported, missing ACPI device"
        control.close()


def test_runstate_and_events(control: VmControl) -> None:
    events: list[dict[str, Any]] = []
    control.add_listener(events.append)
    assert control.execute("query-status") == {"running": False, "singlestep": False,
                                               "status": "prelaunch"}
    control.execute("stop")
    assert events == [] and control.status == "prelaunch"
    control.execute("cont")
    control.execute("cont")
    assert control.execute("query-status")["status"] == "running"
    control.execute("stop")
    assert [e["event"] for e in events] == ["RESUME", "STOP"]
    assert events[0]["timestamp"] == {"seconds": 1700000000, "microseconds": 250000}
    assert "data" not in events[0]
    control.execute("quit")
    assert events[-1]["data"] == {"guest": False, "reason": "host-qmp-quit"}


def test_query_commands_and_version(control: VmControl) -> None:
    names = [c["name"] for c in control.execute("query-commands")]
    for name in ("qmp_capabilities", "device_add", "query-acpi-ospm-status",
                 "human-monitor-command", "qom-list-types"):
        assert name in names
    version = control.execute("query-version")
    assert version["qemu"] == {"major": 7, "minor": 2, "micro": 22}
    assert version["package"] == f"pyqom {PYQOM_VERSION}"


def test_version_constant_matches_pyproject() -> None:
    # PYQOM_VERSION stands in for an importlib.metadata lookup: keep it in step.
    pyproject = Path(__file__).resolve().parents[3] / "pyproject.toml"
    with pyproject.open("rb") as file:
        assert tomllib.load(file)["project"]["version"] == PYQOM_VERSION


def test_capabilities_command_after_negotiation(control: VmControl) -> None:
    with pytest.raises(CommandNotFoundError, match="already complete"):
        control.execute("qmp_capabilities")


def test_plugin_hook_adds_commands() -> None:
    from plugins import hookimpl
    from pyqom.vm import VM

    class Plugin:
        @hookimpl
        def qom_register_monitor_commands(self, commands: CommandTable) -> None:
            commands.register(Command("x-answer", lambda ctl: 42))

    vm = VM("1G", plugins=[Plugin()], autoload=False)
    try:
        assert VmControl(vm).execute("x-answer") == 42
    finally:
        vm.close()


def test_the_run_state_lives_on_the_vm_and_every_monitor_sees_it() -> None:
    from pyqom import VM

    with VM("128M", autoload=False) as vm:
        assert vm.status == "running"               # the Python API starts the VM
        first, second = VmControl(vm, paused=None), VmControl(vm, paused=None)
        first.execute("stop")
        assert vm.status == "paused"
        assert second.execute("query-status")["status"] == "paused"
        second.execute("cont")
        assert first.status == vm.status == "running"
        first.close()
        second.close()
