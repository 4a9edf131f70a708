"""An interactive HMP monitor on stdio (``-monitor stdio``) against real QEMU 7.2:
the same bytes in, the same bytes out (banner, readline echo, prompts, output),
and the same stderr apart from the program name."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from qemu_oracle import qemu_or_skip

OPTIONS = ["-machine", "pc", "-m", "1G,slots=3,maxmem=4G", "-display", "none", "-nodefaults",
           "-S", "-monitor", "stdio"]

SESSIONS = [
    b"object_add memory-backend-ram,id=mem1,size=1G\ninfo memory_size_summary\nquit\n",
    b"object_add memory-backend-ram,id=mem1,size=1Q\nobject_del nosuch\ninfo memdev\nquit\n",
    b"info memory_sizX\x7fe_summary\n\nnosuchcmd\nquit\n",
    b"object_add memory-backend-ram,id=m1,size=128M\ndevice_add pc-dimm,id=d1,memdev=m1\n"
    b"info memory-devices\ndevice_add pc-dimm,id=1d,memdev=m1\nobject_del m1\nquit\n",
    b"qom-get /objects/m1 size\nqom-list /machine/peripheral\nquit\n",
    # A line past readline's 4,095 bytes: the rest is dropped, the echo stays bounded.
    b"info " + b"x" * 5000 + b"\x7f\x7f\ninfo status\nquit\n",
]


def _run(command: list[str], data: bytes, env: dict[str, str] | None = None
         ) -> tuple[int, bytes, bytes]:
    done = subprocess.run(command, input=data, capture_output=True, timeout=60, env=env)
    return done.returncode, done.stdout, done.stderr


@pytest.mark.parametrize("session", SESSIONS, ids=[f"s{i}" for i in range(len(SESSIONS))])
def test_same_bytes_as_qemu(session: bytes) -> None:
    qemu = qemu_or_skip()
    env = dict(os.environ, PYQOM_DISABLE_PLUGIN_AUTOLOAD="1")
    status, out, err = _run([qemu, "-accel", "tcg", *OPTIONS], session)
    mine = _run([sys.executable, "-m", "pyqom", *OPTIONS], session, env)
    assert mine[0] == status
    assert mine[1] == out
    assert mine[2].replace(b"pyqom", b"PROG") == err.replace(b"qemu-system-x86_64", b"PROG")
