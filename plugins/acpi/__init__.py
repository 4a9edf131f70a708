"""ACPI for the pc machine: the only place in pyqom that knows ACPI.

* :mod:`plugins.acpi.registers` - the memory-hotplug register block at 0x0A00
  and the GPE0 block, served to the guest through the port-I/O registry.
* :mod:`plugins.aml` - a pure-Python AML encoder (terms as ``bytes``)
  with the encodings QEMU 7.2's ``hw/acpi/aml-build.c`` chooses, and
  resource-template descriptors.
* :mod:`devices.acpi.tables` - pure builders of the tables QEMU 7.2's ``pc``
  machine hands its firmware (RSDP, RSDT, FACP, FACS, APIC, HPET, SRAT, WAET,
  and a DSDT with the memory-hotplug AML), laid out and checksummed as a
  firmware would: :func:`devices.acpi.tables.build_tables`.  No pluggy, no
  Unicorn, no machine state changed.
"""
