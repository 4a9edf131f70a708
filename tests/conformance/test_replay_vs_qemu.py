"""Recordings of pyqom sessions replayed against real QEMU 7.2 (pyqom.replay).

A session recorded on pyqom (``-x-record``) that stays on QEMU's surface
replays on QEMU 7.2 line for line (timestamps and the package string
blanked); one that reaches a known difference (``query-kvm``: pyqom never
offers KVM, Debian's QEMU says it is present) is reported at that line.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from qemu_oracle import qemu_or_skip

from pyqom.replay import assert_replays, read_recording, replay

BASE = ["-machine", "pc", "-accel", "tcg", "-m", "1G,slots=3,maxmem=4G", "-display", "none",
        "-nodefaults", "-S"]
SESSION = [
    {"execute": "qmp_capabilities"},
    {"execute": "query-status"},
    {"execute": "object-add", "arguments": {"qom-type": "memory-backend-ram", "id": "m1",
                                            "size": 1 << 28}},
    {"execute": "object-add", "arguments": {"qom-type": "memory-backend-ram", "id": "m2",
                                            "size": "1G"}},
    {"execute": "device_add", "arguments": {"driver": "pc-dimm", "id": "d1", "memdev": "m1"}},
    {"execute": "device_add", "arguments": {"driver": "pc-dimm", "id": "d2", "memdev": "m1"}},
    {"execute": "query-memory-devices"},
    {"execute": "query-memdev"},
    {"execute": "qom-list", "arguments": {"path": "/objects/m1"}},
    {"execute": "cont"},
    {"execute": "stop"},
    {"execute": "quit"},
]


def record(path: Path, commands: list[dict]) -> None:
    done = subprocess.run([sys.executable, "-m", "pyqom", *BASE, "-qmp", "stdio",
                           "-x-record", str(path)],
                          input="".join(json.dumps(c) + "\n" for c in commands).encode(),
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_pyqom_session_replays_on_qemu(tmp_path):
    qemu = qemu_or_skip()
    path = tmp_path / "session.jsonl"
    record(path, SESSION)
    result = assert_replays(path, [qemu])
    outs = [step for _, step in read_recording(path)[1] if step["step"] == "out"]
    assert result.matched == len(outs) == 16   # greeting, 12 answers, RESUME, STOP, SHUTDOWN
    # the command-line form, for a bug report
    done = subprocess.run([sys.executable, "-m", "pyqom", "-x-replay", str(path), "--", qemu],
                          capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout) == (0, f"{path}: replayed, {len(outs)} lines matched\n")


def test_a_difference_from_qemu_is_reported(tmp_path):
    qemu = qemu_or_skip()
    path = tmp_path / "kvm.jsonl"
    record(path, [{"execute": "qmp_capabilities"}, {"execute": "query-kvm"},
                  {"execute": "quit"}])
    result = replay(path, [qemu])
    assert result.difference is not None
    assert result.difference.sent == '{"execute": "query-kvm"}\n'
    assert result.difference.expected == '{"return": {"enabled": false, "present": false}}\r\n'
    assert result.difference.got == '{"return": {"enabled": false, "present": true}}\r\n'
    assert result.matched == 2
