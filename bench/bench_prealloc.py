"""Preallocation, pyqom beside QEMU 7.2 in one run: ``object-add`` of a
``memory-backend-ram`` with ``prealloc=on`` over QMP on stdio, timed from the
request to its reply, for a few sizes; medians of ``--runs`` runs and the ratio.

    PYTHONPATH=. python bench/bench_prealloc.py [--runs 5] [--sizes 1,4]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

GiB = 1 << 30


def _reply_time(argv: list[str], size: int) -> float:
    env = {**os.environ, "PYQOM_DISABLE_PLUGIN_AUTOLOAD": "1"}
    process = subprocess.Popen([*argv, "-machine", "pc", "-m", "128M", "-display", "none",
                                "-nodefaults", "-S", "-qmp", "stdio"], env=env,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL)
    assert process.stdin is not None and process.stdout is not None
    try:
        process.stdout.readline()
        process.stdin.write(b'{"execute":"qmp_capabilities"}\n')
        process.stdin.flush()
        process.stdout.readline()
        request = ('{"execute":"object-add","arguments":{"qom-type":"memory-backend-ram",'
                   f'"id":"m","size":{size},"prealloc":true}}}}\n').encode()
        started = time.perf_counter()
        process.stdin.write(request)
        process.stdin.flush()
        reply = process.stdout.readline()
        elapsed = time.perf_counter() - started
        if b'"return"' not in reply:
            raise RuntimeError(f"{argv[0]}: {reply!r}")
        process.stdin.write(b'{"execute":"quit"}\n')
        process.stdin.flush()
        process.wait(30)
        return elapsed
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sizes", default="1,4", help="GiB, comma-separated")
    options = parser.parse_args()
    qemu = shutil.which("qemu-system-x86_64")
    if qemu is None:
        print("qemu-system-x86_64 is not installed", file=sys.stderr)
        return 1
    programs = {"pyqom": [sys.executable, "-m", "pyqom"], "QEMU 7.2": [qemu, "-accel", "tcg"]}
    print(f"| prealloc, object-add reply | {' | '.join(programs)} | pyqom/QEMU |")
    print("|---|---:|---:|---:|")
    for gib in (int(text) for text in options.sizes.split(",")):
        times: dict[str, list[float]] = {name: [] for name in programs}
        for run in range(options.runs):
            # Interleaved, and each program first in turn: the kernel's supply of
            # free huge pages depends on what ran just before.
            order = list(programs) if run % 2 == 0 else list(reversed(programs))
            for name in order:
                times[name].append(_reply_time(programs[name], gib * GiB))
        medians = {name: statistics.median(values) for name, values in times.items()}
        mine, theirs = medians["pyqom"], medians["QEMU 7.2"]
        print(f"| {gib} GiB | {mine * 1000:.0f} ms | {theirs * 1000:.0f} ms "
              f"| {mine / theirs:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
