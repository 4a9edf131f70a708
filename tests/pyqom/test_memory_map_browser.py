"""The memory map as a person sees it: rendered in headless Chromium.

Each SVG is put inline in a page whose script, once the page is laid out,
writes into the page what is on screen: for every region row, its label and
range text as rendered (``textContent`` of what is drawn) and the boxes
(``getBoundingClientRect``) of the row and its texts.  ``--dump-dom`` gives
the page back with that written in, and the test checks what a person would:
every label is there and inside its row's box, the rows do not overlap, and
they run down the screen in address order (the diff: two columns, before on
the left, the rows a plug changed drawn with the red or green outline).
Skips without Debian's ``chromium`` (CI installs it).
"""

from __future__ import annotations

import html
import itertools
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pyqom.memory_map import memory_map, render_diff_svg, render_svg
from pyqom.vm import VM

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

MEASURE = """
const rows = [];
for (const g of document.querySelectorAll("g.region")) {
  const box = (e) => { const r = e.getBoundingClientRect();
                       return {left: r.left, top: r.top, right: r.right, bottom: r.bottom}; };
  const label = g.querySelector("text.label"), range = g.querySelector("text.range");
  const rect = g.querySelector("rect");
  rows.push({start: g.dataset.start, classes: g.getAttribute("class"),
             label: label.textContent, range: range.textContent,
             column: g.closest("svg").dataset.column || "0",
             box: box(rect), labelBox: box(label), rangeBox: box(range),
             stroke: getComputedStyle(rect).stroke});
}
document.getElementById("result").textContent = JSON.stringify(rows);
"""


def chromium_or_skip() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path is not None:
            return path
    pytest.skip("chromium not installed (Debian: apt-get install chromium); CI installs it")


def on_screen(svg: str, tmp_path: Path) -> list[dict]:
    """What Chromium drew for each region row of ``svg``."""
    page = tmp_path / "map.html"
    page.write_text(f"<!DOCTYPE html><html><body style='margin:0'>{svg}"
                    f"<pre id='result'></pre><script>{MEASURE}</script></body></html>")
    done = subprocess.run(
        [chromium_or_skip(), *FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
         "--window-size=1400,1200", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="result">(.*?)</pre>', done.stdout, re.S)
    assert found and found[1], done.stderr[-2000:]
    return json.loads(html.unescape(found[1]))


def _contains(outer: dict, inner: dict) -> bool:
    return (outer["left"] <= inner["left"] and inner["right"] <= outer["right"]
            and outer["top"] <= inner["top"] and inner["bottom"] <= outer["bottom"])


def check_column(rows: list[dict]) -> None:
    """Rows of one map: labels inside their boxes, top to bottom in address order."""
    for row in rows:
        assert row["label"] and row["range"].startswith("0x")
        assert _contains(row["box"], row["labelBox"]), row
        assert _contains(row["box"], row["rangeBox"]), row
        assert row["labelBox"]["right"] > row["labelBox"]["left"]   # drawn, not empty
    tops = [row["box"]["top"] for row in rows]
    assert tops == sorted(tops)
    assert all(a["box"]["bottom"] <= b["box"]["top"] for a, b in itertools.pairwise(rows))
    # address order: each row starts where the one before started or later
    # (an inner row starts where its device-memory region does)
    starts = [int(row["start"]) for row in rows]
    assert starts == sorted(starts)


ARGS = ["-m", "5G,slots=3,maxmem=12G",
        "-object", "memory-backend-ram,id=m1,size=256M", "-device", "pc-dimm,id=d1,memdev=m1",
        "-object", "memory-backend-memfd,id=m2,size=1G",
        "-device", "pc-dimm,id=d2,memdev=m2,slot=2,addr=0x200000000",
        "-object", "memory-backend-ram,id=spare,size=128M"]


def test_map_as_seen_in_chromium(tmp_path):
    with VM.from_args(ARGS, autoload=False) as vm:
        model = memory_map(vm.machine)
    rows = on_screen(render_svg(model), tmp_path)
    assert [row["label"] for row in rows] == [
        "ram-below-4g (memdev pc.ram)", "hole below 4G (PCI, BIOS)", "ram-above-4g (memdev pc.ram)",
        "device-memory", "d1 (slot 0, node 0, memdev m1)", "free",
        "d2 (slot 2, node 0, memdev m2)", "free", "unused", "reserved (E820)"]
    assert rows[6]["range"] == "0x200000000 - 0x23fffffff (1 GiB)"
    check_column(rows)
    # the DIMMs are drawn inside the device-memory region's indent
    device_memory = rows[3]["box"]
    assert all(row["box"]["left"] > device_memory["left"] for row in rows[4:8])
    assert all(row["box"]["left"] == device_memory["left"] for row in rows[8:])


def test_plug_diff_as_seen_in_chromium(tmp_path):
    with VM.from_args(ARGS, autoload=False) as vm:
        before = memory_map(vm.machine)
        vm.device_add("pc-dimm", "d3", memdev="spare")
        after = memory_map(vm.machine)
    rows = on_screen(render_diff_svg(before, after), tmp_path)
    middle = max(row["box"]["right"] for row in rows[:len(before.regions)])
    left = [row for row in rows if row["box"]["left"] < middle]
    right = [row for row in rows if row["box"]["left"] >= middle]
    assert len(left) == len(before.regions) and len(right) == len(after.regions)
    check_column(left)
    check_column(right)
    added = [row["label"] for row in right if "added" in row["classes"]]
    removed = [row["label"] for row in left if "removed" in row["classes"]]
    assert added == ["d3 (slot 1, node 0, memdev spare)", "free"] and removed == ["free"]
    assert {row["stroke"] for row in right if "added" in row["classes"]} == {"rgb(26, 127, 55)"}
    assert {row["stroke"] for row in left if "removed" in row["classes"]} == {"rgb(207, 34, 46)"}
