"""The help options against real QEMU 7.2: the same layout and words for what pyqom
has, the same exit status, and QEMU's rules for which help wins when several are
given (``-h``, ``-version``, ``-object ..help`` and ``-machine ..help`` answer where
they stand; ``-cpu help`` and ``-device ..help`` after the whole line is parsed).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from qemu_oracle import qemu_or_skip

BASE = ["-display", "none", "-nodefaults"]


def _run(argv: list[str]) -> tuple[int, str, str]:
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYQOM_DISABLE_PLUGIN_AUTOLOAD": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(argv, capture_output=True, timeout=30, env=env,
                          stdin=subprocess.DEVNULL)
    # Decoded by hand: text mode would turn a stray \r\n into \n unseen.
    return (done.returncode, done.stdout.decode(errors="surrogateescape"),
            done.stderr.decode(errors="surrogateescape"))


def both(*args: str) -> tuple[tuple[int, str, str], tuple[int, str, str]]:
    qemu = _run([qemu_or_skip(), *BASE, *args])
    mine = _run([sys.executable, "-m", "pyqom", *BASE, *args])
    return (qemu[0], qemu[1], qemu[2].replace("qemu-system-x86_64: ", "PROG: ")), (
        mine[0], mine[1], mine[2].replace("pyqom: ", "PROG: "))


def _in_order(lines: list[str], within: list[str]) -> bool:
    """``lines`` all appear in ``within``, in the same order."""
    rest = iter(within)
    return all(any(line == other for other in rest) for line in lines)


@pytest.mark.parametrize("args", [
    ("-device", "pc-dimm,help"), ("-device", "pc-dimm,?"), ("-device", "pc-dimm,help=on"),
    ("-object", "memory-backend-ram,help"), ("-object", "memory-backend-file,help"),
    ("-object", "memory-backend-memfd,help"), ("-object", "memory-backend-ram,help,size=1G"),
    ("-machine", "type=help"), ("-cpu", "nosuch,help"), ("-object", "nosuch,help"),
    ("-device", "nosuch,help"), ("-m", "help"), ("-m", "?"),
    ("-object", "help", "-frobnicate"), ("-frobnicate", "-object", "help"),
    ("-h", "-frobnicate"), ("-version", "-m"), ("-m", "foo", "-h"),
    ("-m", "foo", "-object", "help"), ("-device", "help", "-m", "foo"),
    ("-device", "pc-dimm,help", "-m", "foo"), ("-device", "help", "-object", "nosuch,id=x"),
    ("-device", "pc-dimm,help", "-device", "help"), ("-device", "pc-dimm,help", "-m", "0"),
    ("-object", "memory-backend-ram,help", "-object", "memory-backend-file,help"),
])
def test_same_as_qemu(args: tuple[str, ...]) -> None:
    qemu, mine = both(*args)
    assert mine == qemu


@pytest.mark.parametrize(("args", "header"), [
    (("-object", "help"), "List of user creatable objects:"),
    (("-object", "?"), "List of user creatable objects:"),
    (("-object", "qom-type=help"), "List of user creatable objects:"),
    (("-object", "help", "-m", "foo"), "List of user creatable objects:"),
    (("-device", "help"), None),
    (("-device", "driver=help", "-machine", "nosuch"), None),
    (("-device", "help", "-device", "pc-dimm,help"), None),
    (("-machine", "help"), "Supported machines are:"),
    (("-M", "help", "-m", "foo"), "Supported machines are:"),
    (("-machine", "nosuch,help"), "Supported machines are:"),
    (("-machine", "help", "-cpu", "help"), "Supported machines are:"),
    (("-machine", "pc,help"), "pc-i440fx-7.2-machine options:"),
    (("-machine", "pc,help", "-device", "help"), "pc-i440fx-7.2-machine options:"),
    (("-cpu", "help"), "Available CPUs:"),
    (("-cpu", "help", "-device", "help"), "Available CPUs:"),
])
def test_pyqoms_entries_in_qemus_layout(args: tuple[str, ...], header: str | None) -> None:
    """QEMU lists more types than pyqom has: pyqom's lines are QEMU's, in its order."""
    qemu, mine = both(*args)
    assert (mine[0], mine[2]) == (qemu[0], qemu[2]) == (0, "")
    lines, qemu_lines = mine[1].splitlines(), qemu[1].splitlines()
    if header is not None:
        assert lines[0] == qemu_lines[0] == header
    assert len(lines) > 1 and _in_order(lines, qemu_lines), (lines, qemu_lines)
    assert mine[1].endswith("\n")


def _categories(text: str) -> dict[str, list[str]]:
    blocks = [block.splitlines() for block in text.split("\n\n")]
    return {block[0]: block[1:] for block in blocks if block}


def test_device_list_has_qemus_categories_and_lines() -> None:
    qemu, mine = both("-device", "help")
    ours, theirs = _categories(mine[1]), _categories(qemu[1])
    assert list(ours) == ["Storage devices:", "Misc devices:", "Uncategorized devices:"]
    assert _in_order(list(ours), list(theirs))
    for heading, lines in ours.items():
        assert [line for line in theirs[heading] if line in lines] == lines, heading
    assert ours["Misc devices:"] == ['name "isa-debug-exit", bus ISA',
                                     'name "isa-debugcon", bus ISA']
    assert ours["Storage devices:"] == ['name "nvdimm", desc "DIMM memory module"']


def test_version_and_usage() -> None:
    qemu, mine = both("-version")
    assert mine[0] == qemu[0] == 0
    assert mine[1].splitlines()[1:] == qemu[1].splitlines()[1:]
    assert mine[1].startswith("QEMU emulator version 7.2.22 (pyqom ")
    qemu, mine = both("-h")
    assert mine[0] == qemu[0] == 0
    lines = mine[1].splitlines()
    assert lines[1] == qemu[1].splitlines()[1]
    options = lines[3:lines.index("pyqom additions:")]
    assert _in_order([line for line in options if line], qemu[1].splitlines())
