"""The probe commands on pyqom's own state (tests/conformance/test_libvirt_vs_qemu.py
compares their answers with QEMU 7.2's)."""

from __future__ import annotations

from typing import Any

import pytest

from plugins.monitor import VmControl
from pyqom.vm import VM


@pytest.fixture
def control() -> Any:
    vm = VM.from_args(["-machine", "pc", "-m", "128M", "-chardev", "null,id=n1",
                       "-chardev", "file,id=f1,path=/dev/null", "-uuid",
                       "2ac93e71-214d-4e90-b339-14139fbf0db1"])
    yield VmControl(vm, paused=True)
    vm.close()


def test_machines_come_from_the_registry(control: Any) -> None:
    machines = {entry["name"]: entry for entry in control.execute("query-machines")}
    assert set(machines) == {"pc-i440fx-7.2", "pc-i440fx-5.1", "pc-i440fx-2.1",
                             "pc-i440fx-2.0", "none"}
    assert machines["pc-i440fx-7.2"]["alias"] == "pc"
    assert machines["pc-i440fx-2.1"]["numa-mem-supported"] is True
    assert machines["pc-i440fx-5.1"]["numa-mem-supported"] is False
    assert all(entry["hotpluggable-cpus"] is False for entry in machines.values())


def test_cpu_models_come_from_the_registry(control: Any) -> None:
    assert control.execute("query-cpu-definitions") == [
        {"name": "qemu64", "migration-safe": True, "static": False, "unavailable-features": [],
         "typename": "qemu64-x86_64-cpu", "deprecated": False},
        {"name": "max", "migration-safe": False, "static": False, "unavailable-features": [],
         "typename": "max-x86_64-cpu", "deprecated": False}]


def test_migration_capabilities_honour_events_only(control: Any) -> None:
    assert control.execute("query-migrate-capabilities") == [
        {"state": False, "capability": "events"}]
    control.execute("migrate-set-capabilities",
                    {"capabilities": [{"capability": "events", "state": True},
                                      {"capability": "xbzrle", "state": False}]})
    assert control.execute("query-migrate-capabilities")[0]["state"] is True
    with pytest.raises(Exception, match="does not support the migration capability 'xbzrle'"):
        control.execute("migrate-set-capabilities",
                        {"capabilities": [{"capability": "events", "state": False},
                                          {"capability": "xbzrle", "state": True}]})
    assert control.execute("query-migrate-capabilities")[0]["state"] is True  # unchanged


def test_chardevs_and_uuid(control: Any) -> None:
    assert control.execute("query-chardev") == [
        {"frontend-open": False, "filename": "null", "label": "n1"},
        {"frontend-open": False, "filename": "file", "label": "f1"}]
    assert control.execute("query-uuid") == {"UUID": "2ac93e71-214d-4e90-b339-14139fbf0db1"}


def test_absent_subsystems(control: Any) -> None:
    for command in ("query-block", "query-named-block-nodes", "query-iothreads",
                    "query-tpm-models", "query-tpm-types"):
        assert control.execute(command) == []
    with pytest.raises(Exception, match="No balloon device has been activated"):
        control.execute("query-balloon")
    with pytest.raises(Exception, match="KVM not enabled"):
        control.execute("query-sev-capabilities")


def test_command_line_options_filter(control: Any) -> None:
    assert control.execute("query-command-line-options", {"option": "rtc"}) == [
        {"parameters": [{"name": "clock", "type": "string"},
                        {"name": "base", "type": "string"}], "option": "rtc"}]
    with pytest.raises(Exception, match="invalid option name: sandbox"):
        control.execute("query-command-line-options", {"option": "sandbox"})
