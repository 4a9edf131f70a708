"""qom.qdict: QEMU's QDict iteration order, checked against observed precedence."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qom import qdict_order, qdict_ordered
from qom.qdict import QDICT_BUCKETS, qdict_ordered_deep, tdb_hash

KEYS = st.lists(st.text(min_size=1, max_size=12), unique=True, max_size=30)


def test_tdb_hash_is_32_bit() -> None:
    assert 0 <= tdb_hash("") < 1 << 32
    assert tdb_hash("") == 12345  # 0x238f13af * 0 -> 1103515243 * 0 + 12345
    assert tdb_hash("size") != tdb_hash("slot")


@pytest.mark.parametrize(("first", "second"), [
    # device_add precedence observed on QEMU 7.2 (notes section 8 and 10)
    ("slot", "foo"), ("slot", "node"), ("addr", "slot"), ("bar", "foo"), ("aaa", "zzz"),
    ("size", "foo"), ("memdev", "foo"), ("memdev", "slot"),
])
def test_observed_device_add_precedence(first: str, second: str) -> None:
    for keys in ([first, second], [second, first]):
        order = qdict_order(["driver", "id", "memdev", *keys])
        assert order.index(first) < order.index(second)


def test_same_bucket_keys_iterate_newest_first() -> None:
    keys = [f"k{i}" for i in range(2000)]
    by_bucket: dict[int, list[str]] = {}
    for key in keys:
        by_bucket.setdefault(tdb_hash(key) % QDICT_BUCKETS, []).append(key)
    members = next(m for _, m in sorted(by_bucket.items()) if len(m) > 1)
    order = qdict_order(keys)
    positions = [order.index(key) for key in members]
    assert positions == sorted(positions, reverse=True)


@given(KEYS)
def test_qdict_order_is_a_permutation_sorted_by_bucket(keys: list[str]) -> None:
    order = qdict_order(keys)
    assert sorted(order) == sorted(keys)
    buckets = [tdb_hash(key) % QDICT_BUCKETS for key in order]
    assert buckets == sorted(buckets)


@given(st.dictionaries(st.text(max_size=8), st.integers()))
def test_qdict_ordered_keeps_items(mapping: dict[str, int]) -> None:
    ordered = qdict_ordered(mapping)
    assert ordered == mapping
    assert list(ordered) == qdict_order(mapping)


def test_qdict_ordered_deep() -> None:
    value = {"b": [{"y": 1, "x": 2}], "a": {"d": 1, "c": 2}}
    result = qdict_ordered_deep(value)
    assert result == value
    assert list(result) == qdict_order(value)
    assert list(result["a"]) == qdict_order(value["a"])
    assert list(result["b"][0]) == qdict_order(value["b"][0])
