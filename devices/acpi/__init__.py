"""The ACPI tables of the pc machine, built as bytes by pure functions (:mod:`.tables`).

The I/O block QEMU's memory-hotplug AML talks to is defined here, where both
the tables and the ACPI plugin that serves the block can import it cheaply.
"""

from typing import Final

#: QEMU's ACPI memory-hotplug register block: I/O ports 0x0A00-0x0A17
MEMORY_HOTPLUG_IO_BASE: Final = 0x0A00
MEMORY_HOTPLUG_IO_LEN: Final = 0x18
