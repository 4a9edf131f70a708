"""The plans' cost (not a test: run it by hand).

    python bench/bench_plan.py [--runs 200]

With ``-cpu qemu64,phys-bits=48 -m 1G,slots=256,maxmem=2T``: the latency of
``x-plan-plug`` (a backend and a DIMM) for a 1 GiB and a 64 GiB backend, with
0 and 255 DIMMs plugged, beside a real object-add + device_add of 1 GiB; of
``x-query-memory-capacity``; and of ``-x-check-config``'s planner.  Targets:
a 64 GiB plan costs what a 1 GiB plan does (nothing is mapped), and a plan
costs no more than the real plug.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from pyqom.check_config import plan_startup
from pyqom.vm import VM
from qom.device import complete_unplug

G = 1 << 30


def median_ms(action: Callable[[], object], runs: int) -> float:
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings) * 1000


def plan_requests(size: int) -> list[dict[str, object]]:
    return [{"execute": "object-add", "arguments": {"qom-type": "memory-backend-ram",
                                                    "id": "planned", "size": size}},
            {"execute": "device_add", "arguments": {"driver": "pc-dimm", "memdev": "planned"}}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    runs = parser.parse_args().runs
    rows: list[tuple[str, float]] = []
    with VM("1G", slots=256, maxmem="2T", phys_bits=48, autoload=False) as vm:
        for plugged in (0, 255):
            while len(vm.machine.memory_devices()) < plugged:
                number = len(vm.machine.memory_devices())
                vm.object_add("memory-backend-ram", f"m{number}", size=G)
                vm.device_add("pc-dimm", f"d{number}", memdev=f"m{number}")
            for size in (G, 64 * G):
                rows.append((f"x-plan-plug {size // G} GiB, {plugged} plugged",
                             median_ms(lambda size=size: vm.plan_plug(*plan_requests(size)),
                                       runs)))
            rows.append((f"x-query-memory-capacity, {plugged} plugged",
                         median_ms(vm.memory_capacity, runs)))
        counter = iter(range(10**9))

        def real_plug() -> None:
            number = next(counter)
            vm.object_add("memory-backend-ram", f"r{number}", size=G)
            device = vm.device_add("pc-dimm", memdev=f"r{number}", slot="255",
                                   addr=str(vm.machine.device_memory_base + 1000 * G))
            complete_unplug(device)      # what the guest's eject completes
            vm.object_del(f"r{number}")

        rows.append(("object-add + device_add + unplug + object-del, 1 GiB (real)",
                     median_ms(real_plug, max(runs // 10, 5))))
    rows.append(("-x-check-config planner (751G boots)",
                 median_ms(lambda: plan_startup("1G", slots=256, maxmem="751G"), runs // 10)))
    rows.append(("-x-check-config planner (752G: the largest maxmem searched)",
                 median_ms(lambda: plan_startup("1G", slots=256, maxmem="752G"), runs // 10)))
    width = max(len(name) for name, _ in rows)
    for name, ms in rows:
        print(f"{name:<{width}}  {ms:8.3f} ms")


if __name__ == "__main__":
    main()
