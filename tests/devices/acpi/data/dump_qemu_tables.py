"""Regenerate the QEMU 7.2 ACPI tables cached next to this script.

Usage: ``python tests/plugins/acpi/data/dump_qemu_tables.py`` (needs
``qemu-system-x86_64`` 7.2 and its SeaBIOS on PATH).

For each configuration of :data:`CONFIGS` QEMU (``-machine pc -accel tcg
-nodefaults``) runs SeaBIOS for a moment, is stopped, and the tables the
firmware installed are read with QMP ``pmemsave``: the RSDP found in the BIOS
area (0xE0000-0xFFFFF), then the RSDT, every table it lists, and the FACS and
DSDT named by the FADT.  Each is written as ``<config>/<SIG>.dat`` (RSDP
included), as firmware left it: checksums filled, pointers absolute.
SeaBIOS allocates QEMU's ``etc/acpi/tables`` blob in one piece, so the FACS
address is the blob's base and every table sits at base + its blob offset.

(Reading ``etc/acpi/tables`` through the fw_cfg ports 0x510/0x511 with the
HMP ``o``/``i`` commands did not select the file on this build: every read
continued the signature item, so the firmware route is used.)
"""

from __future__ import annotations

import json
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: directory name -> ``-m`` argument
CONFIGS = {
    "m1G-slots3-maxmem4G": "1G,slots=3,maxmem=4G",
    "m5G-slots2-maxmem8G": "5G,slots=2,maxmem=8G",
    "m1G": "1G",
}
#: how long SeaBIOS runs before the tables are read (it installs them in well under 1 s)
FIRMWARE_SECONDS = 1.5


class Qmp:
    """A minimal synchronous QMP client (stdlib only, so the script runs anywhere)."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        for _ in range(200):
            try:
                self.sock.connect(path)
                break
            except OSError:
                time.sleep(0.05)
        self.file = self.sock.makefile("rw")
        json.loads(self.file.readline())  # greeting
        self.execute("qmp_capabilities")

    def execute(self, command: str, **arguments: object) -> object:
        self.file.write(json.dumps({"execute": command, "arguments": arguments}) + "\n")
        self.file.flush()
        while True:
            reply = json.loads(self.file.readline())
            if "return" in reply:
                return reply["return"]
            if "error" in reply:
                raise RuntimeError(reply["error"])

    def hmp(self, line: str) -> str:
        return str(self.execute("human-monitor-command", **{"command-line": line}))


def _read(qmp: Qmp, tmp: str, addr: int, size: int) -> bytes:
    path = f"{tmp}/mem.bin"
    qmp.execute("pmemsave", val=addr, size=size, filename=path)
    return Path(path).read_bytes()


def _table(qmp: Qmp, tmp: str, addr: int) -> bytes:
    length = struct.unpack("<I", _read(qmp, tmp, addr + 4, 4))[0]
    return _read(qmp, tmp, addr, length)


def dump(memory: str) -> dict[str, bytes]:
    """The ACPI tables SeaBIOS installed for ``-m memory``, by signature."""
    return dump_args(("-m", memory))


def dump_args(args: Sequence[str]) -> dict[str, bytes]:
    """The ACPI tables SeaBIOS installed on QEMU started with ``args``, by signature
    (the NUMA conformance tests pass ``-smp``/``-numa``/``-object`` lines too)."""
    qemu = shutil.which("qemu-system-x86_64")
    if qemu is None:
        sys.exit("qemu-system-x86_64 not found")
    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/qmp.sock"
        proc = subprocess.Popen([qemu, "-machine", "pc", "-accel", "tcg", "-display", "none",
                                 "-nodefaults", *args,
                                 "-qmp", f"unix:{path},server=on,wait=off"],
                                stdin=subprocess.DEVNULL)
        try:
            qmp = Qmp(path)
            time.sleep(FIRMWARE_SECONDS)
            qmp.execute("stop")
            bios = _read(qmp, tmp, 0xE0000, 0x20000)
            at = bios.find(b"RSD PTR ")
            assert at >= 0 and at % 16 == 0, "no RSDP in the BIOS area"
            tables = {"RSDP": bios[at:at + 20]}
            rsdt = _table(qmp, tmp, struct.unpack_from("<I", tables["RSDP"], 16)[0])
            tables["RSDT"] = rsdt
            for (addr,) in struct.iter_unpack("<I", rsdt[36:]):
                table = _table(qmp, tmp, addr)
                tables[table[:4].decode()] = table
            facs, dsdt = struct.unpack_from("<II", tables["FACP"], 36)
            tables["FACS"] = _table(qmp, tmp, facs)
            tables["DSDT"] = _table(qmp, tmp, dsdt)
            qmp.execute("quit")
        finally:
            proc.wait(timeout=30)
    return tables


def main() -> None:
    for name, memory in CONFIGS.items():
        out = HERE / name
        out.mkdir(exist_ok=True)
        for old in out.glob("*.dat"):
            old.unlink()
        for sig, data in dump(memory).items():
            (out / f"{sig}.dat").write_bytes(data)
        print(name, sorted((p.name, p.stat().st_size) for p in out.glob("*.dat")))


if __name__ == "__main__":
    main()
