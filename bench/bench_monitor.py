"""pyqom against real QEMU 7.2 through the monitor, side by side (not a test: run it by hand).

    PYTHONPATH=. python bench/bench_monitor.py [--runs 5] [--quick]

Both programs are started as subprocesses with the same command line::

    -machine pc -accel tcg -display none -nodefaults -S -cpu qemu64,phys-bits=48
    -m 1G,slots=N,maxmem=1T -qmp unix:PATH,server=on,wait=off

and driven by the same client, qemu.qmp's ``QMPClient``, over the unix socket:

1. time from process start to the QMP greeting, and to ``qmp_capabilities``
   answered (slots=16);
2. object-add + device_add latency (1 GiB ``memory-backend-ram`` + ``pc-dimm``)
   of the 1st, 64th and 256th DIMM with slots=256: the cost must stay flat;
3. ``query-memory-devices`` round trips per second with 16 DIMMs plugged;
4. the process's RSS (``VmRSS`` of ``/proc/PID/status``) with slots=16 and
   16 x 1 GiB DIMMs plugged but untouched.

Every figure is the median of ``--runs`` runs (runs of the two programs
alternate).  The table shows pyqom, QEMU 7.2, the ratio pyqom/QEMU and
issue 5's targets: latency and round trips at least as good as QEMU 7.2, RSS
no more than QEMU's, ready within 3x QEMU's.  Without ``qemu-system-x86_64``
only pyqom's numbers are printed.  pyqom runs as ``python -m pyqom`` with this
checkout first on ``PYTHONPATH`` and plugin autoload on (``PYQOM_DISABLE_PLUGIN_AUTOLOAD``
is removed from its environment), so its start-up pays for entry-point discovery
as a user's does.
Its bytecode is cached in a temporary ``PYTHONPYCACHEPREFIX`` (as pip
byte-compiles an installed pyqom) and one warm-up run of each program is not
counted.  Both processes are killed when the script ends, fails or is interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import logging
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qemu.qmp import QMPClient
from qemu.qmp.qmp_client import Greeting

REPO = Path(__file__).resolve().parent.parent
GiB = 1 << 30
PR_SET_PDEATHSIG = 1
HOTPLUG_MARKS = (1, 64, 256)
SMALL_DIMMS = 16


def common_args(slots: int) -> list[str]:
    """The command line both programs get (without ``-qmp``)."""
    return ["-machine", "pc", "-accel", "tcg", "-display", "none", "-nodefaults", "-S",
            "-cpu", "qemu64,phys-bits=48", "-m", f"1G,slots={slots},maxmem=1T"]


# -- processes ---------------------------------------------------------------------------

_LIVE: set[subprocess.Popen[bytes]] = set()


def _die_with_parent() -> None:
    """In the child: get SIGKILL if this script dies, however it dies."""
    with suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def kill_all() -> None:
    """Kill and reap every process this script started that is still alive."""
    for process in list(_LIVE):
        if process.poll() is None:
            process.kill()
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        _LIVE.discard(process)


@dataclass
class Program:
    """One program under test: its name, the argv prefix and the environment."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))


class Timed(QMPClient):
    """``QMPClient`` noting when the greeting arrived and when capabilities were answered."""

    greeting_at: float = 0.0
    negotiated_at: float = 0.0

    async def _get_greeting(self) -> Greeting:
        greeting = await super()._get_greeting()
        self.greeting_at = time.perf_counter()
        return greeting

    async def _negotiate(self) -> None:
        await super()._negotiate()
        self.negotiated_at = time.perf_counter()


@dataclass
class Session:
    """A started program with a negotiated client; times are seconds since its start."""

    process: subprocess.Popen[bytes]
    client: Timed
    to_greeting: float
    to_ready: float

    async def run(self, command: str, arguments: dict[str, Any] | None = None) -> Any:
        """Execute one QMP command."""
        return await self.client.execute(command, arguments)

    async def plug(self, number: int) -> float:
        """object-add + device_add of 1 GiB DIMM ``number``; returns the seconds it took."""
        start = time.perf_counter()
        await self.run("object-add", {"qom-type": "memory-backend-ram", "id": f"mem{number}",
                                      "size": GiB})
        await self.run("device_add", {"driver": "pc-dimm", "id": f"dimm{number}",
                                      "memdev": f"mem{number}"})
        return time.perf_counter() - start

    def rss_mib(self) -> float:
        """The process's resident set size in MiB."""
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS line")


