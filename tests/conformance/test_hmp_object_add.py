"""HMP ``object_add`` (keyval strings) against real QEMU 7.2.

pyqom's side parses the line with :func:`qom.parse_keyval` (implied key
``qom-type``) and reads values with :data:`qom.KEYVAL`; the reply is printed
as HMP prints it: nothing on success, else ``Error: <msg>`` and any hint
line, CRLF-terminated.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import qom
from pyqom.manager import make_plugin_manager, make_tree

LINES = [
    "memory-backend-ram,id=h1,size=1M,dump=maybe",
    "memory-backend-ram,id=h1,size=1M,dump=1",
    "memory-backend-ram,id=h1,size=1M,prealloc-threads=x",
    "memory-backend-ram,id=h1,size=1M,prealloc-threads=-1",
    "memory-backend-ram,id=h1,size=1Q",
    "memory-backend-ram,id=h1,size=-1",
    "memory-backend-ram,id=h1,size=1.5",
    "memory-backend-ram,id=h1,size=1.5M",
    "memory-backend-ram,id=h2,size=0x100000",
    "memory-backend-ram,id=h3,size=1k",
    "memory-backend-ram,id=h1,size=1M,policy=nosuch",
    "memory-backend-ram,id=h1,size=1M,host-nodes=0",
    "memory-backend-ram,id=h1,size=1M,host-nodes.0=0",
    "memory-backend-ram,id=h1,size=1M,host-nodes.0=0,policy=bind",
    "memory-backend-ram,id=h1,size=1M,foo=1",
    "memory-backend-ram,id=1h,size=1M",
    "memory-backend-ram,size=1M",
    "memory-backend-ram,id=h1",
    "id=x,size=1M",
    "nosuch,id=x",
    "memory-backend-ram,id=h4,size=64M,prealloc=on,reserve=off",
    "memory-backend-ram,id=h4,size=64M,policy=bind",
    "memory-backend-ram,id=h4,size=1M,merge=yes,dump=n,share=true",
    "memory-backend-ram,id=h4,size=1M",
    "memory-backend-ram,id=h4,size=1M",
    "memory-backend-ram,id=h5,size=1M,prealloc-threads=0x2",
    "memory-backend-ram,id=h6,size=1M,prealloc-threads=010",
    "memory-backend-ram,id=h7,size=1M,prealloc-threads=08",
    # keyval lists: decimal indexes ("00" is 0), gaps, indexes beyond the count
    "memory-backend-ram,id=h1,size=1M,a.00=",
    "memory-backend-ram,id=h1,size=1M,a.0=x,a.00=y",
    "memory-backend-ram,id=h1,size=1M,a.01=x",
    "memory-backend-ram,id=h1,size=1M,a.0=x,a.2=y",
    "memory-backend-ram,id=h1,size=1M,a.1=x,a.0=y,a.2=z",
]


def hmp_object_add(tree: qom.ObjectTree, line: str) -> str:
    """HMP ``object_add`` on pyqom, printed as HMP prints it."""
    try:
        qom.object_add(tree, qom.parse_keyval(line, implied_key="qom-type"), qom.KEYVAL)
    except qom.QomError as err:
        text = f"Error: {err}\r\n"
        if err.hint:
            text += err.hint.replace("\n", "\r\n") + "\r\n"
        return text
    return ""


@pytest.fixture(scope="module")
def pyqom_tree() -> Iterator[qom.ObjectTree]:
    tree = make_tree(make_plugin_manager(autoload=False))
    yield tree
    tree.root.finalize()


@pytest.mark.parametrize("line", LINES, ids=[f"{i:02}" for i in range(len(LINES))])
def test_same_output_as_qemu(qemu, pyqom_tree, line: str) -> None:
    expected = qemu.execute("human-monitor-command", {"command-line": f"object_add {line}"})
    assert {"return": hmp_object_add(pyqom_tree, line)} == expected
