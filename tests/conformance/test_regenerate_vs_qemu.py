"""Regenerated configurations started on real QEMU 7.2 (pyqom.regenerate, issue 14).

A pyqom machine goes through a random sequence of hot-plugs, unplugs (ejected
by guest code) and deletions (plug_sequences); its regenerated options start
a fresh pyqom and a real
QEMU 7.2 (``-S`` for the queries; then ``cont``, so SeaBIOS installs the
ACPI tables, which are read back with ``pmemsave``).  Compared:

* ``query-memory-devices``: identical (both plugged cold);
* ``query-memdev``: the same entries (QEMU lists them in GLib hash order);
* ACPI: FACS, FACP, APIC, HPET, SRAT and WAET byte for byte, pyqom's built
  for the address SeaBIOS put QEMU's at; of the DSDT (QEMU's holds more
  devices than pyqom's, see the README) the memory-hotplug part, through
  ``iasl -d`` when iasl is installed.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import tempfile
import time
from pathlib import Path

from acpi_testdata import memory_hotplug_part
from acpi_testdata import normalise as normalise_dsl
from hypothesis import HealthCheck, example, given, settings
from plug_sequences import FULL, MEMORY, NUMA_LINE, apply, sequences
from pyqom_side import normalise
from qemu_oracle import QemuOracle, qemu_or_skip

from devices.acpi.tables import build_tables
from pyqom.regenerate import regenerate_options
from pyqom.vm import VM

#: how long SeaBIOS runs before the tables are read (it installs them well within)
FIRMWARE_SECONDS = 1.5
COMPARED_TABLES = ("FACS", "FACP", "APIC", "HPET", "SRAT", "WAET")


def _read(qemu: QemuOracle, scratch: Path, address: int, size: int) -> bytes:
    target = scratch / "mem.bin"
    reply = qemu.execute("pmemsave", {"val": address, "size": size, "filename": str(target)})
    assert reply == {"return": {}}, reply
    return target.read_bytes()


def _table(qemu: QemuOracle, scratch: Path, address: int) -> bytes:
    length = struct.unpack("<I", _read(qemu, scratch, address + 4, 4))[0]
    return _read(qemu, scratch, address, length)


def firmware_tables(qemu: QemuOracle) -> dict[str, bytes]:
    """The tables SeaBIOS installed, found from the RSDP in the BIOS area."""
    with tempfile.TemporaryDirectory(prefix="pyqom-acpi-") as name:
        scratch = Path(name)
        bios = _read(qemu, scratch, 0xE0000, 0x20000)
        at = bios.find(b"RSD PTR ")
        assert at >= 0, "no RSDP in the BIOS area"
        rsdt = _table(qemu, scratch, struct.unpack_from("<I", bios, at + 16)[0])
        tables = {"RSDT": rsdt}
        for (address,) in struct.iter_unpack("<I", rsdt[36:]):
            table = _table(qemu, scratch, address)
            tables[table[:4].decode()] = table
        facs, dsdt = struct.unpack_from("<II", tables["FACP"], 36)
        tables["FACS"] = _table(qemu, scratch, facs)
        tables["DSDT"] = _table(qemu, scratch, dsdt)
        return tables


def disassembled(dsdt: bytes) -> str:
    """``iasl -d`` of a DSDT, which must disassemble without errors or warnings."""
    iasl = shutil.which("iasl")
    assert iasl is not None
    with tempfile.TemporaryDirectory(prefix="pyqom-dsdt-") as name:
        path = Path(name) / "DSDT.dat"
        path.write_bytes(dsdt)
        done = subprocess.run([iasl, "-d", str(path)], capture_output=True, text=True, cwd=name)
        output = done.stdout + done.stderr
        assert done.returncode == 0 and not re.search(r"\b(Error|Warning)\b", output), output
        return normalise_dsl(path.with_suffix(".dsl").read_text())


@settings(max_examples=4, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(steps=sequences)
@example(steps=FULL)
def test_regenerated_line_starts_the_same_machine_on_qemu(steps):
    qemu_or_skip()
    with VM.from_args(["-m", MEMORY], autoload=False) as live:
        apply(live, steps)
        options = regenerate_options(live.tree, live.machine)
    with VM.from_args(options, autoload=False) as ours:
        qemu = QemuOracle(*options)
        try:
            assert qemu.execute("query-memory-devices") == {
                "return": ours.query_memory_devices()}, options
            assert (normalise("query-memdev", qemu.execute("query-memdev"), {"query-memdev"})
                    == normalise("query-memdev", {"return": ours.query_memdev()},
                                 {"query-memdev"})), options
            assert qemu.execute("cont") == {"return": {}}
            time.sleep(FIRMWARE_SECONDS)
            qemu.execute("stop")
            theirs = firmware_tables(qemu)
        finally:
            qemu.close()
        base = struct.unpack_from("<I", theirs["FACP"], 36)[0]
        built = build_tables(ours.machine, base=base)
        for signature in COMPARED_TABLES:
            assert built.get(signature) == theirs.get(signature), (signature, options)
        if shutil.which("iasl") is not None:   # tests/devices/acpi says so when it is not
            assert (memory_hotplug_part(disassembled(built["DSDT"]))
                    == memory_hotplug_part(disassembled(theirs["DSDT"]))), options


def test_regenerated_numa_line_starts_the_same_machine_on_qemu():
    """A NUMA machine's regenerated line (nodes, CPUs, distances, HMAT, a DIMM on
    node 1): QEMU 7.2 reports the same devices and nodes and builds the same SRAT,
    SLIT, HMAT and APIC."""
    qemu_or_skip()
    with VM.from_args(NUMA_LINE, autoload=False) as live:
        options = regenerate_options(live.tree, live.machine)
    with VM.from_args(options, autoload=False) as ours:
        qemu = QemuOracle(*options)
        try:
            assert qemu.execute("query-memory-devices") == {
                "return": ours.query_memory_devices()}, options
            info = qemu.execute("human-monitor-command", {"command-line": "info numa"})
            assert info["return"].startswith("2 nodes"), info
            assert qemu.execute("cont") == {"return": {}}
            time.sleep(FIRMWARE_SECONDS)
            qemu.execute("stop")
            theirs = firmware_tables(qemu)
        finally:
            qemu.close()
        base = struct.unpack_from("<I", theirs["FACP"], 36)[0]
        built = build_tables(ours.machine, base=base)
        for signature in ("SRAT", "SLIT", "HMAT", "APIC"):
            assert signature in theirs and built.get(signature) == theirs[signature], (
                signature, options)


def test_regenerated_nvdimm_line_starts_the_same_machine_on_qemu(tmp_path):
    """nvdimm=on and -cpu vendor= are in the regenerated line: QEMU 7.2 plugs the
    NVDIMM at the same address (no AMD 1 TiB hole for an Intel vendor)."""
    qemu_or_skip()
    backing = tmp_path / "pm"
    backing.write_bytes(b"")
    line = ["-machine", "pc,nvdimm=on", "-m", "1G,slots=2,maxmem=1T",
            "-cpu", "qemu64,phys-bits=42,vendor=GenuineIntel",
            "-object", f"memory-backend-file,id=pm1,size=256M,share=on,mem-path={backing}",
            "-device", "nvdimm,id=nv1,memdev=pm1,label-size=128K"]
    with VM.from_args(line, autoload=False) as live:
        options = regenerate_options(live.tree, live.machine)
        expected = live.query_memory_devices()
    qemu = QemuOracle(*options)
    try:
        assert qemu.execute("query-memory-devices") == {"return": expected}, options
    finally:
        qemu.close()
