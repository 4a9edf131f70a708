"""ACPI for the pc machine: the only place in pyqom that knows ACPI.

* :mod:`plugins.acpi.registers` - the memory-hotplug register block at 0x0A00
  and the GPE0 block, served to the guest through the port-I/O registry.
"""
