"""The iteration order of QEMU's ``QDict``.

QEMU keeps JSON objects in a ``QDict``: 512 hash buckets indexed by the
gdbm/tdb string hash, each bucket a list that new keys join at the head.
Iterating a QDict walks the buckets in index order.  That order is visible
from outside in two places, so pyqom reproduces it:

* the order in which ``object-add`` and ``device_add`` set properties, so
  the first error reported when several arguments are bad is QEMU's;
* the key order of every JSON object QEMU prints (QMP replies and events).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

QDICT_BUCKETS = 512
_MASK = 0xFFFFFFFF

V = TypeVar("V")


def tdb_hash(key: str) -> int:
    """The 32-bit string hash QDict uses (from gdbm via tdb)."""
    data = key.encode()
    value = (0x238F13AF * len(data)) & _MASK
    for index, byte in enumerate(data):
        value = (value + (byte << (index * 5 % 24))) & _MASK
    return (1103515243 * value + 12345) & _MASK


def qdict_order(keys: Iterable[str]) -> list[str]:
    """``keys`` (given in insertion order) in the order a QDict iterates them."""
    buckets: dict[int, list[str]] = {}
    for key in keys:
        buckets.setdefault(tdb_hash(key) % QDICT_BUCKETS, []).insert(0, key)
    return [key for bucket in sorted(buckets) for key in buckets[bucket]]


def qdict_ordered(mapping: Mapping[str, V]) -> dict[str, V]:
    """A copy of ``mapping`` whose keys iterate as QEMU's QDict would."""
    return {key: mapping[key] for key in qdict_order(mapping)}


def qdict_ordered_deep(value: Any) -> Any:
    """``value`` with every nested dict reordered like a QDict (for JSON output).

    Iterative, so any nesting depth is fine: each container is copied when its
    parent is, and filled when it comes off the stack.
    """
    if not isinstance(value, (Mapping, list)):
        return value
    root: dict[str, Any] | list[Any] = {} if isinstance(value, Mapping) else []
    todo: list[tuple[Any, Any]] = [(value, root)]
    while todo:
        source, copy = todo.pop()
        if isinstance(source, Mapping):
            for key in qdict_order(source):
                copy[key] = _shell(source[key], todo)
        else:
            copy.extend(_shell(item, todo) for item in source)
    return root


def _shell(item: Any, todo: list[tuple[Any, Any]]) -> Any:
    """``item`` itself, or an empty copy of a container queued to be filled."""
    if isinstance(item, Mapping):
        copy: dict[str, Any] | list[Any] = {}
    elif isinstance(item, list):
        copy = []
    else:
        return item
    todo.append((item, copy))
    return copy
