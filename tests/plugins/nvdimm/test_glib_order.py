"""GLib's hash-table order, which QEMU's NVDIMM list follows (the live comparison
with QEMU 7.2 is ``tests/conformance/test_nvdimm_vs_qemu.py``)."""

from __future__ import annotations

import pytest

from plugins.nvdimm.glib_order import hash_table_order, str_hash


def test_str_hash_is_djb2() -> None:
    assert str_hash("") == 5381
    assert str_hash("a") == 5381 * 33 + ord("a")


@pytest.mark.parametrize(("keys", "order"), [
    # the NFIT order QEMU 7.2 gave for NVDIMMs added with these ids, in this order
    (["nv1", "nv2", "nv3"], ["nv2", "nv1", "nv3"]),
    (["zz", "nv1", "q"], ["zz", "nv1", "q"]),
    (["device[0]", "device[1]"], ["device[1]", "device[0]"]),
    # 9 and 12 keys: the table grew (8 -> 16 buckets) on the way
    ([f"n{i}" for i in range(9)], [f"n{i}" for i in (4, 3, 2, 8, 1, 7, 0, 6, 5)]),
    ([f"dimm{i}" for i in range(12)],
     [f"dimm{i}" for i in (11, 5, 4, 3, 9, 2, 8, 1, 7, 0, 6, 10)]),
])
def test_order_as_qemu_walked_it(keys: list[str], order: list[str]) -> None:
    assert hash_table_order(keys) == order


def test_every_key_once_whatever_the_size() -> None:
    keys = [f"k{i}" for i in range(300)]
    assert sorted(hash_table_order(keys)) == sorted(keys)
