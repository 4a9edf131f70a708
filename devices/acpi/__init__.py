"""The ACPI tables of the pc machine, built as bytes by pure functions."""
