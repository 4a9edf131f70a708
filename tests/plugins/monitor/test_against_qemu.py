"""The same raw QMP bytes sent to real QEMU 7.2 (``-qmp stdio``) and to pyqom: same replies."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "conformance"))

from qemu_oracle import qemu_or_skip

from plugins.monitor import QmpSession, VmControl

INPUT = (b'{"execute":"query-status"}\n'
         b'{"execute":"qmp_capabilities","id":1}\n'
         b'{"execute":"qmp_capabilities"}\n'
         b'xyz\n1\n[]\n{}\n{"execute":1}\n{"execute":"nosuch","id":"a"}\n'
         b'{"execute":"query-status","arguments":[]}\n{"execute":"query-status","foo":1}\n'
         b'{"execute":"query-status",}\n{"a":1,"a":2}\n\xff\n'
         b'{"execute":"query-status","id":"\\u00e9\\ud83d\\ude00"} {"execute":\n"stop"}\n'
         b'{"execute":"object-del","arguments":{"id":1}}\n'
         b'{"execute":"object-del","arguments":{}}\n'
         b'{"execute":"qom-get","arguments":{"path":"/nosuch","property":"x"}}\n'
         b'{"execute":"device_del","arguments":{"id":""}}\n'
         b'{"execute":"cont"}\n{"execute":"query-status","id":0.1}\n'
         b'{"execute":"human-monitor-command","arguments":{"command-line":"qom-set"}}\n'
         b'{"execute":"human-monitor-command","arguments":{"command-line":"info memdev"}}\n'
         b'{"execute":"quit"}\n')


def _normalise(text: str) -> list[str]:
    text = re.sub(r'"seconds": \d+, "microseconds": \d+', '"seconds": S, "microseconds": U', text)
    text = re.sub(r'"package": "[^"]*"', '"package": P', text)
    return text.splitlines()


def test_same_bytes_same_replies(control: VmControl) -> None:
    qemu = qemu_or_skip()
    done = subprocess.run(
        [qemu, "-machine", "pc", "-accel", "tcg", "-S", "-display", "none", "-nodefaults",
         "-m", "1G,slots=3,maxmem=4G", "-qmp", "stdio"],
        input=INPUT, capture_output=True, timeout=60)
    assert done.returncode == 0
    out: list[bytes] = []
    session = QmpSession(control, out.append)
    session.start()
    session.feed(INPUT)
    assert _normalise(b"".join(out).decode()) == _normalise(done.stdout.decode())