@asynccontextmanager
async def started(program: Program, slots: int) -> AsyncIterator[Session]:
    """Start ``program`` with ``slots`` DIMM slots and connect to its QMP socket."""
    with tempfile.TemporaryDirectory(prefix="bench-monitor-") as tmp:
        socket = os.path.join(tmp, "qmp.sock")
        errors = open(os.path.join(tmp, "stderr"), "w+b")
        argv = [*program.argv, *common_args(slots),
                "-qmp", f"unix:{socket},server=on,wait=off"]
        begin = time.perf_counter()
        process = subprocess.Popen(argv, env=program.env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=errors,
                                   preexec_fn=_die_with_parent)
        _LIVE.add(process)
        client: Timed | None = None
        try:
            client = await connect(process, socket, errors, program.name)
            yield Session(process, client, client.greeting_at - begin,
                          client.negotiated_at - begin)
        finally:
            if client is not None:
                with suppress(Exception):
                    await client.disconnect()
            process.kill()
            process.wait()
            _LIVE.discard(process)
            errors.close()


async def connect(process: subprocess.Popen[bytes], socket: str, errors: Any,
                  name: str) -> Timed:
    """Connect as soon as the socket accepts; fail if the program exits or hangs."""
    deadline = time.perf_counter() + 30
    while True:
        if process.poll() is not None:
            errors.seek(0)
            raise RuntimeError(f"{name} exited with {process.returncode}: "
                               f"{errors.read().decode(errors='replace').strip()}")
        if time.perf_counter() > deadline:
            raise RuntimeError(f"{name} did not open its QMP socket")
        if os.path.exists(socket):
            client = Timed(name)
            try:
                await client.connect(socket)
                return client
            except Exception:  # bound but not yet listening: try again
                with suppress(Exception):
                    await client.disconnect()
        await asyncio.sleep(0.0005)


# -- measurements ------------------------------------------------------------------------

@dataclass
class Figures:
    """Every run's figures for one program."""

    to_greeting: list[float] = field(default_factory=list)
    to_ready: list[float] = field(default_factory=list)
    hotplug: dict[int, list[float]] = field(
        default_factory=lambda: {mark: [] for mark in HOTPLUG_MARKS})
    round_trips: list[float] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)


async def small_run(program: Program, figures: Figures, seconds: float) -> None:
    """Start-up, RSS with 16 untouched DIMMs and query-memory-devices round trips."""
    async with started(program, SMALL_DIMMS) as session:
        figures.to_greeting.append(session.to_greeting)
        figures.to_ready.append(session.to_ready)
        for number in range(1, SMALL_DIMMS + 1):
            await session.plug(number)
        figures.rss.append(session.rss_mib())
        devices = await session.run("query-memory-devices")
        assert len(devices) == SMALL_DIMMS, devices
        count = 0
        start = time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            await session.run("query-memory-devices")
            count += 1
        figures.round_trips.append(count / elapsed)


async def hotplug_run(program: Program, figures: Figures) -> None:
    """Plug 256 DIMMs into slots=256 and keep the latency of the marked ones."""
    async with started(program, max(HOTPLUG_MARKS)) as session:
        for number in range(1, max(HOTPLUG_MARKS) + 1):
            elapsed = await session.plug(number)
            if number in figures.hotplug:
                figures.hotplug[number].append(elapsed)


async def measure(programs: Sequence[Program], runs: int, seconds: float,
                  progress: Callable[[str], None]) -> dict[str, Figures]:
    """All measurements, the programs' runs alternating."""
    figures = {program.name: Figures() for program in programs}
    for program in programs:  # warm-up, not counted: page cache, pyqom's bytecode cache
        progress(f"warm-up: {program.name}")
        await small_run(program, Figures(), 0.1)
    for run in range(1, runs + 1):
        for program in programs:
            progress(f"run {run}/{runs}: {program.name}")
            await small_run(program, figures[program.name], seconds)
            await hotplug_run(program, figures[program.name])
    return figures


# -- report ------------------------------------------------------------------------------

@dataclass
class Row:
    """One line of the table: a metric, its unit, and how pyqom must compare to QEMU."""

    label: str
    unit: str
    values: Callable[[Figures], list[float]]
    scale: float
    target: str
    passes: Callable[[float], bool] | None


def hotplug_of(mark: int) -> Callable[[Figures], list[float]]:
    """The latencies of DIMM number ``mark``."""
    return lambda figures: figures.hotplug[mark]


ROWS = [
    # No target: QEMU greets before its board is built, and answers once it is.
    Row("start -> QMP greeting", "ms", lambda f: f.to_greeting, 1e3, "-", None),
    Row("start -> capabilities answered", "ms", lambda f: f.to_ready, 1e3, "<= 3x QEMU",
        lambda ratio: ratio <= 3),
    *(Row(f"object-add+device_add, DIMM #{mark}", "ms", hotplug_of(mark), 1e3, "<= QEMU",
          lambda ratio: ratio <= 1) for mark in HOTPLUG_MARKS),
    Row("query-memory-devices, 16 DIMMs", "1/s", lambda f: f.round_trips, 1, ">= QEMU",
        lambda ratio: ratio >= 1),
    Row("RSS, 16 x 1 GiB DIMMs untouched", "MiB", lambda f: f.rss, 1, "<= QEMU",
        lambda ratio: ratio <= 1),
]


