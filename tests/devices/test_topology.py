"""devices.topology: -smp as QEMU 7.2 computes it, and x86 APIC ids."""

from __future__ import annotations

import pytest

from devices.topology import SmpConfig, parse_smp, possible_cpus, smp_options
from qom import QomError


def smp(warnings: list[str] | None = None, *, prefer_sockets: bool = False, **given: int
        ) -> SmpConfig:
    return parse_smp(given, prefer_sockets=prefer_sockets, machine_name="pc-i440fx-7.2",
                     max_cpus_supported=255,
                     warn=(warnings.append if warnings is not None else lambda text: None))


@pytest.mark.parametrize(("given", "expected"), [
    ({}, (1, 1, 1, 1, 1, 1)),
    ({"cpus": 4}, (4, 1, 1, 4, 1, 4)),                    # cores before sockets (6.2+)
    ({"cpus": 2, "maxcpus": 8}, (2, 1, 1, 8, 1, 8)),
    ({"sockets": 2, "cores": 2, "threads": 2}, (8, 2, 1, 2, 2, 8)),
    ({"cpus": 8, "dies": 2, "sockets": 2}, (8, 2, 2, 2, 1, 8)),
    ({"cpus": 6, "cores": 3}, (6, 2, 1, 3, 1, 6)),          # sockets from the rest
])
def test_missing_values_are_computed_as_qemu_does(given, expected):
    config = smp(**given)
    assert (config.cpus, config.sockets, config.dies, config.cores, config.threads,
            config.max_cpus) == expected


def test_old_machines_fill_sockets_first():
    config = smp(prefer_sockets=True, cpus=4)
    assert (config.sockets, config.cores) == (4, 1)


def test_zero_is_deprecated_but_accepted():
    warnings: list[str] = []
    assert smp(warnings, cpus=0).cpus == 1
    assert warnings == ["Deprecated CPU topology (considered invalid): CPU topology "
                        "parameters must be greater than zero"]


@pytest.mark.parametrize(("given", "message"), [
    ({"cpus": 4, "maxcpus": 2}, "maxcpus must be equal to or greater than smp"),
    ({"cpus": 5, "sockets": 2, "cores": 2}, "product of the hierarchy must match maxcpus"),
    ({"cpus": 256}, "Invalid SMP CPUs 256. The max CPUs supported by machine "
                    "'pc-i440fx-7.2' is 255"),
    ({"clusters": 2}, "clusters not supported by this machine's CPU topology"),
])
def test_refusals(given, message):
    with pytest.raises(QomError, match=message.replace("(", r"\(").replace(")", r"\)")):
        smp(**given)


def test_option_values_and_keys():
    assert smp_options({"cpus": "0x4", "maxcpus": "010"}) == {"cpus": 4, "maxcpus": 8}
    with pytest.raises(QomError, match=r"Parameter 'smp\.cpus' expects integer"):
        smp_options({"cpus": "x"})
    with pytest.raises(QomError, match=r"Parameter 'smp\.foo' is unexpected"):
        smp_options({"foo": "1"})


def test_apic_ids_pack_the_topology_in_power_of_two_fields():
    """3 cores take 2 bits and 2 threads 1: socket 1 core 2 thread 1 is 0b1_10_1."""
    slots = possible_cpus(smp(sockets=2, cores=3, threads=2))
    assert [slot.apic_id for slot in slots] == [0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 13]
    last = slots[-1]
    assert (last.socket_id, last.core_id, last.thread_id) == (1, 2, 1)
    assert last.describe() == "socket-id: 1, core-id: 2, thread-id: 1"


def test_dies_are_a_property_only_with_more_than_one():
    assert "die-id" not in possible_cpus(smp(cpus=2))[1].props()
    two_dies = possible_cpus(smp(cpus=4, dies=2))
    assert two_dies[2].props()["die-id"] == 1
    assert two_dies[2].describe() == "socket-id: 0, die-id: 1, core-id: 0, thread-id: 0"
