"""What ``pyqom -qmp stdio`` has imported by the time ``qmp_capabilities`` is answered:
nothing that the first command does not need (issue 10's start-up rule).

The process runs with ``-X importtime``, which writes a line to stderr as each
import completes; what stderr holds once the answer is read is exactly what
was imported before it.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time

#: modules a QMP-over-stdio start-up must not import before its first answer
NOT_BEFORE_FIRST_ANSWER = [
    "asyncio",                # the monitors have their own loop (plugins.monitor.loop)
    "ssl",
    "logging",                # qom.logs.LazyLogger imports it when a message is logged
    "socket",                 # only socket chardevs need it
    "unicorn",                # the engine is created on first guest access
    "plugins.monitor.hmp",    # the human monitor, on first use
    "plugins.monitor.readline",
    "importlib.metadata",     # entry points: only when a distribution declares one
    "tempfile",
]   # (not pathlib: an editable install's import hook uses it)


def _imported_before_first_answer() -> set[str]:
    env = dict(os.environ, PYQOM_DISABLE_PLUGIN_AUTOLOAD="1")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    process = subprocess.Popen(
        [sys.executable, "-X", "importtime", "-m", "pyqom", "-machine", "pc",
         "-m", "1G,slots=16,maxmem=1T", "-cpu", "qemu64,phys-bits=48", "-nodefaults",
         "-display", "none", "-S", "-qmp", "stdio"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert process.stdin is not None and process.stdout is not None
    assert process.stderr is not None
    try:
        assert b'"QMP"' in process.stdout.readline()
        process.stdin.write(b'{"execute": "qmp_capabilities"}\n')
        process.stdin.flush()
        assert process.stdout.readline() == b'{"return": {}}\r\n'
        report = b""
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and select.select([process.stderr], [], [], 0.2)[0]:
            chunk = os.read(process.stderr.fileno(), 1 << 16)
            if not chunk:
                break
            report += chunk
        process.stdin.write(b'{"execute": "quit"}\n')
        process.stdin.flush()
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdin, process.stdout, process.stderr):
            stream.close()
    names = set()
    for line in report.decode().splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip())
    assert "plugins.monitor.qmp" in names, "no import report: the check would prove nothing"
    return names


def test_the_first_answer_needs_none_of_these() -> None:
    imported = _imported_before_first_answer()
    assert sorted(imported & set(NOT_BEFORE_FIRST_ANSWER)) == []
