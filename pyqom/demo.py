"""A tour of pyqom's Python API: ``python -m pyqom.demo``.

It builds a plugin manager (built-ins plus installed third-party plugins),
creates memory backends with ``object-add`` semantics over real host memory,
reads them back with the QOM query functions, shows QEMU 7.2's own error
messages for bad input, and proves a shared file backend's memory is the file.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import qom
from backends.base import MemoryBackend
from pyqom.manager import make_plugin_manager, make_tree


def _show(label: str, value: Any) -> None:
    print(f"{label:<58} -> {json.dumps(value)}")


def _attempt(tree: qom.ObjectTree, label: str, arguments: dict[str, Any],
             source: qom.Input = qom.JSON) -> None:
    try:
        qom.object_add(tree, arguments, source)
    except qom.QomError as err:
        print(f"{label:<58} -> {err.error_class}: {err}")
    else:
        print(f"{label:<58} -> {{}}")


def main() -> int:
    pm = make_plugin_manager()
    tree = make_tree(pm)
    print("pyqom: QEMU 7.2's object model in Python")
    print("plugins:", ", ".join(sorted(str(pm.get_name(p)) for p in pm.get_plugins())))
    _show("qom-list-types implements=memory-backend",
          [t["name"] for t in qom.qom_list_types(tree.registry, "memory-backend")])

    _attempt(tree, "object-add memory-backend-ram id=mem1 size=1073741824",
             {"qom-type": "memory-backend-ram", "id": "mem1", "size": 1 << 30})
    _attempt(tree, "object_add memory-backend-ram,id=mem2,size=256M (HMP)",
             {"qom-type": "memory-backend-ram", "id": "mem2", "size": "256M"}, qom.KEYVAL)
    _show("qom-list /objects", [p["name"] for p in qom.qom_list(tree, "/objects")])
    _show("qom-get mem1 size (partial path)", qom.qom_get(tree, "mem1", "size"))
    _show("qom-get /objects/mem2 policy", qom.qom_get(tree, "/objects/mem2", "policy"))

    print("\nBad input gets QEMU's words and leaves nothing behind:")
    _attempt(tree, 'object-add ... "size": "1G" (QMP is typed)',
             {"qom-type": "memory-backend-ram", "id": "m3", "size": "1G"})
    _attempt(tree, "object-add ... id=1mem",
             {"qom-type": "memory-backend-ram", "id": "1mem", "size": 1 << 20})
    _attempt(tree, "object-add ... size=0",
             {"qom-type": "memory-backend-ram", "id": "m3", "size": 0})
    _attempt(tree, "object-add ... id=mem1 (again)",
             {"qom-type": "memory-backend-ram", "id": "mem1", "size": 1 << 20})
    _attempt(tree, "object-add qom-type=memory-backend (abstract)",
             {"qom-type": "memory-backend", "id": "m3", "size": 1 << 20})
    try:
        qom.qom_set(tree, "mem1", "size", 1 << 21)
    except qom.QomError as err:
        print(f"{'qom-set mem1 size 2097152':<58} -> {err.error_class}: {err!s}")
    _show("qom-list /objects", [p["name"] for p in qom.qom_list(tree, "/objects")])

    print("\nA shared file backend is the file:")
    with tempfile.TemporaryDirectory() as workdir:
        path = Path(workdir) / "guest-ram"
        _attempt(tree, "object-add memory-backend-file id=f1 size=4M share=on",
                 {"qom-type": "memory-backend-file", "id": "f1", "size": 4 << 20,
                  "mem-path": str(path), "share": True})
        backend = tree.objects.child("f1")
        assert isinstance(backend, MemoryBackend) and backend.host_memory is not None
        # Write through the backend's own host memory (what the guest's RAM is).
        backend.host_memory.view[:13] = b"hello, guest!"
        qom.object_del(tree, "f1")
        print(f"{'write through the memory; object-del f1; the file holds':<58} -> "
              f"{path.read_bytes()[:13]!r}")
    qom.object_del(tree, "mem1")
    qom.object_del(tree, "mem2")
    _show("after object-del mem1, mem2: qom-list /objects",
          [p["name"] for p in qom.qom_list(tree, "/objects")])
    tree.root.finalize()
    return 0


if __name__ == "__main__":
    sys.exit(main())
