"""A QMP session fed raw bytes, for protocol tests without sockets."""

from __future__ import annotations

from plugins.monitor import QmpSession, VmControl


class Wire:
    """A QMP session fed raw bytes; ``lines()`` returns what it wrote since last time."""

    def __init__(self, control: VmControl) -> None:
        self.out: list[bytes] = []
        self.session = QmpSession(control, self.out.append)
        self.session.start()

    def send(self, data: bytes) -> list[str]:
        self.out.clear()
        self.session.feed(data)
        return [chunk.decode() for chunk in self.out]
