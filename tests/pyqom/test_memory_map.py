"""The guest-physical memory map (pyqom.memory_map, a pyqom addition): the model
read from a machine, its SVG, the before/after diff, ``-x-memory-map`` and
``x-query-memory-map``.  test_memory_map_browser.py renders them in Chromium."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET

import pytest
from pyqom_side import PyqomQmp

from plugins.monitor import VmControl
from pyqom.memory_map import (
    MapRegion,
    MemoryMap,
    memory_map,
    render_diff_svg,
    render_svg,
    size_label,
)
from pyqom.regenerate import regenerate_options
from pyqom.vm import VM

GiB = 1 << 30
SVG = "{http://www.w3.org/2000/svg}"
ARGS = ["-m", "5G,slots=3,maxmem=12G",
        "-object", "memory-backend-ram,id=m1,size=256M", "-device", "pc-dimm,memdev=m1",
        "-object", "memory-backend-memfd,id=m2,size=1G",
        "-device", "pc-dimm,id=d2,memdev=m2,slot=2,addr=0x200000000",
        "-object", "memory-backend-ram,id=spare,size=128M"]


@pytest.fixture
def vm():
    with VM.from_args(ARGS, autoload=False) as made:
        yield made


def test_model_in_address_order(vm):
    regions = memory_map(vm.machine).regions
    outer = [r for r in regions if not r.inside]
    assert [(r.kind, r.label, r.start, r.size) for r in outer] == [
        ("ram", "ram-below-4g", 0, 3 * GiB),
        ("hole", "hole below 4G (PCI, BIOS)", 3 * GiB, GiB),
        ("ram", "ram-above-4g", 4 * GiB, 2 * GiB),
        ("device-memory", "device-memory", 6 * GiB, 10 * GiB),
        ("gap", "unused", 16 * GiB, 0xFD00000000 - 16 * GiB),
        ("hole", "reserved (E820)", 0xFD00000000, 12 * GiB),    # AMD's HyperTransport
    ]
    inner = [r for r in regions if r.inside]
    assert [(r.kind, r.label) for r in inner] == [
        ("dimm", "device[0]"), ("free", "free"), ("dimm", "d2"), ("free", "free")]
    # inner regions tile the device-memory region exactly, in order
    assert inner[0].start == 6 * GiB and inner[-1].end == 16 * GiB
    assert all(a.end == b.start for a, b in itertools.pairwise(inner))
    assert dict(inner[2].details) == {"type": "dimm", "slot": "2", "node": "0", "memdev": "m2"}


def test_gap_before_device_memory():
    # 3.5G of RAM: 3G below 4G, 512M above, device memory from the next GiB
    with VM.from_args(["-m", "3584M,slots=1,maxmem=8G"], autoload=False) as vm:
        kinds = [(r.kind, r.start, r.size) for r in memory_map(vm.machine).regions]
        assert ("gap", 4 * GiB + GiB // 2, GiB // 2) in kinds


def test_machine_without_device_memory():
    with VM.from_args(["-m", "1G"], autoload=False) as vm:
        assert [r.kind for r in memory_map(vm.machine).regions] == ["ram", "hole", "gap", "hole"]


def test_regions_tile_the_map():
    """Outer regions follow each other without gaps or overlaps from 0."""
    for memory in ("1G", "5G,slots=3,maxmem=12G", "3584M,slots=1,maxmem=8G"):
        with VM.from_args(["-m", memory], autoload=False) as vm:
            outer = [r for r in memory_map(vm.machine).regions if not r.inside]
            assert outer[0].start == 0
            assert all(a.end == b.start for a, b in itertools.pairwise(outer)), memory


def test_size_labels():
    assert [size_label(n) for n in (12, 640 << 10, GiB, 3 * GiB // 2, 10 << 40)] == [
        "12 B", "640 KiB", "1 GiB", "1.50 GiB", "10 TiB"]


def _groups(svg: str) -> list[ET.Element]:
    root = ET.fromstring(svg)
    return [g for g in root.iter(f"{SVG}g") if "region" in g.get("class", "").split()]


def test_svg_has_a_row_per_region(vm):
    model = memory_map(vm.machine)
    groups = _groups(render_svg(model))
    assert [int(g.get("data-start")) for g in groups] == [r.start for r in model.regions]
    labels = [g.find(f"{SVG}text[@class='label']").text for g in groups]
    assert labels[4] == "device[0] (slot 0, node 0, memdev m1)"
    ranges = [g.find(f"{SVG}text[@class='range']").text for g in groups]
    assert ranges[0] == "0x0 - 0xbfffffff (3 GiB)"


def test_svg_escapes_labels():
    odd = MemoryMap((MapRegion(0, 4096, "dimm", 'a<b>&"c"', (("memdev", "x&y"),)),))
    group, = _groups(render_svg(odd))
    assert group.get("data-label") == 'a<b>&"c"'
    assert group.find(f"{SVG}text[@class='label']").text == 'a<b>&"c" (memdev x&y)'


def test_diff_marks_what_a_plug_changes(vm):
    before = memory_map(vm.machine)
    vm.device_add("pc-dimm", "d3", memdev="spare")
    after = memory_map(vm.machine)
    groups = _groups(render_diff_svg(before, after))
    marked = {(g.get("data-label"), int(g.get("data-start")), c)
              for g in groups for c in ("added", "removed") if c in g.get("class").split()}
    plugged = 6 * GiB + (256 << 20)
    assert marked == {
        ("free", plugged, "removed"),                      # the gap d3 went into
        ("d3", plugged, "added"),
        ("free", plugged + (128 << 20), "added"),          # what is left of it
    }
    assert len(groups) == len(before.regions) + len(after.regions)


def test_x_memory_map_option(tmp_path):
    target = tmp_path / "map.svg"
    with VM.from_args([*ARGS, "-x-memory-map", str(target)], autoload=False) as vm:
        assert target.read_text() == render_svg(memory_map(vm.machine))


def test_x_memory_map_option_unwritable(tmp_path):
    from pyqom.command_line import StartupError

    with pytest.raises(StartupError) as failure:
        VM.from_args(["-m", "1G", "-x-memory-map", str(tmp_path / "no" / "map.svg")],
                     autoload=False)
    assert failure.value.location == f"-x-memory-map {tmp_path}/no/map.svg"
    assert str(failure.value).endswith("No such file or directory")


def test_qmp_command(vm, tmp_path):
    target = tmp_path / "map.svg"
    qmp = PyqomQmp(VmControl(vm))
    try:
        answer = qmp.execute("x-query-memory-map", {"filename": str(target)})["return"]
    finally:
        qmp.close()
    model = memory_map(vm.machine)
    assert answer["regions"] == model.as_json()
    assert answer["regions"][6] == {"start": 8 * GiB, "size": GiB, "kind": "dimm",
                                    "label": "d2", "type": "dimm", "slot": "2", "node": "0",
                                    "memdev": "m2"}
    assert answer["svg"] == target.read_text() == render_svg(model)


def test_map_of_a_regenerated_configuration(vm):
    """The map drawn from the regenerated options is the live machine's."""
    with VM.from_args(regenerate_options(vm.tree, vm.machine), autoload=False) as again:
        assert memory_map(again.machine) == memory_map(vm.machine)


