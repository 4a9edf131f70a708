"""The order of hooks, pinned (CONTRIBUTING.md, "Start-up and plug, step by step").

Like pluggy's own ``test_method_ordering``: what the docstrings of
``plugins/hookspecs.py`` promise about order is checked here, with the built-in
plugins registered in their usual order and reversed.
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest

import qom
from devices.machine import create_pc_machine, machine_ready, shutdown_machine
from devices.memory_options import memory_config
from plugins import hookimpl
from plugins.acpi.plugin import memory_hotplug_block
from plugins.phases import PLUG_PHASES, UNPLUG_PHASES, HookFailureWarning
from plugins.services import GUEST_MEMORY, services_of
from pyqom.manager import BUILTIN_PLUGINS, make_plugin_manager, make_registry, make_tree

G = 1 << 30


class Probe:
    """Records each phase it sees, and what the machine looked like then."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.mapped_at: dict[str, bool] = {}
        self.slot_enabled_at: dict[str, bool] = {}

    def _note(self, phase: str, machine: Any, device: Any) -> None:
        self.seen.append(phase)
        memory = services_of(machine).get(GUEST_MEMORY)
        self.mapped_at[phase] = any(m.gpa == device.addr for m in memory.mappings())
        block = memory_hotplug_block(machine)
        self.slot_enabled_at[phase] = block is not None and block.slots[device.slot].is_enabled

    @hookimpl
    def qom_memory_device_pre_plug(self, machine: Any, device: Any) -> None:
        # before the machine places the device: no slot or address yet
        self.seen.append(f"memory_pre_plug slot={device.slot} addr={device.addr}")

    @hookimpl
    def qom_device_pre_plug(self, machine: Any, device: Any) -> None:
        self.seen.append("pre_plug")

    @hookimpl
    def qom_device_plug_claim(self, machine: Any, device: Any, undo: Any) -> None:
        self._note("plug_claim", machine, device)

    @hookimpl
    def qom_device_plug_map(self, machine: Any, device: Any, undo: Any) -> None:
        self._note("plug_map", machine, device)

    @hookimpl
    def qom_device_plug_describe(self, machine: Any, device: Any, undo: Any) -> None:
        self._note("plug_describe", machine, device)

    @hookimpl
    def qom_device_plug_announce(self, machine: Any, device: Any, undo: Any) -> None:
        self._note("plug_announce", machine, device)

    @hookimpl
    def qom_device_unplug_describe(self, machine: Any, device: Any) -> None:
        self._note("unplug_describe", machine, device)

    @hookimpl
    def qom_device_unplug_map(self, machine: Any, device: Any) -> None:
        self._note("unplug_map", machine, device)

    @hookimpl
    def qom_device_unplug_claim(self, machine: Any, device: Any) -> None:
        self._note("unplug_claim", machine, device)


@pytest.fixture(params=["registration order", "reversed"])
def builtins(request: pytest.FixtureRequest) -> tuple[str, ...]:
    order = BUILTIN_PLUGINS
    return order if request.param == "registration order" else tuple(reversed(order))


def _machine(builtins: tuple[str, ...], *plugins: object) -> tuple[qom.ObjectTree, Any]:
    pm = make_plugin_manager(autoload=False, builtins=builtins, plugins=plugins)
    tree = make_tree(pm, make_registry(pm))
    machine = create_pc_machine(tree, memory_config("1G,slots=2,maxmem=3G"), hook=pm.hook)
    machine_ready(tree, machine)
    return tree, machine


def test_plug_and_unplug_phases_run_in_the_documented_order(builtins) -> None:
    probe = Probe()
    tree, machine = _machine(builtins, probe)
    qom.object_add(tree, {"qom-type": "memory-backend-ram", "id": "m1", "size": G})
    dimm = qom.device_add(tree, {"driver": "pc-dimm", "id": "d1", "memdev": "m1"})
    assert probe.seen == ["memory_pre_plug slot=-1 addr=0", "pre_plug"] + [
        f"plug_{phase}" for phase in PLUG_PHASES]
    # The address space maps in `map`, ACPI describes in `describe`: whoever
    # registered first, the GPE of `announce` is raised with the DIMM mapped.
    assert probe.mapped_at == {"plug_claim": False, "plug_map": False,
                               "plug_describe": True, "plug_announce": True}
    assert probe.slot_enabled_at["plug_announce"] is True
    assert probe.slot_enabled_at["plug_map"] is False
    probe.seen.clear()
    qom.complete_unplug(dimm)
    assert probe.seen == [f"unplug_{phase}" for phase in UNPLUG_PHASES]
    assert probe.mapped_at["unplug_describe"] is True      # unmapped after describe
    assert probe.mapped_at["unplug_claim"] is False
    assert probe.slot_enabled_at["unplug_map"] is False    # ACPI let go first
    shutdown_machine(machine, "host-qmp-quit")
    tree.root.finalize()


def test_pluggy_calls_one_hooks_implementations_last_registered_first() -> None:
    calls: list[str] = []

    class Named:
        def __init__(self, name: str) -> None:
            self.name = name

        @hookimpl
        def qom_machine_ready(self, machine: Any) -> None:
            calls.append(self.name)

    tree, machine = _machine(BUILTIN_PLUGINS, Named("first"), Named("second"))
    assert calls == ["second", "first"]
    shutdown_machine(machine, "host-qmp-quit")
    tree.root.finalize()


def test_shutdown_runs_every_implementation_even_when_one_raises() -> None:
    ran: list[str] = []

    class Breaks:
        @hookimpl(tryfirst=True)
        def qom_machine_shutdown(self, machine: Any, reason: str) -> None:
            ran.append("breaks")
            raise RuntimeError("boom")

    class After:
        @hookimpl(trylast=True)
        def qom_machine_shutdown(self, machine: Any, reason: str) -> None:
            ran.append("after")

    tree, machine = _machine(BUILTIN_PLUGINS, Breaks(), After())
    space = services_of(machine).get(GUEST_MEMORY)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        shutdown_machine(machine, "host-qmp-quit")
    assert ran == ["breaks", "after"]
    assert space.closed  # type: ignore[attr-defined]  # the engine was released anyway
    assert [str(w.message) for w in caught if w.category is HookFailureWarning] == [
        f"plugin '{Breaks.__qualname__}': qom_machine_shutdown failed: RuntimeError: boom"]
    shutdown_machine(machine, "host-qmp-quit")  # at most once
    assert ran == ["breaks", "after"]
    tree.root.finalize()


def test_plugins_are_told_why_the_machine_ends(monkeypatch) -> None:
    from plugins.monitor import VmControl
    from pyqom import VM, StartupError

    reasons: list[str] = []

    class Told:
        @hookimpl
        def qom_machine_shutdown(self, machine: Any, reason: str) -> None:
            reasons.append(reason)

    vm = VM("128M", plugins=[Told()], autoload=False)
    control = VmControl(vm)
    control.shutdown("host-signal")
    control.close()
    vm.close()
    with pytest.raises(StartupError):
        VM.from_args(["-m", "128M", "-device", "nosuch"], plugins=[Told()], autoload=False)
    assert reasons == ["host-signal", "host-error"]
