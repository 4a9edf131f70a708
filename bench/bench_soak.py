"""Soak: what thousands of cycles leave behind, pyqom beside QEMU 7.2 in one run.

For each program (``-machine pc -m 1G,slots=4,maxmem=8G -qmp unix:...``), after
every ``--cycles`` cycles of

* objects: ``object-add`` of a 1 MiB ``memory-backend-ram`` and ``object-del``;
* connections: connect to a second QMP socket, read the greeting, negotiate,
  hang up;

it prints the process's open file descriptors, memory mappings and RSS.  A
third workload runs in pyqom only, in this process, because QEMU has no guest
here to eject with: ``object-add`` + ``device_add`` of a 128 MiB DIMM,
``device_del``, and guest code (in Unicorn) that ejects it through the ACPI
register block, ``object-del``.

    PYTHONPATH=. python bench/bench_soak.py [--cycles 1000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MiB = 1 << 20
#: guest code: select slot 0 (0x0a00), eject it (0x0a14 <- 8), halt
EJECT_SLOT0 = (b"\x66\xba\x00\x0a" b"\xb8\x00\x00\x00\x00" b"\xef"
               b"\x66\xba\x14\x0a" b"\xb0\x08" b"\xee" b"\xf4")


def usage(pid: int) -> tuple[int, int, int]:
    """Open descriptors, mappings, RSS in KiB."""
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    maps = len(Path(f"/proc/{pid}/maps").read_text().splitlines())
    rss = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text()
               .splitlines() if line.startswith("VmRSS:"))
    return fds, maps, rss


class Qmp:
    """A raw QMP connection (one line per reply)."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(path)
        self.buffer = b""
        self.line()
        self.call(b'{"execute":"qmp_capabilities"}')

    def line(self) -> bytes:
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line

    def call(self, request: bytes) -> bytes:
        self.sock.sendall(request + b"\n")
        while True:
            line = self.line()
            if b'"return"' in line or b'"error"' in line:
                return line

    def close(self) -> None:
        self.sock.close()


def soak_process(name: str, argv: list[str], cycles: int, rounds: int) -> None:
    directory = tempfile.mkdtemp(prefix="pyqom-soak-")
    main_path, churn_path = f"{directory}/main.sock", f"{directory}/churn.sock"
    env = {**os.environ, "PYQOM_DISABLE_PLUGIN_AUTOLOAD": "1"}
    process = subprocess.Popen(
        [*argv, "-machine", "pc", "-m", "1G,slots=4,maxmem=8G", "-display", "none",
         "-nodefaults", "-S", "-qmp", f"unix:{main_path},server=on,wait=off",
         "-qmp", f"unix:{churn_path},server=on,wait=off"],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(400):
            if os.path.exists(churn_path):
                break
            time.sleep(0.025)
        qmp = Qmp(main_path)
        print(f"{name:8} start            fds/maps/RSS {usage(process.pid)}")
        for round_number in range(1, rounds + 1):
            started = time.perf_counter()
            for index in range(cycles):
                qmp.call(b'{"execute":"object-add","arguments":{"qom-type":'
                         b'"memory-backend-ram","id":"o%d","size":%d}}' % (index, MiB))
                qmp.call(b'{"execute":"object-del","arguments":{"id":"o%d"}}' % index)
            objects = time.perf_counter() - started
            started = time.perf_counter()
            for _ in range(cycles):
                Qmp(churn_path).close()
            churn = time.perf_counter() - started
            print(f"{name:8} {round_number * cycles:5} cycles      fds/maps/RSS "
                  f"{usage(process.pid)}  objects {objects / cycles * 1000:.2f} ms/cycle, "
                  f"connections {churn / cycles * 1000:.2f} ms/cycle")
        qmp.call(b'{"execute":"quit"}')
        qmp.close()
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        shutil.rmtree(directory, ignore_errors=True)


def soak_ejects(cycles: int, rounds: int) -> None:
    from pyqom.vm import VM

    with VM("1G", slots=4, maxmem="8G", autoload=False) as vm:
        print(f"pyqom    start (ejects)   fds/maps/RSS {usage(os.getpid())}")
        for round_number in range(1, rounds + 1):
            started = time.perf_counter()
            for _ in range(cycles):
                vm.object_add("memory-backend-ram", "m", size=128 * MiB)
                vm.device_add("pc-dimm", "d", memdev="m")
                vm.device_del("d")
                vm.run(EJECT_SLOT0, load_at=0x1000)
                vm.object_del("m")
            elapsed = time.perf_counter() - started
            assert vm.query_memory_devices() == []
            print(f"pyqom    {round_number * cycles:5} ejects      fds/maps/RSS "
                  f"{usage(os.getpid())}  {elapsed / cycles * 1000:.2f} ms/cycle")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    programs = {"pyqom": [sys.executable, "-m", "pyqom"]}
    qemu = shutil.which("qemu-system-x86_64")
    if qemu is not None:
        programs["QEMU 7.2"] = [qemu, "-accel", "tcg"]
    else:
        print("qemu-system-x86_64 is not installed: pyqom only", file=sys.stderr)
    for name, argv in programs.items():
        soak_process(name, argv, options.cycles, options.rounds)
    soak_ejects(options.cycles, options.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
