"""What QEMU's events say about one device's hotplug, for whoever waits for it.

An unplug of a DIMM ends with ``DEVICE_DELETED`` once the guest ejects it, or
never, if the guest refuses: then its ``_OST`` for the eject request
(``ACPI_DEVICE_OST``, source 0x103) carries a failure status.  An insert is
onlined when the guest's ``_OST`` for it (source 1) says success.  These
helpers read one event and say whether it settles the wait (``pyqom.VM``'s
``device_del`` future, QMP ``x-device-del-wait``).
"""

from __future__ import annotations

from typing import Any, Final

from qom import Device, as_memory_device

#: ACPI ``_OST`` source events (ACPI 6.x, table 6-204) and status codes: for an
#: ejection request 0x84 is "ejection in progress"; 0x80-0x83 are refusals
#: (not supported, in use, busy, dependency busy), as libvirt reads them too
OST_INSERT: Final = 0x1
OST_EJECT_REQUEST: Final = 0x103
OST_SUCCESS: Final = 0x0
OST_EJECT_IN_PROGRESS: Final = 0x84


class Outcome:
    """A settled wait: ``ok``, with the event's data, or a failure ``message``."""

    __slots__ = ("data", "message", "ok")

    def __init__(self, ok: bool, data: dict[str, Any] | None = None,
                 message: str = "") -> None:
        self.ok, self.data, self.message = ok, data, message


class DeviceRef:
    """How the events name one device: its canonical path (``DEVICE_DELETED``'s
    ``path``), and its id or, without one, its slot (``_OST``'s ``device`` or
    ``slot``)."""

    __slots__ = ("id", "path", "slot")

    def __init__(self, path: str | None, id: str | None, slot: str | None = None) -> None:
        self.path, self.id, self.slot = path, id, slot

    @classmethod
    def of(cls, device: Device) -> DeviceRef:
        memory = as_memory_device(device)
        slot = memory.get_slot() if memory is not None else None
        return cls(device.canonical_path, device.id, None if slot is None else str(slot))

    def names(self, info: dict[str, Any]) -> bool:
        """Whether an ``ACPIOSTInfo`` is about this device."""
        if self.id is not None:
            return info.get("device") == self.id
        return "device" not in info and self.slot is not None and info.get("slot") == self.slot


def _ost_info(name: str, data: dict[str, Any], device: DeviceRef) -> dict[str, Any] | None:
    if name != "ACPI_DEVICE_OST":
        return None
    info = data.get("info", {})
    return info if device.names(info) else None


def removal_outcome(device: DeviceRef, name: str, data: dict[str, Any]) -> Outcome | None:
    """Whether event ``name``/``data`` ends the unplug of ``device``: deleted,
    refused by the guest, or (``None``) not yet."""
    if name == "DEVICE_DELETED" and data.get("path") == device.path:
        return Outcome(True, data)
    info = _ost_info(name, data, device)
    if info is not None and info.get("source") == OST_EJECT_REQUEST \
            and info.get("status") not in (OST_SUCCESS, OST_EJECT_IN_PROGRESS):
        return Outcome(False, info, f"the guest refused to eject '{device.id or device.path}' "
                                    f"(_OST status 0x{info.get('status', 0):x})")
    return None


def online_outcome(device: DeviceRef, name: str, data: dict[str, Any]) -> Outcome | None:
    """Whether event ``name``/``data`` says the guest onlined ``device`` (or failed to)."""
    info = _ost_info(name, data, device)
    if info is None or info.get("source") != OST_INSERT:
        return None
    if info.get("status") == OST_SUCCESS:
        return Outcome(True, info)
    return Outcome(False, info, f"the guest did not online '{device.id or device.path}' "
                                f"(_OST status 0x{info.get('status', 0):x})")
