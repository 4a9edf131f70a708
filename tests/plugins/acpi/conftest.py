"""The ACPI fixtures (iasl, cached QEMU tables) shared by the table and plugin tests."""

from acpi_fixtures import config, disassemble, iasl, vm_for

__all__ = ["config", "disassemble", "iasl", "vm_for"]
