"""devices.numa: -numa options applied to a machine's nodes, and board init.

The start-up lines against real QEMU 7.2 are in tests/conformance/test_numa_vs_qemu.py;
these pin the pieces: the opts visitor, CPU placement, distances, the machine's RAM.
"""

from __future__ import annotations

import pytest

from devices.numa import (
    NumaOptionError,
    NumaState,
    apply_numa_option,
    complete_configuration,
    complete_distances,
    finish_cpu_init,
    parse_numa_option,
)
from devices.topology import SmpConfig, parse_smp, possible_cpus
from pyqom.vm import VM
from qom import QomError

GiB = 1 << 30


def apply(state: NumaState, *texts: str, cpus: int = 4, warnings: list[str] | None = None):
    slots = possible_cpus(parse_smp({"cpus": cpus, "sockets": 2}, prefer_sockets=False,
                                    machine_name="pc", max_cpus_supported=255,
                                    warn=lambda text: None))
    for text in texts:
        apply_numa_option(state, parse_numa_option(text), slots=slots,
                          resolve_backend=lambda path: None, numa_mem_supported=True,
                          warn=(warnings.append if warnings is not None
                                else lambda text: None))
    return slots


def test_nodes_take_the_next_id_and_their_cpus():
    state = NumaState()
    slots = apply(state, "node,mem=1G,cpus=0-1", "node,mem=1G,cpus=2,cpus=3")
    assert [(node.node_id, node.mem) for node in state.ordered()] == [(0, GiB), (1, GiB)]
    assert [slot.node_id for slot in slots] == [0, 0, 1, 1]


def test_a_bare_mem_number_is_mib_and_deprecated():
    state, warnings = NumaState(), []
    apply(state, "node,mem=512", warnings=warnings)
    assert state.nodes[0].mem == 512 << 20
    assert warnings == ["-numa node,mem=512: warning: Parameter -numa node,mem is deprecated, "
                        "use -numa node,memdev instead"]


@pytest.mark.parametrize(("texts", "message"), [
    (("node,foo=1",), "Invalid parameter 'foo'"),
    (("nosuch",), "Parameter 'type' does not accept value 'nosuch'"),
    (("node,cpus=3-1",), "Parameter 'cpus' expects a uint64 value or range"),
    (("node,nodeid=70000",), "Parameter 'nodeid' expects uint16_t"),
    (("node", "dist,src=0,dst=1"), "Parameter 'val' is missing"),
    (("node", "node", "dist,src=0,dst=1,val=256"), "Parameter 'val' expects uint8_t"),
    (("node,cpus=0", "node,cpus=0"), "CPU is already assigned to node-id: 0"),
    (("node", "cpu,node-id=0,die-id=0"), "die-id is not supported"),
    (("node", "cpu,node-id=0,socket-id=7"), "no match found"),
    (("node,initiator=0",), "ACPI Heterogeneous Memory Attribute Table (HMAT) is disabled"),
])
def test_refusals_name_the_option(texts, message):
    state = NumaState()
    with pytest.raises(NumaOptionError) as caught:
        apply(state, *texts)
    assert message in caught.value.message
    assert caught.value.option == texts[-1]


def test_distances_complete_symmetrically():
    state = NumaState()
    apply(state, "node,mem=1G", "node,mem=1G", "node,mem=1G", "dist,src=0,dst=1,val=20",
          "dist,src=0,dst=2,val=30", "dist,src=1,dst=2,val=40")
    complete_distances(state)
    assert [[state.distance(s, d) for d in range(3)] for s in range(3)] == [
        [10, 20, 30], [20, 10, 40], [30, 40, 10]]


def test_completion_checks_gaps_and_total():
    state = NumaState()
    apply(state, "node,nodeid=1,mem=1G")
    with pytest.raises(QomError, match="numa: Node ID missing: 0"):
        complete_configuration(state, ram_size=GiB, auto_enable=False)
    state = NumaState()
    apply(state, "node,mem=1G")
    with pytest.raises(QomError, match=r"total memory for NUMA nodes \(0x40000000\) should "
                                       r"equal RAM size \(0x80000000\)"):
        complete_configuration(state, ram_size=2 * GiB, auto_enable=False)


