"""``qmp.encode``'s fast path writes exactly what QEMU's writer (``qjson.to_json``) writes."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from plugins.monitor import qjson
from plugins.monitor.qmp import encode
from qom.qdict import qdict_ordered_deep

KEYS = st.sampled_from(["return", "data", "addr", "size", "slot", "node", "id", "memdev",
                        "hotplugged", "hotpluggable", "type", "a\nb", "é", "x\x7f", ""])
LEAVES = (st.none() | st.booleans() | st.integers(-(1 << 70), 1 << 70)
          | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8))
VALUES = st.recursive(LEAVES, lambda inner: (st.lists(inner, max_size=4)
                                             | st.tuples(inner, inner)
                                             | st.dictionaries(KEYS | st.text(max_size=4),
                                                               inner, max_size=6)),
                      max_leaves=30)


def reference(message: Any) -> bytes:
    return (qjson.to_json(qdict_ordered_deep(message)) + "\r\n").encode("ascii")


@settings(max_examples=400)
@given(VALUES)
def test_encode_is_qemus_writer(message: Any) -> None:
    assert encode(message) == reference(message)


def test_encode_plain_reply_and_escapes() -> None:
    reply = {"return": [{"type": "dimm", "data": {"id": "d1", "addr": 1 << 32, "size": 1 << 30,
                                                  "slot": 0, "node": 0, "memdev": "/objects/m",
                                                  "hotplugged": True, "hotpluggable": True}}]}
    assert encode(reply) == reference(reply)
    for text in ["a\"b", "back\\slash", "tab\t", "del\x7f", "é", "\U0001f600", "\udc80"]:
        assert encode({"return": {"desc": text}}) == reference({"return": {"desc": text}})
    assert encode({"return": 0.1}) == b'{"return": 0.10000000000000001}\r\n'
