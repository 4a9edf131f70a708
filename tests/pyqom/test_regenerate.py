"""Regenerating a live machine's configuration (pyqom.regenerate, a pyqom addition).

The round trip: a machine after a random sequence of hot-plugs, unplugs (which
guest code ejects) and deletions, its regenerated options, and a fresh pyqom
started from them must answer
``query-memory-devices`` (but for ``hotplugged``: a cold start plugs cold),
``query-memdev`` and carry ACPI tables identical to the live machine's.
tests/conformance/test_regenerate_vs_qemu.py starts real QEMU 7.2 with them.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys

from hypothesis import HealthCheck, example, given, settings
from plug_sequences import FULL, MEMORY, NUMA_LINE, apply, sequences

from plugins.services import ACPI, services_of
from pyqom.regenerate import (
    SECTIONS,
    command_line_text,
    opts_value,
    regenerate_options,
    size_text,
)
from pyqom.vm import VM


def options_of(vm: VM) -> list[str]:
    return regenerate_options(vm.tree, vm.machine)


def cold(devices: list[dict]) -> list[dict]:
    """``query-memory-devices`` with ``hotplugged`` as a cold start reports it."""
    return [{**device, "data": {**device["data"], "hotplugged": False}} for device in devices]


def by_id(entries: list[dict]) -> list[dict]:
    return sorted(entries, key=lambda entry: entry["id"])


def acpi_tables(vm: VM) -> list[tuple[str, bytes]]:
    return services_of(vm.machine).get(ACPI).tables()


def test_size_text_is_exact_and_short():
    assert [size_text(n) for n in (0, 1 << 30, 3 << 29, 4096, 12345, 1 << 40)] == [
        "0", "1G", "1536M", "4K", "12345", "1T"]


def test_commas_in_values_are_doubled():
    assert opts_value("/tmp/a,b,,c") == "/tmp/a,,b,,,,c"


def test_options_of_a_cold_machine():
    args = ["-machine", "pc", "-m", "1G,slots=3,maxmem=4G", "-cpu", "qemu64,phys-bits=42",
            "-object", "memory-backend-ram,id=m1,size=256M,host-nodes=0,policy=bind,merge=off",
            "-object", "memory-backend-memfd,id=spare,size=128M",
            "-device", "pc-dimm,id=d1,memdev=m1,slot=2",
            "-global", "pc-dimm.node=0", "-device", "isa-debug-exit"]
    with VM.from_args(args, autoload=False) as vm:
        assert options_of(vm) == [
            "-machine", "pc-i440fx-7.2", "-cpu", "qemu64,phys-bits=42",
            "-m", "size=1G,slots=3,maxmem=4G", "-global", "pc-dimm.node=0",
            "-object", "memory-backend-ram,id=m1,host-nodes=0,merge=off,policy=bind,"
                       "size=268435456",
            "-object", "memory-backend-memfd,id=spare,size=134217728",   # not plugged
            "-device", "pc-dimm,id=d1,memdev=m1,addr=4294967296,slot=2",  # pinned
            "-device", "isa-debug-exit",
        ]


def test_a_mem_path_with_commas_round_trips(tmp_path):
    odd = tmp_path / "a,b"
    odd.mkdir()
    path = str(odd / "guest,ram")
    args = ["-m", "1G,slots=1,maxmem=2G",
            "-object", f"memory-backend-file,id=f1,size=128M,share=on,mem-path={opts_value(path)}",
            "-device", "pc-dimm,memdev=f1"]
    with VM.from_args(args, autoload=False) as vm:
        options = options_of(vm)
        assert f"mem-path={opts_value(path)}" in options[options.index("-object") + 1]
    with VM.from_args(options, autoload=False) as again:
        assert again.qom_get("/objects/f1", "mem-path") == path
        assert options_of(again) == options


def test_machine_switches():
    args = ["-machine", "pc-i440fx-2.1,max-ram-below-4g=2G", "-m", "3G", "-no-acpi",
            "-global", "PIIX4_PM.memory-hotplug-support=off"]
    with VM.from_args(args, autoload=False) as vm:
        assert options_of(vm) == ["-machine", "pc-i440fx-2.1,max-ram-below-4g=2G,acpi=off",
                                  "-m", "size=3G",
                                  "-global", "PIIX4_PM.memory-hotplug-support=off"]
        with VM.from_args(options_of(vm), autoload=False) as again:
            assert again.machine.below_4g_mem_size == vm.machine.below_4g_mem_size == 2 << 30
            assert not again.machine.acpi and not again.machine.memory_hotplug_support


def test_one_section_per_option_kind():
    """A new option kind (-numa, -smp) is one more function in SECTIONS."""
    def numa(tree, machine):
        return ["-numa", "node,nodeid=0"]

    with VM(1 << 30, autoload=False) as vm:
        assert regenerate_options(vm.tree, vm.machine, (*SECTIONS, numa))[-2:] == [
            "-numa", "node,nodeid=0"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=sequences)
@example(steps=FULL)
def test_round_trip_after_random_plugs(steps):
    with VM.from_args(["-m", MEMORY], autoload=False) as live:
        apply(live, steps)
        options = options_of(live)
        with VM.from_args(options, autoload=False) as again:
            assert again.query_memory_devices() == cold(live.query_memory_devices())
            # in creation order, and -object backends come before pc.ram (QEMU's
            # own order is GLib hash order)
            assert by_id(again.query_memdev()) == by_id(live.query_memdev())
            assert acpi_tables(again) == acpi_tables(live)
            assert options_of(again) == options   # a fixed point
            # and the shell line splits back into the same options
            assert shlex.split(command_line_text(options)) == options


def test_qmp_command_and_file(tmp_path):
    target = tmp_path / "machine.args"
    commands = [
        {"execute": "qmp_capabilities"},
        {"execute": "object-add", "arguments": {"qom-type": "memory-backend-ram", "id": "m1",
                                                "size": 1 << 28}},
        {"execute": "device_add", "arguments": {"driver": "pc-dimm", "id": "d1",
                                                "memdev": "m1"}},
        {"execute": "x-query-command-line", "arguments": {"filename": str(target)}},
        {"execute": "quit"},
    ]
    done = subprocess.run([sys.executable, "-m", "pyqom", "-m", "1G,slots=2,maxmem=4G",
                           "-display", "none", "-nodefaults", "-S", "-qmp", "stdio"],
                          input="".join(json.dumps(c) + "\n" for c in commands),
                          capture_output=True, text=True, timeout=60)
    replies = [json.loads(line) for line in done.stdout.splitlines()]
    answer = replies[4]["return"]
    assert answer["options"] == [
        "-machine", "pc-i440fx-7.2", "-m", "size=1G,slots=2,maxmem=4G",
        "-object", "memory-backend-ram,id=m1,size=268435456",
        "-device", "pc-dimm,id=d1,memdev=m1,addr=4294967296,slot=0"]
    assert answer["command-line"] == command_line_text(answer["options"])
    assert target.read_text() == answer["command-line"] + "\n"
    # the file starts the same machine
    with VM.from_args(shlex.split(target.read_text()), autoload=False) as again:
        assert [device["data"]["addr"] for device in again.query_memory_devices()] == [1 << 32]


def test_qmp_file_error(tmp_path):
    from pyqom_side import PyqomQmp

    from plugins.monitor import VmControl

    with VM(1 << 30, autoload=False) as vm:
        qmp = PyqomQmp(VmControl(vm))
        reply = qmp.execute("x-query-command-line",
                            {"filename": str(tmp_path / "no" / "such")})
        assert reply == {"error": {"class": "GenericError", "desc":
                                   f"Could not open '{tmp_path}/no/such': "
                                   "No such file or directory"}}
        qmp.close()


def numa_state(vm: VM) -> tuple:
    machine = vm.machine
    return (machine.smp, [(slot.apic_id, slot.node_id) for slot in machine.cpu_slots],
            [(node.node_id, node.mem, node.memdev.name_in_parent if node.memdev else None,
              sorted(node.distance.items()), node.initiator, node.has_cpu)
             for node in machine.numa.ordered()],
            {key: (lb.base, lb.entries) for key, lb in machine.numa.hmat_lb.items()})


def test_numa_round_trip():
    """-smp, -numa node/cpu/dist/hmat-lb, hmat=on and node= come back from the state."""
    with VM.from_args(NUMA_LINE, autoload=False) as live:
        options = options_of(live)
        assert "-smp" in options and options.count("-numa") >= 6
        with VM.from_args(options, autoload=False) as again:
            assert numa_state(again) == numa_state(live)
            assert again.query_memory_devices() == live.query_memory_devices()
            assert acpi_tables(again) == acpi_tables(live)
            assert options_of(again) == options


def test_automatic_node_and_memory_backend_round_trip():
    """The node pc makes itself is not written; -machine memory-backend is."""
    line = ["-m", "1G", "-object", "memory-backend-ram,id=pcram,size=1G",
            "-machine", "memory-backend=pcram"]
    with VM.from_args(line, autoload=False) as live:
        options = options_of(live)
        assert "pc-i440fx-7.2,memory-backend=pcram" in options
        with VM.from_args(options, autoload=False) as again:
            assert again.machine.ram_backend.name_in_parent == "pcram"
    with VM.from_args(["-m", "1G,slots=2,maxmem=2G"], autoload=False) as live:
        assert "-numa" not in options_of(live)


def test_nvdimm_and_cpu_vendor_round_trip(tmp_path):
    """nvdimm=on, nvdimm-persistence and -cpu vendor= (which moves the AMD 1 TiB
    hole) come back, so the NVDIMM plugs again where it was."""
    backing = tmp_path / "pm"
    backing.write_bytes(b"")
    line = ["-machine", "pc,nvdimm=on,nvdimm-persistence=cpu", "-m", "1G,slots=2,maxmem=1T",
            "-cpu", "qemu64,phys-bits=42,vendor=GenuineIntel",
            "-object", f"memory-backend-file,id=pm1,size=256M,share=on,mem-path={backing}",
            "-device", "nvdimm,id=nv1,memdev=pm1,label-size=128K"]
    with VM.from_args(line, autoload=False) as live:
        options = options_of(live)
        assert "pc-i440fx-7.2,nvdimm=on,nvdimm-persistence=cpu" in options
        assert "qemu64,phys-bits=42,vendor=GenuineIntel" in options
        with VM.from_args(options, autoload=False) as again:
            assert again.query_memory_devices() == live.query_memory_devices()
            assert acpi_tables(again) == acpi_tables(live)
            assert options_of(again) == options
