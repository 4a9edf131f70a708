"""Hotplug latency and host memory of pyqom's pc machine (not a test: run it by hand).

    python bench/bench_hotplug.py [--dimms 256]

1. Latency of object-add + device_add for the 1st, 64th and 256th DIMM with
   ``-cpu qemu64,phys-bits=48 -m 1G,slots=256,maxmem=1T``: the cost must stay
   flat as DIMMs accumulate.
2. Host RSS with ``maxmem=1T`` and 16 x 1 GiB DIMMs plugged but untouched
   (QEMU 7.2 needs about 39 MiB for the same).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time

from pyqom.vm import VM


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def hotplug_latency(dimms: int) -> dict[int, float]:
    """Seconds for object-add + device_add of each DIMM, by DIMM number (1-based)."""
    timings: dict[int, float] = {}
    with VM("1G", slots=256, maxmem="1T", phys_bits=48, autoload=False) as vm:
        for number in range(1, dimms + 1):
            start = time.perf_counter()
            vm.object_add("memory-backend-ram", f"mem{number}", size=1 << 30)
            vm.device_add("pc-dimm", f"dimm{number}", memdev=f"mem{number}")
            timings[number] = time.perf_counter() - start
    return timings


def rss_with_dimms(count: int) -> tuple[float, float]:
    """(RSS before the machine, RSS with ``count`` untouched 1 GiB DIMMs plugged)."""
    before = rss_mib()
    with VM("1G", slots=256, maxmem="1T", phys_bits=48, autoload=False) as vm:
        for number in range(count):
            vm.object_add("memory-backend-ram", f"m{number}", size=1 << 30)
            vm.device_add("pc-dimm", f"d{number}", memdev=f"m{number}")
        return before, rss_mib()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dimms", type=int, default=256)
    args = parser.parse_args()
    os.environ.setdefault("PYQOM_DISABLE_PLUGIN_AUTOLOAD", "1")

    timings = hotplug_latency(args.dimms)
    print(f"hotplug latency (object-add + device_add), {args.dimms} DIMMs, slots=256, maxmem=1T")
    for number in (1, 64, 256):
        if number in timings:
            print(f"  DIMM #{number:<4} {timings[number] * 1e3:8.3f} ms")
    print(f"  median      {statistics.median(timings.values()) * 1e3:8.3f} ms")
    first, last = timings[1], timings[max(timings)]
    print(f"  last/first  {last / first:8.2f}x")

    before, after = rss_with_dimms(16)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("host RSS, maxmem=1T, 16 x 1 GiB DIMMs plugged, untouched")
    print(f"  interpreter + pyqom loaded  {before:7.1f} MiB")
    print(f"  with the machine and DIMMs  {after:7.1f} MiB   (QEMU 7.2: ~39 MiB)")
    print(f"  peak of this process        {peak:7.1f} MiB")


if __name__ == "__main__":
    main()
