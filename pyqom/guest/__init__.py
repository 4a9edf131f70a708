"""pyqom's OSPM guest: a small Multiboot kernel that plays the guest's side of
ACPI memory hotplug (source: ``guest/`` in the repository; ``make -C guest
install`` rebuilds the copy shipped here).

::

    pyqom -m 1G,slots=4,maxmem=8G -kernel "$(python -m pyqom.guest)" \\
          -debugcon file:guest.log -global isa-debugcon.iobase=0x402 ...

It prints one fact per line on the debug console (port 0x402): the
Multiboot info and memory map it was given, the ACPI tables it finds, the
DIMM slots, then every hotplug event it handles.  ``-append`` chooses its
policy (``online``, ``never-online``, ``never-eject``, ``ost-fail``) and
options (``exit=N``, ``events=N``); see ``guest/kernel.c``.
"""

from __future__ import annotations

import os


def kernel_path() -> str:
    """The shipped kernel (an ELF32 Multiboot file)."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "ospm.elf")
