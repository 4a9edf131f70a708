"""pyqom against real QEMU 7.2 TCG with a running guest, side by side (run it by hand).

    PYTHONPATH=. python bench/bench_guest.py [--runs 3] [--mib 256]

Both programs boot pyqom's OSPM guest (``pyqom.guest``) with the same command
line::

    -machine pc -accel tcg -display none -nodefaults -m 512M,slots=4,maxmem=4G
    -kernel ospm.elf -append "bench=MIB" -debugcon file:LOG
    -global isa-debugcon.iobase=0x402 -qmp unix:PATH,server=on,wait=off

and are driven by qemu.qmp's ``QMPClient``.  Per run:

1. guest store bandwidth over boot RAM: the guest stores MIB MiB of qwords
   (after an untimed first pass) between its ``bench ram begin`` and ``bench
   ram end`` console lines; the console file is polled every 0.2 ms;
2. ``device_add`` of a 256 MiB DIMM -> the guest's ``_OST`` (the
   ``ACPI_DEVICE_OST`` event): the guest tests the memory and stores over it
   (the ``bench dimm`` lines give the bandwidth over the new DIMM);
3. ``device_del`` -> ``DEVICE_DELETED`` (the guest ejects);
4. host CPU used by the idle, polling guest over 2 s (``/proc/PID/stat``);
5. ``query-status`` round trips per second, idle and while the guest stores
   in a loop (``-append spin``, a second boot).

Targets (issue 11): bandwidth >= 0.5x QEMU, idle CPU <= 5% of a core, round
trips while busy no worse than 2x idle.  Medians of ``--runs`` runs; the two
programs alternate.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench_monitor import _LIVE, Program, connect, kill_all, programs_to_compare

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from pyqom.guest import kernel_path  # noqa: E402

POLL = 0.0002
DIMM_MIB = 256


def args_for(kernel: str, log: str, socket: str, append: str) -> list[str]:
    return ["-machine", "pc", "-accel", "tcg", "-display", "none", "-nodefaults",
            "-m", "512M,slots=4,maxmem=4G", "-kernel", kernel, "-append", append,
            "-debugcon", f"file:{log}", "-global", "isa-debugcon.iobase=0x402",
            "-qmp", f"unix:{socket},server=on,wait=off"]


async def wait_line(log: str, text: bytes, timeout: float = 120) -> float:
    """The time (perf_counter) at which ``text`` first showed in the console."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        with suppress(FileNotFoundError), open(log, "rb") as console:
            if text in console.read():
                return time.perf_counter()
        await asyncio.sleep(POLL)
    raise TimeoutError(f"the guest did not print {text!r}")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Figures:
    ram_mib_s: list[float] = field(default_factory=list)
    dimm_mib_s: list[float] = field(default_factory=list)
    plug_to_ost: list[float] = field(default_factory=list)
    del_to_deleted: list[float] = field(default_factory=list)
    idle_cpu: list[float] = field(default_factory=list)
    rtt_idle: list[float] = field(default_factory=list)
    rtt_busy: list[float] = field(default_factory=list)


async def round_trips(client: Any, seconds: float) -> float:
    count, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        await client.execute("query-status")
        count += 1
    return count / seconds


async def boot(program: Program, tmp: str, append: str) -> tuple[Any, Any, str]:
    import subprocess

    log, socket = os.path.join(tmp, "guest.log"), os.path.join(tmp, "qmp.sock")
    for path in (log, socket):
        with suppress(FileNotFoundError):
            os.unlink(path)
    errors = open(os.path.join(tmp, "stderr"), "w+b")
    process = subprocess.Popen([*program.argv, *args_for(kernel_path(), log, socket, append)],
                               env=program.env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=errors)
    _LIVE.add(process)
    client = await connect(process, socket, errors, program.name)
    return process, client, log