def test_the_automatic_node_and_default_cpu_mapping():
    state = NumaState()
    complete_configuration(state, ram_size=GiB, auto_enable=True)
    assert state.automatic and state.nodes[0].mem == GiB
    slots = possible_cpus(SmpConfig(cpus=2, sockets=2, max_cpus=2))
    warnings: list[str] = []
    finish_cpu_init(state, slots, warnings.append)
    assert [slot.node_id for slot in slots] == [0, 0] and warnings == []


def test_default_mapping_spreads_sockets_over_nodes():
    state = NumaState()
    apply(state, "node,mem=1G", "node,mem=1G")
    slots = possible_cpus(SmpConfig(cpus=4, sockets=2, cores=2, max_cpus=4))
    finish_cpu_init(state, slots, lambda text: None)
    assert [slot.node_id for slot in slots] == [0, 0, 1, 1]


def test_the_machine_maps_each_nodes_backend_where_its_ram_is():
    """4 GiB from a 3 GiB and a 1 GiB node: node 1's backend is above 4 GiB,
    and a guest write there lands in node 1's backend."""
    args = ["-m", "4G", "-object", "memory-backend-ram,id=n0,size=3G",
            "-object", "memory-backend-ram,id=n1,size=1G",
            "-numa", "node,memdev=n0", "-numa", "node,memdev=n1"]
    with VM.from_args(args, autoload=False) as vm:
        layout = [(m.name, m.gpa, m.size) for m in vm.address_space.mappings()]
        assert layout == [("ram-below-4g", 0, 3 * GiB), ("ram-above-4g", 4 * GiB, GiB)]
        vm.write(4 * GiB + 16, b"node one")
        n1 = vm.tree.objects.child("n1")
        assert bytes(n1.host_memory.view[16:24]) == b"node one"
        assert vm.machine.ram_backend is None and vm.qom_get("/machine", "memory-backend") == ""


def test_a_node_spanning_the_pci_hole_is_mapped_in_two_pieces():
    args = ["-m", "4G", "-object", "memory-backend-ram,id=n0,size=2G",
            "-object", "memory-backend-ram,id=n1,size=2G",
            "-numa", "node,memdev=n0", "-numa", "node,memdev=n1"]
    with VM.from_args(args, autoload=False) as vm:
        layout = [(m.name, m.gpa, m.size) for m in vm.address_space.mappings()]
        assert layout == [("ram-below-4g@n0", 0, 2 * GiB), ("ram-below-4g@n1", 2 * GiB, GiB),
                          ("ram-above-4g", 4 * GiB, GiB)]
        vm.write(4 * GiB, b"x")
        n1 = vm.tree.objects.child("n1")
        assert bytes(n1.host_memory.view[GiB:GiB + 1]) == b"x"


def test_a_failed_start_releases_the_nodes_backends():
    """memory backend n0 can't be used twice: nothing stays mapped or attached."""
    with VM.empty(autoload=False) as vm:
        for name in ("n0", "n1"):
            vm.object_add("memory-backend-ram", name, size=GiB)
        from devices.memory_options import memory_config
        with pytest.raises(QomError, match=r"memory backend n1 can't be used multiple times\."):
            vm.create_machine(memory_config("3G"), numa_options=[
                parse_numa_option("node,memdev=n0"), parse_numa_option("node,memdev=n1"),
                parse_numa_option("node,memdev=n1")])
        assert not vm.tree.objects.child("n0").is_mapped()
        assert vm.tree.root.child("machine") is None


def test_a_failed_board_init_gives_back_the_cpu_names():
    """phys-bits refused after the CPUs were named: a new machine names them the same."""
    from devices.memory_options import memory_config
    from devices.topology import SmpConfig

    with VM.empty(autoload=False) as vm:
        with pytest.raises(QomError, match="phys-bits should be between 32 and 52"):
            vm.create_machine(memory_config("1G"), phys_bits=60, smp=SmpConfig(cpus=2, max_cpus=2, cores=2))
        assert vm.tree.unattached_count == 0
        vm.create_machine(memory_config("1G"), smp=SmpConfig(cpus=2, max_cpus=2, cores=2))
        assert [cpu.canonical_path for cpu in vm.machine.cpus] == [
            "/machine/unattached/device[0]", "/machine/unattached/device[2]"]
