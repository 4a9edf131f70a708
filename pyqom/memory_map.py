"""A picture of the guest-physical memory map (a pyqom addition, issue 14).

Two steps, kept apart so each can be tested alone:

1. :func:`memory_map` reads a machine into a :class:`MemoryMap`: RAM below
   4 GiB, the hole up to 4 GiB, RAM above 4 GiB, the device-memory region
   and inside it every memory device (id, slot, node, backend) and every
   free gap, the firmware's reserved ranges, and the unused gaps between
   them, in address order;
2. :func:`render_svg` (one map) and :func:`render_diff_svg` (a before/after
   pair, say around a planned plug) turn map values into SVG text: pure
   functions of the value, no drawing library.

Each region is one row, top to bottom in address order (rows, not a scale:
a 2 MiB DIMM next to 1 TiB of free space would not be visible otherwise),
with its name and its address range as text.  Every row is an SVG ``<g>``
with ``class="region KIND"`` and ``data-start``/``data-size`` attributes, so
a test (or a browser user's script) can find them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final
from xml.sax.saxutils import escape, quoteattr

import attrs

from devices.machine import E820_RESERVED, FOUR_GIB, PcMachine
from qom.reprs import FieldsValue

#: region kinds, each drawn in its own colour
KIND_COLOURS: Final = {
    "ram": "#8fc98f",
    "hole": "#d9d9d9",
    "gap": "#eeeeee",
    "device-memory": "#cfe0f5",
    "dimm": "#f5c26b",
    "free": "#ffffff",
}


@attrs.frozen(repr=False)
class MapRegion(FieldsValue):
    """One range of guest-physical addresses.

    :ivar start: first address.
    :ivar size: length in bytes.
    :ivar kind: a key of :data:`KIND_COLOURS`.
    :ivar label: what it is (``ram-below-4g``, a DIMM's id).
    :ivar details: further facts as (name, value) pairs (``slot``, ``node``,
        ``memdev``).
    :ivar inside: whether it lies inside the device-memory region.
    """

    start: int
    size: int
    kind: str
    label: str
    details: tuple[tuple[str, str], ...] = ()
    inside: bool = False

    @property
    def end(self) -> int:
        """The address after the last one."""
        return self.start + self.size

    def as_json(self) -> dict[str, Any]:
        """The region as ``x-query-memory-map`` returns it."""
        value: dict[str, Any] = {"start": self.start, "size": self.size, "kind": self.kind,
                                 "label": self.label}
        value.update(dict(self.details))
        return value


@attrs.frozen(repr=False)
class MemoryMap(FieldsValue):
    """A machine's guest-physical map: regions in address order (inner ones
    right after the device-memory region that holds them)."""

    regions: tuple[MapRegion, ...]

    def as_json(self) -> list[dict[str, Any]]:
        return [region.as_json() for region in self.regions]


def _id_of(path: str | None) -> str:
    return (path or "").rpartition("/")[2]


def memory_map(machine: PcMachine) -> MemoryMap:
    """The map of ``machine`` as it is now: its RAM, the hole below 4 GiB, the
    firmware's reserved ranges (E820: the AMD HyperTransport hole), the
    device-memory region with what is plugged in it, and the unused gaps
    between them, up to the last of these."""
    outer = [MapRegion(0, machine.below_4g_mem_size, "ram", "ram-below-4g",
                       (("memdev", "pc.ram"),))]
    if machine.below_4g_mem_size < FOUR_GIB:
        outer.append(MapRegion(machine.below_4g_mem_size, FOUR_GIB - machine.below_4g_mem_size,
                               "hole", "hole below 4G (PCI, BIOS)"))
    if machine.above_4g_mem_size:
        outer.append(MapRegion(machine.above_4g_mem_start, machine.above_4g_mem_size,
                               "ram", "ram-above-4g", (("memdev", "pc.ram"),)))
    if machine.has_device_memory:
        outer.append(MapRegion(machine.device_memory_base, machine.device_memory_size,
                               "device-memory", "device-memory"))
    outer += [MapRegion(entry.base, entry.length, "hole", "reserved (E820)")
              for entry in machine.e820 if entry.type == E820_RESERVED]
    regions: list[MapRegion] = []
    at = 0
    for region in sorted(outer, key=lambda region: region.start):
        if region.start > at:
            regions.append(MapRegion(at, region.start - at, "gap", "unused"))
        regions.append(region)
        if region.kind == "device-memory":
            regions += _device_memory_contents(machine)
        at = max(at, region.end)
    return MemoryMap(tuple(regions))


def _device_memory_contents(machine: PcMachine) -> list[MapRegion]:
    """Every plugged memory device, and the free gaps between them (the ranges
    :func:`devices.memory_device.free_ranges` finds, as the capacity query does)."""
    from devices.memory_device import free_ranges

    inner = [MapRegion(start, size, "free", "free", inside=True)
             for start, size in free_ranges(machine)]
    for device in machine.memory_devices():
        info = device.fill_device_info()
        data = info.get("data", {})
        start, size = device.get_addr(), device.get_region_size()
        path = getattr(device, "canonical_path", None)
        details = [("type", str(info.get("type", "")))]
        details += [(key, str(data[key])) for key in ("slot", "node") if key in data]
        if "memdev" in data:
            details.append(("memdev", _id_of(data["memdev"])))
        inner.append(MapRegion(start, size, "dimm", str(data.get("id") or _id_of(path)),
                               tuple(details), inside=True))
    return sorted(inner, key=lambda region: region.start)


# ---------------------------------------------------------------------------
# SVG
# ---------------------------------------------------------------------------

ROW_HEIGHT: Final = 44
ROW_GAP: Final = 6
COLUMN_WIDTH: Final = 640
INDENT: Final = 28
MARGIN: Final = 16
TITLE_HEIGHT: Final = 30
_UNITS: Final = (("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10))


def size_label(size: int) -> str:
    """``1 GiB``, ``1.5 GiB``, ``640 KiB``, ``12 B``."""
    for unit, shift in _UNITS:
        if size >= 1 << shift:
            value = size / (1 << shift)
            return f"{value:.{0 if value == int(value) else 2}f} {unit}".replace(".00 ", " ")
    return f"{size} B"


def _range_label(region: MapRegion) -> str:
    return f"0x{region.start:x} - 0x{region.end - 1:x} ({size_label(region.size)})"


def _title(region: MapRegion) -> str:
    details = ", ".join(f"{name} {value}" for name, value in region.details if name != "type")
    return f"{region.label} ({details})" if details else region.label


def _row(region: MapRegion, x: int, y: int, width: int, extra_class: str = "") -> str:
    indent = INDENT if region.inside else 0
    classes = " ".join(filter(None, ("region", region.kind, extra_class)))
    stroke = {"added": "#1a7f37", "removed": "#cf222e"}.get(extra_class, "#555555")
    stroke_width = 3 if extra_class else 1
    left = x + indent
    return (
        f'<g class={quoteattr(classes)} data-start="{region.start}" '
        f'data-size="{region.size}" data-label={quoteattr(region.label)}>'
        f'<rect x="{left}" y="{y}" width="{width - indent}" height="{ROW_HEIGHT}" '
        f'fill="{KIND_COLOURS.get(region.kind, "#ffffff")}" stroke="{stroke}" '
        f'stroke-width="{stroke_width}"/>'
        f'<text class="label" x="{left + 8}" y="{y + 18}" font-size="14" '
        f'font-family="sans-serif">{escape(_title(region))}</text>'
        f'<text class="range" x="{left + 8}" y="{y + 36}" font-size="12" '
        f'font-family="monospace">{escape(_range_label(region))}</text></g>')


def _column(regions: Sequence[MapRegion], x: int, title: str | None,
            marks: dict[MapRegion, str]) -> tuple[list[str], int]:
    """The rows of one map at ``x``; returns the SVG parts and the height used."""
    parts: list[str] = []
    y = MARGIN
    if title is not None:
        parts.append(f'<text class="title" x="{x}" y="{y + 18}" font-size="18" '
                     f'font-family="sans-serif" font-weight="bold">{escape(title)}</text>')
        y += TITLE_HEIGHT
    for region in regions:
        parts.append(_row(region, x, y, COLUMN_WIDTH, marks.get(region, "")))
        y += ROW_HEIGHT + ROW_GAP
    return parts, y


def _document(width: int, height: int, parts: Iterable[str], caption: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="pyqom-memory-map" '
            f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
            f'<title>{escape(caption)}</title>' + "".join(parts) + "</svg>\n")


def render_svg(memory: MemoryMap, title: str = "guest-physical memory map") -> str:
    """One map as an SVG document: a row per region, in address order."""
    parts, height = _column(memory.regions, MARGIN, title, {})
    return _document(COLUMN_WIDTH + 2 * MARGIN, height + MARGIN, parts, title)


def render_diff_svg(before: MemoryMap, after: MemoryMap,
                    title: str = "memory map: before / after") -> str:
    """A before/after pair side by side: regions only in ``before`` are marked
    ``removed`` (red), regions only in ``after`` ``added`` (green)."""
    old, new = set(before.regions), set(after.regions)
    left, left_height = _column(before.regions, MARGIN, "before",
                                {region: "removed" for region in old - new})
    right, right_height = _column(after.regions, 2 * MARGIN + COLUMN_WIDTH, "after",
                                  {region: "added" for region in new - old})
    width = 2 * COLUMN_WIDTH + 3 * MARGIN
    return _document(width, max(left_height, right_height) + MARGIN, [*left, *right], title)


# ---------------------------------------------------------------------------
# Maps of machines that are not running
# ---------------------------------------------------------------------------

def memory_map_from_options(options: Sequence[str], *,
                            objects: Sequence[dict[str, Any]] = (),
                            devices: Sequence[dict[str, Any]] = ()) -> MemoryMap:
    """The map of the machine ``options`` start (a regenerated configuration, say),
    after ``object-add`` of each of ``objects`` and ``device_add`` of each of
    ``devices`` (a plug plan), on a scratch machine closed again before this
    returns.  Its backends are made as the options say (``prealloc=on``
    preallocates), but the guest never touches them.

    :raises qom.QomError: an option, object or device the machine refuses, in
        QEMU's words (the plan cannot be carried out).
    """
    import qom
    from pyqom.vm import VM  # the composition root builds the scratch machine

    with VM.from_args(list(options), autoload=False) as scratch:
        for arguments in objects:
            qom.object_add(scratch.tree, dict(arguments))
        for arguments in devices:
            qom.device_add(scratch.tree, qom.qemu_opts_from_qdict(dict(arguments)))
        return memory_map(scratch.machine)