async def one_run(program: Program, mib: int, figures: Figures) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-guest-") as tmp:
        process, client, log = await boot(program, tmp, f"bench={mib}")
        try:
            begin = await wait_line(log, b"bench ram begin\n")
            end = await wait_line(log, b"bench ram end\n")
            figures.ram_mib_s.append(mib / (end - begin))
            await wait_line(log, b"ready\n")
            figures.idle_cpu.append(await idle_cpu(process.pid))
            figures.rtt_idle.append(await round_trips(client, 1.0))
            events: list[tuple[str, float]] = []

            async def collect() -> None:
                async for event in client.events:
                    events.append((event["event"], time.perf_counter()))

            collector = asyncio.ensure_future(collect())

            async def event_at(name: str) -> float:
                deadline = time.perf_counter() + 60
                while time.perf_counter() < deadline:
                    for kind, at in events:
                        if kind == name:
                            return at
                    await asyncio.sleep(POLL)
                raise TimeoutError(name)

            await client.execute("object-add", {"qom-type": "memory-backend-ram", "id": "m1",
                                                "size": DIMM_MIB << 20})
            start = time.perf_counter()
            await client.execute("device_add", {"driver": "pc-dimm", "id": "d1",
                                                "memdev": "m1"})
            # The guest tests the DIMM, stores over it twice (bench), then reports _OST.
            dimm_begin = await wait_line(log, b"bench dimm begin\n")
            dimm_end = await wait_line(log, b"bench dimm end\n")
            figures.dimm_mib_s.append(DIMM_MIB / (dimm_end - dimm_begin))
            figures.plug_to_ost.append(await event_at("ACPI_DEVICE_OST") - start)
            start = time.perf_counter()
            await client.execute("device_del", {"id": "d1"})
            figures.del_to_deleted.append(await event_at("DEVICE_DELETED") - start)
            collector.cancel()
        finally:
            await stop(process, client)
        process, client, log = await boot(program, tmp, "spin")
        try:
            await wait_line(log, b"spinning\n")
            figures.rtt_busy.append(await round_trips(client, 1.0))
        finally:
            await stop(process, client)


async def stop(process: Any, client: Any) -> None:
    """Hang up and kill the program (a benchmark run needs no clean quit)."""
    with suppress(Exception):
        await client.disconnect()
    process.kill()
    process.wait()
    _LIVE.discard(process)


async def idle_cpu(pid: int, seconds: float = 2.0) -> float:
    before, start = cpu_seconds(pid), time.perf_counter()
    await asyncio.sleep(seconds)
    return (cpu_seconds(pid) - before) / (time.perf_counter() - start) * 100


ROWS = [
    ("guest stores over boot RAM", "MiB/s", "ram_mib_s", ">= 0.5x QEMU", lambda r: r >= 0.5),
    ("guest stores over a new DIMM", "MiB/s", "dimm_mib_s", ">= 0.5x QEMU", lambda r: r >= 0.5),
    ("device_add -> _OST (256 MiB)", "ms", "plug_to_ost", "-", None),
    ("device_del -> DEVICE_DELETED", "ms", "del_to_deleted", "-", None),
    ("idle polling guest, host CPU", "%", "idle_cpu", "<= 5% core", None),
    ("query-status, guest idle", "1/s", "rtt_idle", "-", None),
    ("query-status, guest storing", "1/s", "rtt_busy", ">= idle/2", None),
]


def table(figures: dict[str, Figures], runs: int) -> list[str]:
    names = list(figures)
    lines = [f"{'metric (median of ' + str(runs) + ' runs)':36} {'unit':>5} "
             + " ".join(f"{name:>9}" for name in names)
             + ("  ratio  target" if len(names) > 1 else "")]
    lines.append("-" * len(lines[0]))
    for label, unit, attribute, target, passes in ROWS:
        scale = 1e3 if unit == "ms" else 1
        values = [statistics.median(getattr(figures[name], attribute)) * scale
                  for name in names]
        line = f"{label:36} {unit:>5} " + " ".join(f"{value:9.1f}" for value in values)
        if len(values) > 1:
            ratio = values[0] / values[1]
            verdict = "" if passes is None else (" PASS" if passes(ratio) else " MISS")
            line += f"  {ratio:5.2f}  {target}{verdict}"
        lines.append(line)
    mine = figures[names[0]]
    idle, busy = statistics.median(mine.rtt_idle), statistics.median(mine.rtt_busy)
    idle_cpu = statistics.median(mine.idle_cpu)
    lines.append(f"pyqom: idle guest {idle_cpu:.1f}% of a core "
                 f"({'PASS' if idle_cpu <= 5 else 'MISS'} <= 5%); round trips while "
                 f"storing {busy / idle:.2f}x idle ({'PASS' if busy >= idle / 2 else 'MISS'}"
                 " >= 0.5x)")
    return lines


async def measure(programs: list[Program], runs: int, mib: int) -> dict[str, Figures]:
    figures = {program.name: Figures() for program in programs}
    for run in range(runs):
        for program in programs:
            print(f"run {run + 1}/{runs}: {program.name}", file=sys.stderr, flush=True)
            await one_run(program, mib, figures[program.name])
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--mib", type=int, default=256, help="MiB the guest stores over RAM")
    parser.add_argument("--qemu", default="qemu-system-x86_64")
    args = parser.parse_args(argv)
    pycache = tempfile.mkdtemp(prefix="bench-guest-pycache-")
    programs = programs_to_compare(args.qemu, pycache)
    try:
        figures = asyncio.run(measure(programs, args.runs, args.mib))
    finally:
        kill_all()
        shutil.rmtree(pycache, ignore_errors=True)
    print(f"pyqom vs QEMU 7.2 TCG with pyqom's OSPM guest ({os.cpu_count()} CPUs, "
          f"{time.strftime('%Y-%m-%d')})")
    for line in table(figures, args.runs):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
