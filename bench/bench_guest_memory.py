"""Guest memory speed: a 64-bit store loop over 256 MiB of a RAM backend, in MiB/s.

Measures :class:`plugins.address_space.GuestAddressSpace` in both Unicorn TLB
modes (``virtual``, pyqom's choice for flat 64-bit guest code, and ``cpu``,
Unicorn's default), without and with an instruction budget (Unicorn counts
instructions with a per-instruction hook, which costs speed).  The first pass
includes the host's page faults on fresh backend memory; "warm" is the best of
the later passes.

Run from the repository root::

    PYTHONPATH=. python bench/bench_guest_memory.py [--size-mib 256] [--repeat 3]
"""

from __future__ import annotations

import argparse
import struct
import time

from plugins.address_space.engine import GuestAddressSpace
from pyqom.manager import make_plugin_manager, make_tree
from qom import object_add

MiB = 1 << 20
DIMM_GPA = 1 << 32
CODE = 0x1000


def store_loop(dst: int, qwords: int) -> bytes:
    """``qwords`` 64-bit stores from ``dst`` upwards, then HLT (4 instructions a store)."""
    return (
        b"\x48\xbf" + struct.pack("<Q", dst)        # mov rdi, dst
        + b"\x48\xb9" + struct.pack("<Q", qwords)   # mov rcx, qwords
        + b"\x48\xb8" + struct.pack("<Q", 0x0123_4567_89AB_CDEF)  # mov rax, pattern
        # loop:
        + b"\x48\x89\x07"                            # mov [rdi], rax
        + b"\x48\x83\xc7\x08"                        # add rdi, 8
        + b"\x48\xff\xc9"                            # dec rcx
        + b"\x75\xf4"                                # jnz loop (-12)
        + b"\xf4"                                    # hlt
    )


def measure(tlb_mode: str, size: int, repeat: int, budget: bool) -> tuple[float, float]:
    """(first pass, best warm pass) in MiB/s, on a fresh backend and engine."""
    tree = make_tree(make_plugin_manager(autoload=False))
    try:
        object_add(tree, {"qom-type": "memory-backend-ram", "id": "low", "size": 2 * MiB})
        object_add(tree, {"qom-type": "memory-backend-ram", "id": "dimm", "size": size})
        with GuestAddressSpace(tlb_mode=tlb_mode) as gas:  # type: ignore[arg-type]
            gas.map_ram("low", 0, tree.objects.child("low").host_memory)
            gas.map_ram("dimm", DIMM_GPA, tree.objects.child("dimm").host_memory)
            code = store_loop(DIMM_GPA, size // 8)
            limit = 4 * (size // 8) + 16 if budget else None
            rates = []
            for _ in range(repeat):
                started = time.perf_counter()
                result = gas.run(code, load_at=CODE, max_instructions=limit, timeout_us=0)
                elapsed = time.perf_counter() - started
                if result.reason != "hlt":
                    raise SystemExit(f"store loop stopped early: {result}")
                rates.append(size / MiB / elapsed)
        return rates[0], max(rates[1:] or rates)
    finally:
        tree.root.finalize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    size = args.size_mib * MiB
    print(f"64-bit store loop over {args.size_mib} MiB (MiB/s)")
    print(f"{'TLB mode':<10} {'budget':<8} {'first pass':>12} {'warm':>10}")
    for tlb_mode in ("virtual", "cpu"):
        for budget in (False, True):
            first, warm = measure(tlb_mode, size, args.repeat, budget)
            print(f"{tlb_mode:<10} {'yes' if budget else 'no':<8} {first:>12,.0f} {warm:>10,.0f}")


if __name__ == "__main__":
    main()