def median(values: list[float]) -> float:
    """Median, NaN when there is nothing."""
    return statistics.median(values) if values else float("nan")


def flatness(figures: Figures) -> float:
    """Latency of the last marked DIMM over the first's."""
    return median(figures.hotplug[max(HOTPLUG_MARKS)]) / median(figures.hotplug[1])


def table(figures: dict[str, Figures], runs: int) -> Iterator[str]:
    """The report, line by line."""
    names = list(figures)
    pyqom = figures[names[0]]
    qemu = figures[names[1]] if len(names) > 1 else None
    header = f"{'metric (median of ' + str(runs) + ' runs)':38} {'unit':>4} {names[0]:>9}"
    if qemu is not None:
        header += f" {names[1]:>9} {'ratio':>6}  {'target':<11} result"
    yield header
    yield "-" * len(header)
    for row in ROWS:
        mine = median(row.values(pyqom)) * row.scale
        line = f"{row.label:38} {row.unit:>4} {mine:9.{format_digits(mine)}f}"
        if qemu is not None:
            theirs = median(row.values(qemu)) * row.scale
            ratio = mine / theirs
            verdict = ("" if row.passes is None
                       else "PASS" if row.passes(ratio) else "MISS")
            line += (f" {theirs:9.{format_digits(theirs)}f} {ratio:6.2f}  {row.target:<11} "
                     f"{verdict}")
        yield line
    for name, mine in figures.items():
        ratio = flatness(mine)
        shape = "flat" if ratio <= 1.5 else "grows"
        yield (f"{name}: DIMM #{max(HOTPLUG_MARKS)} costs {ratio:.2f}x DIMM #1 "
               f"({shape} as DIMMs accumulate)")


def format_digits(value: float) -> int:
    """Decimals to print: fewer for big numbers."""
    return 0 if abs(value) >= 1000 else 1 if abs(value) >= 10 else 2


def pyqom_env(pycache: str) -> dict[str, str]:
    """pyqom's environment: this checkout first on the path, plugin autoload on, and
    bytecode cached (in ``pycache``) even under ``PYTHONDONTWRITEBYTECODE``, as an
    installed pyqom has its modules byte-compiled by pip."""
    env = dict(os.environ, PYTHONPYCACHEPREFIX=pycache,
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO),
                                                        os.environ.get("PYTHONPATH")])))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("PYQOM_DISABLE_PLUGIN_AUTOLOAD", None)  # discovery is part of start-up
    return env


def programs_to_compare(qemu_name: str, pycache: str) -> list[Program]:
    """pyqom (bytecode cached in ``pycache``) and, if installed, QEMU 7.2; qemu.qmp's
    own log kept quiet.  Shared by the benchmarks that drive both through QMP."""
    programs = [Program("pyqom", [sys.executable, "-m", "pyqom"], pyqom_env(pycache))]
    qemu = shutil.which(qemu_name)
    if qemu is None:
        print(f"{qemu_name} not found: pyqom's numbers alone", file=sys.stderr)
    else:
        programs.append(Program("QEMU 7.2", [qemu]))
    logging.getLogger("qemu.qmp").addHandler(logging.NullHandler())
    logging.getLogger("qemu.qmp").propagate = False
    return programs


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=None,
                        help="runs per program (default 5, 1 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="one run and 0.5 s of round trips (unless --runs is given)")
    parser.add_argument("--seconds", type=float, default=None,
                        help="seconds of query-memory-devices round trips per run (default 2)")
    parser.add_argument("--qemu", default="qemu-system-x86_64", help="the QEMU 7.2 binary")
    args = parser.parse_args(argv)
    runs = args.runs or (1 if args.quick else 5)
    seconds = args.seconds or (0.5 if args.quick else 2.0)

    pycache = tempfile.mkdtemp(prefix="bench-monitor-pycache-")
    programs = programs_to_compare(args.qemu, pycache)

    def progress(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def on_signal(signum: int, frame: object) -> None:
        # Our own SIGINT handler too: asyncio.run's would only cancel the main task,
        # which qemu.qmp may absorb; an exception here always unwinds to kill_all().
        raise KeyboardInterrupt if signum == signal.SIGINT else SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        figures = asyncio.run(measure(programs, runs, seconds, progress))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        kill_all()
        shutil.rmtree(pycache, ignore_errors=True)
    print(f"pyqom vs QEMU 7.2 through QMP ({os.cpu_count()} CPUs, "
          f"{time.strftime('%Y-%m-%d')}); command line: "
          f"{' '.join(common_args(256)).replace('slots=256', 'slots=N')}")
    for line in table(figures, runs):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
