"""iasl for the AML encoder's tests (shared with the ACPI table tests)."""

from acpi_fixtures import iasl

__all__ = ["iasl"]
