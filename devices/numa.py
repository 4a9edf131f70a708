"""Guest NUMA: ``-numa node|dist|cpu`` and the node set of the pc machine.

QEMU 7.2's order and messages (``hw/core/numa.c``, ``hw/core/machine.c``):

1. :func:`parse_numa_option` - at the option, QemuOpts syntax only (the
   implied key is ``type``);
2. :func:`apply_numa_option` - after the ``-object``s exist, each option in
   turn is visited (``NumaOptions``: unknown keys, number formats, missing
   members) and applied (``set_numa_options``); its errors carry the option's
   text (:class:`NumaOptionError`);
3. :func:`complete_configuration` - at board init: the automatic node of a
   machine with memory hotplug, node-id gaps, the memory total, distances;
4. :func:`finish_cpu_init` - CPUs no option placed go to their default node
   (or to node 0, with QEMU's warnings, when some were placed).

The state is plain data (:class:`NumaState`) the machine owns; the monitors
and the ACPI tables read it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final

import attrs

from devices.topology import CpuSlot
from qom import QomError
from qom.errors import enum_rejects, invalid_parameter, parameter_expects, parameter_missing
from qom.inputs import opts_uint_or_range, scan_uint
from qom.keyval import QemuOpt, parse_qemu_opts
from qom.numbers import NumberFormatError, parse_i64, parse_size
from qom.reprs import FieldsRepr

if TYPE_CHECKING:
    from backends.base import MemoryBackend

MAX_NODES: Final = 128
NUMA_DISTANCE_MIN: Final = 10
HMAT_DISABLED: Final = ("ACPI Heterogeneous Memory Attribute Table (HMAT) is disabled, enable "
                        "it with -machine hmat=on before using any of hmat specific options")

Warn = Callable[[str], None]
#: finds a memory backend by (partial) path, or None (``object_resolve_path_type``)
ResolveBackend = Callable[[str], "MemoryBackend | None"]


class NumaOptionError(QomError):
    """An error QEMU reports with the ``-numa`` option's text in front.

    :ivar option: the option's argument (``node,nodeid=0``).
    """

    def __init__(self, option: str, err: QomError) -> None:
        super().__init__(err.message, hint=err.hint)
        self.option = option


@attrs.define(repr=False, eq=False)
class NumaNode(FieldsRepr):
    """One guest node (QEMU's ``NodeInfo``)."""

    node_id: int
    mem: int = 0
    memdev: MemoryBackend | None = None
    #: the node whose CPUs access this memory (HMAT), or MAX_NODES for none
    initiator: int = MAX_NODES
    has_cpu: bool = False
    #: distances given or completed: destination node -> value
    distance: dict[int, int] = attrs.field(factory=dict)
    #: HMAT data given for this node as a target: bit 0 latency, bit 1 bandwidth
    lb_info_provided: int = 0


#: ``-numa hmat-lb`` ``hierarchy`` and ``data-type`` names, by their ACPI value
HMAT_HIERARCHIES: Final = ("memory", "first-level", "second-level", "third-level")
HMAT_DATA_TYPES: Final = ("access-latency", "read-latency", "write-latency",
                          "access-bandwidth", "read-bandwidth", "write-bandwidth")
HMAT_ASSOCIATIVITIES: Final = ("none", "direct", "complex")
HMAT_POLICIES: Final = ("none", "write-back", "write-through")
#: memory plus three cache levels
HMAT_LB_LEVELS: Final = 4
U16_MAX: Final = 0xFFFF
MiB: Final = 1 << 20


@attrs.define(repr=False, eq=False)
class HmatLb(FieldsRepr):
    """One HMAT latency or bandwidth structure (QEMU's ``HMAT_LB_Info``).

    :ivar base: the entry base unit (ns for latency, bytes/s for bandwidth).
    :ivar range_bitmap: the largest compressed latency, or the OR of bandwidths.
    :ivar entries: ``(initiator, target, value)`` in the order given.
    """

    hierarchy: int
    data_type: int
    base: int = 0
    range_bitmap: int = 0
    entries: list[tuple[int, int, int]] = attrs.field(factory=list)


@attrs.frozen(repr=False, eq=False)
class HmatCache(FieldsRepr):
    """One ``-numa hmat-cache`` (a memory-side cache of a node)."""

    node_id: int
    size: int
    level: int
    associativity: int
    policy: int
    line: int


@attrs.define(repr=False, eq=False)
class NumaState(FieldsRepr):
    """The machine's nodes (QEMU's ``NumaState``)."""

    nodes: dict[int, NumaNode] = attrs.field(factory=dict)
    #: the highest node id given, plus one
    max_node_id: int = 0
    have_memdevs: bool = False
    have_mem: bool = False
    have_distance: bool = False
    hmat_enabled: bool = False
    #: the machine made the one node itself (memory hotplug, no ``-numa``)
    automatic: bool = False
    #: (hierarchy, data type) -> the structure, once an ``hmat-lb`` named it
    hmat_lb: dict[tuple[int, int], HmatLb] = attrs.field(factory=dict)
    #: node -> level -> its memory-side cache
    hmat_cache: dict[int, dict[int, HmatCache]] = attrs.field(factory=dict)

    @property
    def num_nodes(self) -> int:
        return len(self.nodes)

    def ordered(self) -> list[NumaNode]:
        """The nodes by id (after :func:`complete_configuration` they are 0..n-1)."""
        return [self.nodes[node_id] for node_id in sorted(self.nodes)]

    @property
    def uses_legacy_mem(self) -> bool:
        """No node names a ``memdev``: the RAM is one ``pc.ram`` backend."""
        return not self.have_memdevs

    def distance(self, src: int, dst: int) -> int:
        return self.nodes[src].distance.get(dst, 0)


# ---------------------------------------------------------------------------
# Parsing (the opts visitor over NumaOptions)
# ---------------------------------------------------------------------------


@attrs.frozen(repr=False, eq=False)
class NumaOption(FieldsRepr):
    """One ``-numa`` option: its text and its QemuOpts, not yet visited."""

    text: str
    opts: tuple[QemuOpt, ...]


def parse_numa_option(text: str) -> NumaOption:
    """``-numa TEXT`` as QemuOpts (``type`` implied); the visiting comes later."""
    return NumaOption(text, tuple(parse_qemu_opts(text, implied_key="type")))


class _Visitor:
    """What QEMU's opts visitor does for one ``NumaOptions`` member set."""

    def __init__(self, opts: Sequence[QemuOpt]) -> None:
        self.opts = list(opts)
        self.unprocessed = {opt.name for opt in opts}

    def _last(self, name: str) -> str | None:
        found = [opt.value for opt in self.opts if opt.name == name]
        if found:
            self.unprocessed.discard(name)
        return found[-1] if found else None

    def uint(self, name: str, bits: int, *, required: bool = False) -> int | None:
        text = self._last(name)
        if text is None:
            if required:
                raise parameter_missing(name)
            return None
        scanned = scan_uint(text)
        if scanned is None or scanned[1] != len(text):
            raise parameter_expects(name, "a uint64 value")
        return _fits(name, scanned[0], bits)

    def uint_list(self, name: str, bits: int) -> list[int]:
        values: list[int] = []
        for opt in self.opts:
            if opt.name != name:
                continue
            self.unprocessed.discard(name)
            bounds = opts_uint_or_range(opt.value)
            if bounds is None:
                raise parameter_expects(name, "a uint64 value or range")
            for value in range(bounds[0], bounds[1] + 1):
                values.append(_fits(name, value, bits))
        return values

    def int64(self, name: str) -> int | None:
        text = self._last(name)
        if text is None:
            return None
        try:
            return parse_i64(text)
        except NumberFormatError:
            raise parameter_expects(name, "an int64 value") from None

    def size(self, name: str) -> int | None:
        text = self._last(name)
        if text is None:
            return None
        try:
            parse_size(text)
            # the legacy suffix-less format: a bare number is MiB
            return parse_size(text, default_suffix="M")
        except NumberFormatError:
            raise parameter_expects(name, "a size value") from None

    def string(self, name: str) -> str | None:
        return self._last(name)

    def enum(self, name: str, values: Sequence[str]) -> int:
        text = self._last(name)
        if text is None:
            raise parameter_missing(name)
        if text not in values:
            raise enum_rejects(name, text)
        return values.index(text)

    def required_size(self, name: str) -> int:
        text = self._last(name)
        if text is None:
            raise parameter_missing(name)
        try:
            return parse_size(text)
        except NumberFormatError:
            raise parameter_expects(name, "a size value") from None

    def check_done(self) -> None:
        for opt in self.opts:
            if opt.name in self.unprocessed:
                raise invalid_parameter(opt.name)


def _fits(name: str, value: int, bits: int) -> int:
    if value >= 1 << bits:
        raise parameter_expects(name, f"uint{bits}_t")
    return value


NUMA_TYPES: Final = ("node", "dist", "cpu", "hmat-lb", "hmat-cache")


# ---------------------------------------------------------------------------
# Applying (set_numa_options)
# ---------------------------------------------------------------------------


def apply_numa_option(state: NumaState, option: NumaOption, *, slots: list[CpuSlot],
                      resolve_backend: ResolveBackend, numa_mem_supported: bool,
                      warn: Warn) -> None:
    """Visit and apply one ``-numa`` option, as QEMU's ``parse_numa``.

    :param slots: the machine's possible CPUs (their ``node_id`` is set here).
    :param warn: receives QEMU's warning lines as printed after the program
        name (``-numa node,mem=1G: warning: ...``).
    :raises NumaOptionError: QEMU's message, with the option's text.
    """
    try:
        visitor = _Visitor(option.opts)
        kind = visitor.string("type")
        if kind is None:
            raise parameter_missing("type")
        if kind not in NUMA_TYPES:
            raise enum_rejects("type", kind)
        if kind == "node":
            _apply_node(state, visitor, slots, resolve_backend, numa_mem_supported,
                        lambda text: warn(f"-numa {option.text}: warning: {text}"))
        elif kind == "dist":
            _apply_dist(state, visitor)
        elif kind == "cpu":
            _apply_cpu(state, visitor, slots)
        elif kind == "hmat-lb":
            _apply_hmat_lb(state, visitor)
        else:
            _apply_hmat_cache(state, visitor)
    except NumaOptionError:
        raise
    except QomError as err:
        raise NumaOptionError(option.text, err) from None


def _apply_node(state: NumaState, visitor: _Visitor, slots: list[CpuSlot],
                resolve_backend: ResolveBackend, numa_mem_supported: bool,
                warn: Warn) -> None:
    nodeid = visitor.uint("nodeid", 16)
    cpus = visitor.uint_list("cpus", 16)
    mem = visitor.size("mem")
    memdev = visitor.string("memdev")
    initiator = visitor.uint("initiator", 16)
    visitor.check_done()
    node_id = nodeid if nodeid is not None else state.num_nodes
    if node_id >= MAX_NODES:
        raise QomError(f"Max number of NUMA nodes reached: {node_id}")
    if node_id in state.nodes:
        raise QomError(f"Duplicate NUMA nodeid: {node_id}")
    node = NumaNode(node_id)
    if initiator is not None:
        if not state.hmat_enabled:
            raise QomError(HMAT_DISABLED)
        if initiator >= MAX_NODES:
            raise QomError(f"The initiator id {initiator} expects an integer between 0 and "
                           f"{MAX_NODES - 1}")
        node.initiator = initiator
    for cpu in cpus:
        if cpu >= len(slots):
            raise QomError(f"CPU index ({cpu}) should be smaller than maxcpus ({len(slots)})")
        slot = slots[cpu]
        set_cpu_node(state, slots, node_id, {"socket-id": slot.socket_id,
                                              "core-id": slot.core_id,
                                              "thread-id": slot.thread_id,
                                              **({"die-id": slot.die_id}
                                                 if slot.has_die_id else {})},
                     pending=node)
    state.have_memdevs = state.have_memdevs or memdev is not None
    state.have_mem = state.have_mem or mem is not None
    if (mem is not None and state.have_memdevs) or (memdev is not None and state.have_mem):
        raise QomError("numa configuration should use either mem= or memdev=,"
                       "mixing both is not allowed")
    if mem is not None:
        if not numa_mem_supported:
            raise QomError("Parameter -numa node,mem is not supported by this machine type",
                           hint="Use -numa node,memdev instead\n")
        node.mem = mem
        warn("Parameter -numa node,mem is deprecated, use -numa node,memdev instead")
    if memdev is not None:
        backend = resolve_backend(memdev)
        if backend is None:
            raise QomError(f"memdev={memdev} is ambiguous")
        node.mem = backend.size
        node.memdev = backend
    state.nodes[node_id] = node
    state.max_node_id = max(state.max_node_id, node_id + 1)


def _apply_dist(state: NumaState, visitor: _Visitor) -> None:
    src = visitor.uint("src", 16, required=True)
    dst = visitor.uint("dst", 16, required=True)
    val = visitor.uint("val", 8, required=True)
    visitor.check_done()
    assert src is not None and dst is not None and val is not None
    if src >= MAX_NODES or dst >= MAX_NODES:
        raise QomError(f"Parameter '{'src' if src >= MAX_NODES else 'dst'}' expects an integer "
                       f"between 0 and {MAX_NODES - 1}")
    if src not in state.nodes or dst not in state.nodes:
        raise QomError("Source/Destination NUMA node is missing. "
                       "Please use '-numa node' option to declare it first.")
    if val < NUMA_DISTANCE_MIN:
        raise QomError(f"NUMA distance ({val}) is invalid, it shouldn't be less than "
                       f"{NUMA_DISTANCE_MIN}.")
    if src == dst and val != NUMA_DISTANCE_MIN:
        raise QomError(f"Local distance of node {src} should be {NUMA_DISTANCE_MIN}.")
    state.nodes[src].distance[dst] = val
    state.have_distance = True


#: ``CpuInstanceProperties`` members, in QAPI order (``node-id`` first)
CPU_PROPS: Final = ("node-id", "socket-id", "die-id", "cluster-id", "core-id", "thread-id")


def _apply_cpu(state: NumaState, visitor: _Visitor, slots: list[CpuSlot]) -> None:
    props = {name: visitor.int64(name) for name in CPU_PROPS}
    visitor.check_done()
    node_id = props.pop("node-id")
    if node_id is None:
        raise QomError("Missing mandatory node-id property")
    if node_id not in state.nodes:
        raise QomError(f"Invalid node-id={node_id}, NUMA node must be defined with -numa "
                       f"node,nodeid=ID before it's used with -numa cpu,node-id=ID")
    set_cpu_node(state, slots, node_id,
                 {name: value for name, value in props.items() if value is not None})


def _apply_hmat_lb(state: NumaState, visitor: _Visitor) -> None:
    """``parse_numa_hmat_lb``: one latency or bandwidth between two nodes."""
    initiator = visitor.uint("initiator", 16, required=True)
    target = visitor.uint("target", 16, required=True)
    hierarchy = visitor.enum("hierarchy", HMAT_HIERARCHIES)
    data_type = visitor.enum("data-type", HMAT_DATA_TYPES)
    latency = visitor.uint("latency", 64)
    bandwidth = _plain_size(visitor, "bandwidth")
    visitor.check_done()
    assert initiator is not None and target is not None
    if not state.hmat_enabled:
        raise QomError(HMAT_DISABLED)
    count = state.num_nodes
    if initiator > count:
        raise QomError(f"Invalid initiator={initiator}, it should be less than {count}")
    if target > count:
        raise QomError(f"Invalid target={target}, it should be less than {count}")
    source = state.nodes.get(initiator)
    if source is None or not source.has_cpu:
        raise QomError(f"Invalid initiator={initiator}, it isn't an initiator proximity domain")
    goal = state.nodes.get(target)
    if goal is None:
        raise QomError(f"The target={target} should point to an existing node")
    lb = state.hmat_lb.setdefault((hierarchy, data_type), HmatLb(hierarchy, data_type))
    duplicate = any(i == initiator and t == target for i, t, _ in lb.entries)
    if data_type <= HMAT_DATA_TYPES.index("write-latency"):
        if latency is None:
            raise QomError("Missing 'latency' option")
        if bandwidth is not None:
            raise QomError("Invalid option 'bandwidth' since the data type is latency")
        if duplicate:
            raise QomError(f"Duplicate configuration of the latency for initiator={initiator} "
                           f"and target={target}")
        lb.base = lb.base or (1 << 64) - 1
        if latency:
            entry, temp_base = latency, 1
            while entry % 10 == 0:
                entry //= 10
                temp_base *= 10
            temp_base = min(lb.base, temp_base)
            max_entry = max(lb.range_bitmap, latency // lb.base)
            if max_entry >= U16_MAX:
                raise QomError(f"Latency {latency} between initiator={initiator} and "
                               f"target={target} should not differ from previously entered "
                               f"min or max values on more than {U16_MAX - 1}")
            lb.base, lb.range_bitmap = temp_base, max_entry
            goal.lb_info_provided |= 1
        value = latency
    else:
        if bandwidth is None:
            raise QomError("Missing 'bandwidth' option")
        if latency is not None:
            raise QomError("Invalid option 'latency' since the data type is bandwidth")
        if bandwidth % MiB:
            raise QomError(f"Bandwidth {bandwidth} between initiator={initiator} and "
                           f"target={target} should be 1MB aligned")
        if duplicate:
            raise QomError(f"Duplicate configuration of the bandwidth for "
                           f"initiator={initiator} and target={target}")
        lb.base = lb.base or 1
        if bandwidth:
            bitmap = lb.range_bitmap | bandwidth
            first_bit = (bitmap & -bitmap).bit_length() - 1
            temp_base = 1 << first_bit
            max_entry = bandwidth // temp_base
            last_bit = bitmap.bit_length()
            if last_bit - first_bit > 16 or max_entry >= U16_MAX:
                raise QomError(f"Bandwidth {bandwidth} between initiator={initiator} and "
                               f"target={target} should not differ from previously entered "
                               f"values on more than {U16_MAX - 1}")
            lb.base, lb.range_bitmap = temp_base, bitmap
            goal.lb_info_provided |= 2
        value = bandwidth
    lb.entries.append((initiator, target, value))


def _plain_size(visitor: _Visitor, name: str) -> int | None:
    """A ``size`` member without the legacy MiB default (``qemu_strtosz``)."""
    text = visitor.string(name)
    if text is None:
        return None
    try:
        return parse_size(text)
    except NumberFormatError:
        raise parameter_expects(name, "a size value") from None


def _apply_hmat_cache(state: NumaState, visitor: _Visitor) -> None:
    """``parse_numa_hmat_cache``: a memory-side cache of one node."""
    node_id = visitor.uint("node-id", 32, required=True)
    size = visitor.required_size("size")
    level = visitor.uint("level", 8, required=True)
    associativity = visitor.enum("associativity", HMAT_ASSOCIATIVITIES)
    policy = visitor.enum("policy", HMAT_POLICIES)
    line = visitor.uint("line", 16, required=True)
    visitor.check_done()
    assert node_id is not None and level is not None and line is not None
    if not state.hmat_enabled:
        raise QomError(HMAT_DISABLED)
    count = state.num_nodes
    if node_id >= count:
        raise QomError(f"Invalid node-id={node_id}, it should be less than {count}")
    if state.nodes[node_id].lb_info_provided != 3:
        raise QomError(f"The latency and bandwidth information of node-id={node_id} should "
                       "be provided before memory side cache attributes")
    if not 1 <= level < HMAT_LB_LEVELS:
        raise QomError(f"Invalid level={level}, it should be larger than 0 and less than or "
                       f"equal to {HMAT_LB_LEVELS - 1}")
    levels = state.hmat_cache.setdefault(node_id, {})
    if level in levels:
        raise QomError(f"Duplicate configuration of the side cache for node-id={node_id} and "
                       f"level={level}")
    if level > 1 and level - 1 not in levels:
        raise QomError(f"Cache level={level - 1} shall be defined first")
    below = levels.get(level - 1)
    if level > 1 and below is not None and size <= below.size:
        raise QomError(f"Invalid size={size}, the size of level={level} should be larger "
                       f"than the size({below.size}) of level={level - 1}")
    above = levels.get(level + 1)
    if level < HMAT_LB_LEVELS - 1 and above is not None and size >= above.size:
        raise QomError(f"Invalid size={size}, the size of level={level} should be less than "
                       f"the size({above.size}) of level={level + 1}")
    levels[level] = HmatCache(node_id, size, level, associativity, policy, line)


def set_cpu_node(state: NumaState, slots: list[CpuSlot], node_id: int,
                 props: dict[str, int], *, pending: NumaNode | None = None) -> None:
    """``machine_set_cpu_numa_node``: put every CPU matching ``props`` on ``node_id``.

    :param pending: the node being declared (not yet in ``state``), for HMAT.
    :raises QomError: an id the pc machine's CPUs do not have, a CPU already on
        another node, or no CPU matching.
    """
    matched = False
    for slot in slots:
        for name in ("thread-id", "core-id", "cluster-id", "socket-id", "die-id"):
            supported = name != "cluster-id" and (name != "die-id" or slot.has_die_id)
            if name in props and not supported:
                raise QomError(f"{name} is not supported")
        own = {"thread-id": slot.thread_id, "core-id": slot.core_id,
               "die-id": slot.die_id, "socket-id": slot.socket_id}
        if any(props[name] != own[name] for name in own if name in props):
            continue
        if slot.node_id is not None and slot.node_id != node_id:
            raise QomError(f"CPU is already assigned to node-id: {slot.node_id}")
        matched = True
        slot.node_id = node_id
        if state.hmat_enabled:
            node = pending if pending is not None and pending.node_id == node_id \
                else state.nodes[node_id]
            if node.initiator < MAX_NODES and node.initiator != node_id:
                raise QomError(f"The initiator of CPU NUMA node {node_id} should be itself "
                               f"(got {node.initiator})")
            node.has_cpu = True
            node.initiator = node_id
    if not matched:
        raise QomError("no match found")


# ---------------------------------------------------------------------------
# Board init
# ---------------------------------------------------------------------------


def complete_configuration(state: NumaState, *, ram_size: int, auto_enable: bool) -> None:
    """``numa_complete_configuration`` up to the memory container (the machine
    builds that): the automatic node, node-id gaps, the total, the distances.

    :param auto_enable: the machine enables one node by itself (memory
        hotplug on a machine type that does so) when no ``-numa`` made one.
    :raises QomError: QEMU's fatal errors (no option text).
    """
    if not state.nodes and auto_enable:
        state.nodes[0] = NumaNode(0, mem=ram_size)
        state.max_node_id = 1
        state.automatic = True
    for node_id in range(state.max_node_id - 1, -1, -1):
        if node_id not in state.nodes:
            raise QomError(f"numa: Node ID missing: {node_id}")
    if not state.nodes:
        return
    total = sum(node.mem for node in state.nodes.values())
    if total != ram_size:
        raise QomError(f"total memory for NUMA nodes (0x{total:x}) should equal RAM size "
                       f"(0x{ram_size:x})")


def complete_distances(state: NumaState) -> None:
    """``validate_numa_distance`` then ``complete_init_numa_distance``."""
    if not state.have_distance:
        return
    count = state.num_nodes
    asymmetric = False
    for src in range(count):
        for dst in range(src, count):
            there, back = state.distance(src, dst), state.distance(dst, src)
            if there == 0 and back == 0 and src != dst:
                raise QomError(f"The distance between node {src} and {dst} is missing, at "
                               "least one distance value between each nodes should be "
                               "provided.")
            if there and back and there != back:
                asymmetric = True
    if asymmetric:
        for src in range(count):
            for dst in range(count):
                if src != dst and state.distance(src, dst) == 0:
                    raise QomError("At least one asymmetrical pair of distances is given, "
                                   "please provide distances for both directions of all "
                                   "node pairs.")
    for src in range(count):
        for dst in range(count):
            if state.distance(src, dst) == 0:
                state.nodes[src].distance[dst] = (NUMA_DISTANCE_MIN if src == dst
                                                  else state.distance(dst, src))


def finish_cpu_init(state: NumaState, slots: list[CpuSlot], warn: Warn) -> None:
    """``machine_numa_finish_cpu_init``: every possible CPU gets a node.

    With no CPU placed by ``-numa``, each socket goes to ``socket % nodes``
    (``x86_get_default_cpu_node_id``); otherwise the rest go to node 0, and
    QEMU warns about them (``warn`` gets each line after the program name).
    """
    default_mapping = all(slot.node_id is None for slot in slots)
    unplaced: list[str] = []
    for slot in slots:
        if slot.node_id is not None:
            continue
        if default_mapping:
            node_id = slot.socket_id % state.num_nodes
        else:
            unplaced.append(f"CPU {slot.index} [{slot.describe()}]")
            node_id = 0
        set_cpu_node(state, slots, node_id, _own_props(slot))
    if state.hmat_enabled:
        for node in state.ordered():
            if node.initiator == MAX_NODES:
                continue
            if node.initiator not in state.nodes:
                raise QomError(f"NUMA node {node.initiator} is missing, use '-numa node' "
                               "option to declare it first")
            if not state.nodes[node.initiator].has_cpu:
                raise QomError(f"The initiator of NUMA node {node.node_id} is invalid")
    if unplaced:
        warn(f"warning: CPU(s) not present in any NUMA nodes: {', '.join(unplaced)}")
        warn("warning: All CPU(s) up to maxcpus should be described in NUMA config, ability "
             "to start up with partial NUMA mappings is obsoleted and will be removed in future")


def _own_props(slot: CpuSlot) -> dict[str, int]:
    props = {"socket-id": slot.socket_id, "core-id": slot.core_id,
             "thread-id": slot.thread_id}
    if slot.has_die_id:
        props["die-id"] = slot.die_id
    return props


def node_memory(state: NumaState, devices: Sequence[dict[str, Any]]) -> list[tuple[int, int]]:
    """``query_numa_node_mem``: (size, plugged) per node, DIMMs included.

    :param devices: ``query-memory-devices`` entries.
    """
    sizes = {node.node_id: [node.mem, 0] for node in state.ordered()}
    for entry in devices:
        data = entry["data"]
        node = int(data.get("node", 0))
        if node in sizes:
            sizes[node][0] += int(data["size"])
            sizes[node][1] += int(data["size"])
    return [(size, plugged) for size, plugged in sizes.values()]
