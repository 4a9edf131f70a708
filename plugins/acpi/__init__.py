"""Built-in plugin package: ACPI as the guest of the pc machine sees it.

* :mod:`plugins.acpi.plugin` - the plugin: the tables placed in guest memory
  and rebuilt on plug and unplug (with every plugin's ``qom_acpi_build``
  contributions), the ``acpi`` service, ``x-query-acpi-tables``;
* :mod:`plugins.acpi.registers` - the memory-hotplug register block at 0x0A00
  and the GPE0 block, served to the guest through the ``port-io`` service.

The tables themselves are built by :mod:`devices.acpi.tables` (pure
functions over the machine) with the AML encoder of the contract,
:mod:`plugins.aml`.
"""
