"""Helpers for the backend tests: object-add through every input, /proc readers."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import pytest

from qom import KEYVAL, OPTS, ObjectTree, QomError, object_add, parse_keyval, parse_qemu_opts

NR_HUGEPAGES = Path("/proc/sys/vm/nr_hugepages")
HUGE_2M = 2 * 1024 * 1024
#: huge pages the hugetlbfs fixture reserves (32 MiB)
HUGEPAGES_WANTED = 16


def keyval(tree: ObjectTree, text: str) -> Any:
    """HMP ``object_add <text>``."""
    return object_add(tree, parse_keyval(text, implied_key="qom-type"), KEYVAL)


def opts(tree: ObjectTree, text: str) -> Any:
    """Command line ``-object <text>`` (QemuOpts: the last repeat wins, lists collect)."""
    args: dict[str, Any] = {}
    for opt in parse_qemu_opts(text, implied_key="qom-type"):
        if opt.name == "host-nodes":
            args.setdefault(opt.name, []).append(opt.value)
        else:
            args[opt.name] = opt.value
    return object_add(tree, args, OPTS)


def error_of(fn: Any, *args: Any, **kwargs: Any) -> str:
    """The message of the QomError ``fn(*args, **kwargs)`` raises."""
    with pytest.raises(QomError) as info:
        fn(*args, **kwargs)
    return str(info.value)


def open_fds() -> set[str]:
    """Targets of this process's open file descriptors."""
    result = set()
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            result.add(f"{name}->{os.readlink(f'/proc/self/fd/{name}')}")
    return result


def maps() -> list[str]:
    """Lines of /proc/self/maps."""
    return Path("/proc/self/maps").read_text().splitlines()


def mapped_bytes() -> int:
    """Total size of this process's mappings."""
    total = 0
    for line in maps():
        start, end = line.split()[0].split("-")
        total += int(end, 16) - int(start, 16)
    return total


def vm_flags(address: int) -> set[str]:
    """The ``VmFlags`` of the mapping containing ``address`` (/proc/self/smaps)."""
    current = False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        first = line.split()[0]
        if "-" in first and not first.endswith(":"):
            start, end = (int(x, 16) for x in first.split("-"))
            current = start <= address < end
        elif current and line.startswith("VmFlags:"):
            return set(line.split()[1:])
    raise LookupError(hex(address))


def numa_policy(address: int) -> str:
    """The policy field /proc/self/numa_maps shows for the mapping at ``address``."""
    for line in Path("/proc/self/numa_maps").read_text().splitlines():
        fields = line.split()
        if int(fields[0], 16) == address:
            return fields[1]
    raise LookupError(hex(address))


def meminfo(key: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise LookupError(key)


