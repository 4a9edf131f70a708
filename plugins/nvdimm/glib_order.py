"""The order QEMU walks a QOM container's children in: its GLib hash table's.

QEMU 7.2 lists NVDIMMs (for the NFIT, the FIT and the SRAT) with
``object_child_foreach`` over ``/machine``, which iterates each object's
``properties`` ``GHashTable`` bucket by bucket.  :func:`hash_table_order`
replays GLib 2.74's table (``g_str_hash``, the bucket index ``hash * 11 %
prime``, quadratic probing, growth at 15/16 load with its in-place
relocation) for keys inserted in the given order and nothing removed, and
returns them in iteration order.  Checked against QEMU 7.2 in
``tests/conformance/test_nvdimm_vs_qemu.py``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

_MIN_SHIFT: Final = 3
#: GLib's ``prime_mod``: the modulus of a table of ``1 << shift`` buckets
_PRIME_MOD: Final = (1, 2, 3, 7, 13, 31, 61, 127, 251, 509, 1021, 2039, 4093, 8191, 16381,
                     32749, 65521, 131071, 262139, 524287, 1048573)
_U32: Final = 0xFFFFFFFF


def str_hash(key: str) -> int:
    """``g_str_hash`` (djb2 over signed chars), as GLib stores it (0 and 1 are 2)."""
    value = 5381
    for byte in key.encode("utf-8"):
        value = (value * 33 + (byte - 256 if byte > 127 else byte)) & _U32
    return value if value >= 2 else 2


class _Table:
    def __init__(self) -> None:
        self.size, self.mod = 1 << _MIN_SHIFT, _PRIME_MOD[_MIN_SHIFT]
        self.keys: list[str | None] = [None] * self.size
        self.count = 0

    def _index(self, key: str) -> int:
        return (str_hash(key) * 11 & _U32) % self.mod

    def insert(self, key: str) -> None:
        index, step = self._index(key), 0
        while self.keys[index] is not None:
            step += 1
            index = (index + step) & (self.size - 1)
        self.keys[index] = key
        self.count += 1
        if self.size <= self.count + self.count // 16:
            self._grow()

    def _grow(self) -> None:
        """``g_hash_table_resize``: the new size from ``nnodes * 1.333``, then each
        old bucket's key moved to its new place, evicting what sits there."""
        old_size = self.size
        shift = max(int(self.count * 1.333).bit_length(), _MIN_SHIFT)
        self.size, self.mod = 1 << shift, _PRIME_MOD[shift]
        self.keys += [None] * (self.size - old_size)
        placed = [False] * self.size
        for bucket in range(old_size):
            moving = self.keys[bucket]
            if moving is None or placed[bucket]:
                continue
            self.keys[bucket] = None
            while moving is not None:
                index, step = self._index(moving), 0
                while placed[index]:
                    step += 1
                    index = (index + step) & (self.size - 1)
                placed[index] = True
                moving, self.keys[index] = self.keys[index], moving


def hash_table_order(keys: Iterable[str]) -> list[str]:
    """``keys``, inserted in this order into a fresh GLib string table, in the
    order GLib iterates them."""
    table = _Table()
    for key in keys:
        table.insert(key)
    return [key for key in table.keys if key is not None]