def test_map_after_a_plug_plan(vm):
    """The after-state of a plan is drawn while the plan is in place on the live
    machine (devices.plan.plan_plug), which is then left as it was."""
    plan = {"objects": [{"qom-type": "memory-backend-ram", "id": "m9", "size": 512 << 20}],
            "devices": [{"driver": "pc-dimm", "id": "d9", "memdev": "m9"}]}
    qmp = PyqomQmp(VmControl(vm))
    try:
        answer = qmp.execute("x-query-memory-map-diff", plan)["return"]
        refused = qmp.execute("x-query-memory-map-diff",
                              {"devices": [{"driver": "pc-dimm", "memdev": "m1"}]})
    finally:
        qmp.close()
    assert answer["before"] == memory_map(vm.machine).as_json()
    assert vm.tree.objects.child("m9") is None
    plugged = [r for r in answer["after"] if r["label"] == "d9"]
    assert plugged == [{"start": 6 * GiB + (256 << 20), "size": 512 << 20, "kind": "dimm",
                        "label": "d9", "type": "dimm", "slot": "1", "node": "0",
                        "memdev": "m9"}]
    assert 'class="region dimm added" data-start="' in answer["svg"]
    assert refused == {"error": {"class": "GenericError",
                                 "desc": "can't use already busy memdev: m1"}}
