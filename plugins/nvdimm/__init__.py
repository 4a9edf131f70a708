"""The built-in NVDIMM plugin (:mod:`plugins.nvdimm.plugin`), built on the contract only.

The constants both its modules use are here, so that loading the plugin does
not load the ACPI and DSM code (:mod:`plugins.nvdimm.acpi`) before a machine
with ``nvdimm=on`` needs it.
"""

from typing import Final

#: the DSM I/O port (QEMU's ``NVDIMM_ACPI_IO_BASE``) and its length
DSM_IO_BASE: Final = 0x0A18
DSM_IO_LEN: Final = 4
#: the DSM page, which the firmware allocates as fw_cfg ``etc/acpi/nvdimm-mem``
DSM_MEMORY_SIZE: Final = 4096
DSM_MEMORY_FILE: Final = "etc/acpi/nvdimm-mem"
#: the GPE0 status bit of an NVDIMM hotplug (``\\_GPE._E04``)
HOTPLUG_GPE_BIT: Final = 4
#: the smallest label area (QEMU's ``MIN_NAMESPACE_LABEL_SIZE``)
MIN_LABEL_SIZE: Final = 128 * 1024
