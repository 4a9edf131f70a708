"""pyqom's side of a QMP comparison: a real QMP session on a VM, without a socket."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from plugins.monitor import QmpSession, VmControl


class PyqomQmp:
    """A negotiated QMP session on ``control``; events are dropped."""

    def __init__(self, control: VmControl) -> None:
        self.session = QmpSession(control, lambda data: None)
        self.session.start()
        self.session.handle({"execute": "qmp_capabilities"})

    def execute(self, command: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """The reply pyqom's QMP sends: ``{"return": ...}`` or ``{"error": ...}``."""
        return self.session.handle({"execute": command, "arguments": arguments})

    def close(self) -> None:
        self.session.close()


def normalise(command: str, reply: dict[str, Any], unordered: Collection[str]) -> Any:
    """Lists QEMU prints in GLib hash order, compared as sets of entries."""
    if command in unordered and "return" in reply:
        return sorted(repr(sorted(item.items())) for item in reply["return"])
    return reply
